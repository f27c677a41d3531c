//! Taking containerd's view of the namespace after (re)subscribing, the RPCs behind a [`Snapshot`]:
//! the task list, then the state of every exec worth asking about, the ones the monitor thinks are
//! running and the ones found in the shims' files or in `ListPids` (see `execs`).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::timeout;

use super::delivery::Key;
use super::execs::{containerd_unreachable, find_execs, BundleRoot};
use super::options::RPC_TIMEOUT;
use super::reconcile::Snapshot;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::task::TaskInfo;

/// Bound on the whole snapshot, which may ask about many execs; each call has [`RPC_TIMEOUT`].
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many exec states are asked for at once.
const PARALLEL_GETS: usize = 16;

/// The namespace's tasks, and the state of the execs in `known` and of those found in the tasks.
pub(crate) async fn take_snapshot(
    client: Client,
    known: Vec<Key>,
    root: BundleRoot,
) -> Result<Snapshot> {
    let work = async {
        let tasks = bounded("list tasks", client.list_tasks()).await?;
        let mut candidates: BTreeSet<Key> = known.into_iter().collect();
        for (container_id, ids) in find_execs(&client, &tasks, &root).await? {
            candidates.extend(ids.into_iter().map(|id| (container_id.clone(), id)));
        }
        let execs = exec_states(&client, candidates).await?;
        Ok(Snapshot { tasks, execs })
    };
    match timeout(SNAPSHOT_TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::DeadlineExceeded,
            format!("list tasks and execs after subscribing: not done within {SNAPSHOT_TIMEOUT:?}"),
        )),
    }
}

/// The state of each exec in `keys`, `None` for those containerd does not have; an exec whose state
/// containerd fails to give is left out.
async fn exec_states(
    client: &Client,
    keys: BTreeSet<Key>,
) -> Result<HashMap<Key, Option<TaskInfo>>> {
    let mut states = HashMap::new();
    let mut keys = keys.into_iter();
    // Dropped with the snapshot (a timeout, a broken stream): the calls in flight are aborted.
    let mut asking = JoinSet::new();
    loop {
        while asking.len() < PARALLEL_GETS {
            let Some(key) = keys.next() else { break };
            let client = client.clone();
            asking.spawn(async move {
                let state = exec_state(&client, &key).await;
                (key, state)
            });
        }
        let Some(joined) = asking.join_next().await else {
            return Ok(states);
        };
        let (key, state) =
            joined.map_err(|e| Error::internal(format!("ask for an exec's state: {e}")))?;
        match state {
            Ok(state) => {
                states.insert(key, state);
            }
            // containerd itself is unreachable: this snapshot is lost anyway.
            Err(e) if containerd_unreachable(&e) => return Err(e),
            // One process containerd cannot report on (its shim fails) must not keep the monitor
            // from going live: left out, it is neither adopted nor taken for gone.
            Err(error) => tracing::warn!(
                container = %key.0,
                exec = %key.1,
                %error,
                "cannot learn the state of an exec after reconnecting"
            ),
        }
    }
}

/// An exec's state, or `None` if containerd does not have it.
async fn exec_state(client: &Client, key: &Key) -> Result<Option<TaskInfo>> {
    // Container ids came from containerd, which validated them.
    let Ok(container) = Id::new(key.0.clone()) else {
        return Ok(None);
    };
    match bounded("get an exec", client.get_process(&container, &key.1)).await {
        Ok(process) => Ok(Some(TaskInfo::from_process(&process))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `call`, failing with `DeadlineExceeded` after [`RPC_TIMEOUT`] (containerd stopped, not gone).
async fn bounded<T>(what: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
    match timeout(RPC_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::DeadlineExceeded,
            format!("{what}: no answer within {RPC_TIMEOUT:?}"),
        )),
    }
}
