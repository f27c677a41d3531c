//! The exit of a CRI container, which containerd no longer knows: CRI deletes a container's task as
//! soon as it exits and records the exit in a status file of its own,
//! `<containerd root>/io.containerd.grpc.v1.cri/containers/<id>/status`
//! (`{"Version":"v1","Pid":0,"StartedAt":ns,"FinishedAt":ns,"ExitCode":137,...}`, containerd 1.6
//! and 1.7). lcd runs on containerd's host but may only know its socket: containerd's root comes from
//! the root a snapshotter plugin exports (Introspection), `<containerd root>/<plugin id>`.
//! Without it (another host's view, no permission) a CRI container without a task stays `Created`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use libcontainerd::raw::protos::services::v1::introspection_client::IntrospectionClient;
use libcontainerd::raw::protos::services::v1::PluginsRequest;
use libcontainerd::Client;

use super::Kube;
use crate::state::State;

/// The CRI plugin's id: its directory under containerd's root.
const CRI_PLUGIN: &str = "io.containerd.grpc.v1.cri";
const SNAPSHOTTER_PLUGIN: &str = "io.containerd.snapshotter.v1";

/// Where CRI keeps its containers' status files, from a snapshotter's exported root.
async fn containers_dir(client: &Client) -> Option<PathBuf> {
    let request = libcontainerd::raw::request(client, PluginsRequest { filters: vec![] });
    let plugins = IntrospectionClient::new(libcontainerd::raw::channel(client))
        .plugins(request)
        .await
        .ok()?
        .into_inner()
        .plugins;
    plugins
        .iter()
        .filter(|p| p.r#type == SNAPSHOTTER_PLUGIN)
        .find_map(|p| {
            let root = Path::new(p.exports.get("root")?);
            let own_dir = format!("{SNAPSHOTTER_PLUGIN}.{}", p.id);
            (root.file_name()? == own_dir.as_str())
                .then(|| root.parent())
                .flatten()
                .map(|containerd_root| containerd_root.join(CRI_PLUGIN).join("containers"))
        })
}

/// The exit in a CRI status file, if the container has finished.
fn exit_in(status: &[u8]) -> Option<State> {
    let value: serde_json::Value = serde_json::from_slice(status).ok()?;
    let finished = value.get("FinishedAt")?.as_i64().filter(|t| *t > 0)?;
    let code = value.get("ExitCode")?.as_i64()?;
    Some(State::Exited {
        // A negative code (never seen) reads as docker's "unknown".
        code: u32::try_from(code).unwrap_or(255),
        finished_at: Some(
            SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(finished).ok()?),
        ),
    })
}

/// Replace `Created` by the exit CRI recorded, for each CRI container without a task among
/// `containers` (labels, id, state as containerd's records say). Asks containerd nothing unless
/// one needs it.
pub async fn recorded_exits<'a>(
    client: &Client,
    containers: impl IntoIterator<Item = (&'a HashMap<String, String>, &'a str, &'a mut State)>,
) {
    let mut wanted: Vec<(&str, &mut State)> = containers
        .into_iter()
        .filter(|(labels, _, state)| {
            **state == State::Created && Kube::of(labels).is_some_and(|k| !k.is_sandbox())
        })
        .map(|(_, id, state)| (id, state))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let Some(dir) = containers_dir(client).await else {
        return;
    };
    for (id, state) in wanted.iter_mut() {
        if let Some(exited) = std::fs::read(dir.join(id).join("status"))
            .ok()
            .and_then(|s| exit_in(&s))
        {
            **state = exited;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_is_read_from_cris_status() {
        let status = br#"{"Version":"v1","Pid":0,"CreatedAt":1,"StartedAt":2,"FinishedAt":3000000000,"ExitCode":137,"Reason":"","Message":"","Resources":{"linux":{}}}"#;
        assert_eq!(
            exit_in(status),
            Some(State::Exited {
                code: 137,
                finished_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(3)),
            })
        );
        // Created, never started: no exit.
        assert_eq!(
            exit_in(br#"{"Version":"v1","Pid":0,"FinishedAt":0,"ExitCode":0}"#),
            None
        );
        assert_eq!(exit_in(b"garbage"), None);
    }
}
