//! Finding the execs of the namespace's tasks, which containerd has no call to list.
//!
//! What containerd offers: `Tasks.ListPids` gives the pids of a task's *running* processes, each
//! exec's tagged with a `containerd.runc.v1.ProcessDetails` carrying its exec id (runc shim); an exec
//! that has exited but is not deleted yet is known only to its shim, which answers `Tasks.Get` with
//! its exec id (status and exit status) but never names it. What the runc shim does: from an exec's
//! start until its delete it keeps the pid file `<exec id>.pid` in the task's bundle directory,
//! `<containerd state>/io.containerd.runtime.v2.task/<namespace>/<container id>`, next to `init.pid`,
//! and it runs in that directory (containerd 1.6 and 1.7).
//!
//! So the monitor finds the namespace's bundle directories from the working directory of a shim (the
//! parent of a running task's init process, checked against that task's `init.pid`) and takes the
//! names of the pid files there: every exec that started and is not deleted, running or not. A name
//! is only a candidate; `Tasks.Get` decides. Where the directory cannot be found or read (this process
//! in another pid namespace than containerd or without the right to read a shim's `/proc` entry, a
//! shim that keeps its files elsewhere, no task running when the monitor first connects), the running
//! execs of a running task still come from `ListPids`; the exited ones cannot be found.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use containerd_client::services::v1::ListPidsRequest;
use prost::Message;
use tokio::time::timeout;

use super::options::RPC_TIMEOUT;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::task::{TaskInfo, TaskStatus};

/// The runc shim's pid file of the init process; every other `<id>.pid` in a bundle is an exec's.
const INIT_PID_FILE: &str = "init.pid";
/// The type of the detail the runc shim attaches to an exec's `ListPids` entry.
const PROCESS_DETAILS_TYPE_URL: &str = "containerd.runc.v1.ProcessDetails";

/// `containerd.runc.v1.ProcessDetails`. Declared here too (`control` has its own, private): the proto
/// is not in containerd's API crate.
#[derive(Clone, PartialEq, Message)]
struct ProcessDetails {
    #[prost(string, tag = "1")]
    exec_id: String,
}

/// The namespace's bundle directory once found, kept across reconnects: when no task is running, no
/// shim can show it again, yet the bundles of stopped tasks still hold their execs' pid files.
#[derive(Clone, Default)]
pub(crate) struct BundleRoot(Arc<Mutex<Option<PathBuf>>>);

impl BundleRoot {
    fn get(&self) -> Option<PathBuf> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, dir: PathBuf) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(dir);
    }
}

/// The exec ids found for each listed task: from its bundle's pid files, or for a running task whose
/// bundle could not be read, from `ListPids`. Tasks with neither are left out.
pub(crate) async fn find_execs(
    client: &Client,
    tasks: &[TaskInfo],
    root: &BundleRoot,
) -> Result<HashMap<String, Vec<String>>> {
    let namespace = client.namespace().to_string();
    let listed = tasks.to_vec();
    let cached = root.get();
    // A few syscalls per task on procfs and tmpfs; still off the async workers.
    let (found_root, mut found) =
        tokio::task::spawn_blocking(move || scan(&namespace, &listed, cached))
            .await
            .map_err(|e| Error::internal(format!("scan the shims' bundle directories: {e}")))?;
    if let Some(dir) = found_root {
        root.set(dir);
    }
    for task in tasks {
        if task.status != TaskStatus::Stopped && !found.contains_key(&task.container_id) {
            match running_exec_ids(client, &task.container_id).await {
                Ok(ids) => {
                    found.insert(task.container_id.clone(), ids);
                }
                // containerd itself is unreachable: this snapshot is lost anyway.
                Err(e) if containerd_unreachable(&e) => return Err(e),
                // One task that cannot list its processes (its runtime fails `ps`) must not keep
                // the monitor from going live: its execs stay unknown.
                Err(error) => tracing::warn!(
                    container = %task.container_id,
                    %error,
                    "cannot learn the execs of a task after reconnecting"
                ),
            }
        }
    }
    Ok(found)
}

/// Whether `error` says containerd cannot be reached (rather than that one call about one process
/// failed).
pub(crate) fn containerd_unreachable(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Unavailable | ErrorKind::DeadlineExceeded | ErrorKind::Canceled
    )
}

/// The bundle directory of the namespace (found now, else `cached`), and the exec ids in the bundle
/// of each task that has one there.
fn scan(
    namespace: &str,
    tasks: &[TaskInfo],
    cached: Option<PathBuf>,
) -> (Option<PathBuf>, HashMap<String, Vec<String>>) {
    let root = find_bundle_root(namespace, tasks).or(cached);
    let mut found = HashMap::new();
    if let Some(root) = &root {
        for task in tasks {
            if let Some(ids) = exec_ids_in(&root.join(&task.container_id)) {
                found.insert(task.container_id.clone(), ids);
            }
        }
    }
    (root, found)
}

/// `<containerd state>/io.containerd.runtime.v2.task/<namespace>`, from the shim of a running task.
fn find_bundle_root(namespace: &str, tasks: &[TaskInfo]) -> Option<PathBuf> {
    tasks
        .iter()
        .filter(|t| t.pid != 0 && t.status != TaskStatus::Stopped)
        .find_map(|t| bundle_root_of(namespace, t))
}

/// The parent of `task`'s shim's working directory, if it is the namespace's bundle directory: named
/// after the namespace, with `task`'s pid in `<container id>/init.pid`. The check keeps an unrelated
/// process (the init's pid reused since the list, or another pid namespace's) from being taken for
/// the shim. A grouped shim runs in another task's bundle, a sibling: the parent is the same.
fn bundle_root_of(namespace: &str, task: &TaskInfo) -> Option<PathBuf> {
    let shim = parent_pid(task.pid)?;
    let cwd = std::fs::read_link(format!("/proc/{shim}/cwd")).ok()?;
    let root = cwd.parent()?;
    let bundle = root.join(&task.container_id);
    let ours =
        root.file_name()? == namespace && read_pid(&bundle.join(INIT_PID_FILE)) == Some(task.pid);
    ours.then(|| root.to_path_buf())
}

/// Field 4 of `/proc/<pid>/stat`.
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the fields after it follow the
    // last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The pid in a pid file; only a regular file is opened (a bundle holds FIFOs, which would block).
fn read_pid(path: &Path) -> Option<u32> {
    if !std::fs::symlink_metadata(path).ok()?.is_file() {
        return None;
    }
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The exec ids named by the pid files in `bundle` (sorted), or `None` if it cannot be read. Only
/// names are read, nothing is opened.
fn exec_ids_in(bundle: &Path) -> Option<Vec<String>> {
    let mut ids = vec![];
    for entry in std::fs::read_dir(bundle).ok()?.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".pid")) else {
            continue;
        };
        // An exec named "init" would share the init's pid file, so it cannot be told from it.
        if id != "init" && Id::new(id).is_ok() {
            ids.push(id.to_string());
        }
    }
    ids.sort();
    Some(ids)
}

/// The exec ids of a task's running processes, as the runc shim tags them in `ListPids`; none if the
/// task is gone.
async fn running_exec_ids(client: &Client, container_id: &str) -> Result<Vec<String>> {
    let what = format!("list the processes of container {container_id}");
    let mut tasks = client.tasks();
    let call = tasks.list_pids(client.request(ListPidsRequest {
        container_id: container_id.to_string(),
    }));
    let processes = match timeout(RPC_TIMEOUT, call).await {
        Ok(Ok(r)) => r.into_inner().processes,
        Ok(Err(s)) if s.code() == tonic::Code::NotFound => return Ok(vec![]),
        Ok(Err(s)) => return Err(Error::from_status(what, s)),
        Err(_) => {
            return Err(Error::new(
                ErrorKind::DeadlineExceeded,
                format!("{what}: no answer within {RPC_TIMEOUT:?}"),
            ))
        }
    };
    let mut ids: Vec<String> = processes
        .iter()
        .filter_map(|p| p.info.as_ref().and_then(exec_id_of))
        .collect();
    ids.sort();
    Ok(ids)
}

fn exec_id_of(info: &prost_types::Any) -> Option<String> {
    // typeurl sends bare full names; be lenient about a `…/` prefix.
    if info.type_url.rsplit('/').next()? != PROCESS_DETAILS_TYPE_URL {
        return None;
    }
    let details = ProcessDetails::decode(info.value.as_slice()).ok()?;
    (!details.exec_id.is_empty()).then_some(details.exec_id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::os::unix::fs::symlink;

    fn running(container_id: &str, pid: u32) -> TaskInfo {
        TaskInfo {
            container_id: container_id.into(),
            pid,
            status: TaskStatus::Running,
            exit_status: None,
        }
    }

    #[test]
    fn pid_files_name_the_execs_and_nothing_else_counts() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path();
        for name in [
            "init.pid",
            "e1.pid",
            "e2.pid",
            "config.json",
            "address",
            "bad id.pid",
        ] {
            std::fs::write(bundle.join(name), "1").unwrap();
        }
        std::fs::create_dir(bundle.join("dir.pid")).unwrap();
        symlink(bundle.join("e1.pid"), bundle.join("link.pid")).unwrap();
        // The shim's log is a FIFO: never opened.
        nix::unistd::mkfifo(&bundle.join("log"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        nix::unistd::mkfifo(&bundle.join("fifo.pid"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(exec_ids_in(bundle).unwrap(), ["e1", "e2"]);
        assert_eq!(read_pid(&bundle.join("fifo.pid")), None);
        assert_eq!(exec_ids_in(&bundle.join("missing")), None);
    }

    #[test]
    fn the_bundle_root_is_found_from_the_shim_of_a_running_task() {
        let root = tempfile::tempdir().unwrap();
        let ns_dir = root.path().join("ns1");
        let bundle = ns_dir.join("c1");
        std::fs::create_dir_all(&bundle).unwrap();
        // A stand-in for a shim: it runs in the bundle, and its child plays the task's init.
        let mut shim = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .current_dir(&bundle)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(shim.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let init: u32 = line.trim().parse().unwrap();
        let task = running("c1", init);
        let before_pid_file = bundle_root_of("ns1", &task);
        std::fs::write(bundle.join(INIT_PID_FILE), init.to_string()).unwrap();
        let found = find_bundle_root("ns1", &[running("c0", 0), task.clone()]);
        let wrong_namespace = bundle_root_of("ns2", &task);
        let other_task = bundle_root_of("ns1", &running("c2", init));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(init as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        shim.wait().unwrap();
        assert_eq!(before_pid_file, None, "init.pid must hold the task's pid");
        assert_eq!(found, Some(ns_dir.canonicalize().unwrap()));
        assert_eq!(wrong_namespace, None);
        assert_eq!(other_task, None);
    }

    #[test]
    fn list_pids_details_name_execs() {
        let details = prost_types::Any {
            type_url: PROCESS_DETAILS_TYPE_URL.into(),
            value: ProcessDetails {
                exec_id: "e1".into(),
            }
            .encode_to_vec(),
        };
        assert_eq!(exec_id_of(&details).as_deref(), Some("e1"));
        let other = prost_types::Any {
            type_url: "example.Other".into(),
            value: details.value.clone(),
        };
        assert_eq!(exec_id_of(&other), None);
        let empty = prost_types::Any {
            type_url: PROCESS_DETAILS_TYPE_URL.into(),
            value: vec![],
        };
        assert_eq!(exec_id_of(&empty), None);
    }
}
