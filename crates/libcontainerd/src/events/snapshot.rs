//! Taking containerd's view of the namespace after (re)subscribing: the RPCs behind a [`Snapshot`].

use std::collections::HashMap;
use tokio::time::timeout;

use super::delivery::Key;
use super::options::RPC_TIMEOUT;
use super::reconcile::Snapshot;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::task::TaskInfo;

/// The namespace's tasks, and the state of the execs the monitor thinks are running.
pub(crate) async fn take_snapshot(client: Client, execs: Vec<Key>) -> Result<Snapshot> {
    let work = async {
        let tasks = client.list_tasks().await?;
        let mut states = HashMap::new();
        for key in execs {
            let state = exec_state(&client, &key).await?;
            states.insert(key, state);
        }
        Ok(Snapshot {
            tasks,
            execs: states,
        })
    };
    match timeout(RPC_TIMEOUT * 2, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::DeadlineExceeded,
            "list tasks after subscribing: timed out",
        )),
    }
}

/// An exec's state, or `None` if containerd no longer has it.
async fn exec_state(client: &Client, key: &Key) -> Result<Option<TaskInfo>> {
    // Ids in the table came from containerd, which validated them.
    let Ok(container) = Id::new(key.0.clone()) else {
        return Ok(None);
    };
    match client.get_process(&container, &key.1).await {
        Ok(process) => Ok(Some(TaskInfo::from_process(&process))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
