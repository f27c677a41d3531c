//! How processes are and how they ended: task states and exit statuses. Plain values, shared by
//! tasks, execs, containers and events. Why a process could not be started is
//! [`runtime_failure`](crate::runtime_failure)'s.

use std::time::SystemTime;

use containerd_client::types::v1::{Process, Status};

use crate::time::from_timestamp;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExitStatus {
    /// The exit code; `128 + n` when killed by signal `n`.
    pub code: u32,
    /// When it exited, if containerd knows.
    #[serde(serialize_with = "serialize_time")]
    pub exited_at: Option<SystemTime>,
}

fn serialize_time<S: serde::Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&crate::time::rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// A task's state, as containerd reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited, not deleted.
    Stopped,
    /// Frozen.
    Paused,
    /// Being frozen.
    Pausing,
    /// containerd could not ask the shim in time (pid 0): the task exists and has not been seen
    /// to stop, so it counts as running (as docker counts it); see
    /// [`Task::release_abandoned_execs`](crate::Task::release_abandoned_execs) for the usual cause.
    Unknown,
}

impl TaskStatus {
    pub(crate) fn from_proto(status: i32) -> TaskStatus {
        match Status::try_from(status) {
            Ok(Status::Created) => TaskStatus::Created,
            Ok(Status::Running) => TaskStatus::Running,
            Ok(Status::Stopped) => TaskStatus::Stopped,
            Ok(Status::Paused) => TaskStatus::Paused,
            Ok(Status::Pausing) => TaskStatus::Pausing,
            Ok(Status::Unknown) | Err(_) => TaskStatus::Unknown,
        }
    }

    /// Lowercase name (`running`, `stopped`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Created => "created",
            TaskStatus::Running => "running",
            TaskStatus::Stopped => "stopped",
            TaskStatus::Paused => "paused",
            TaskStatus::Pausing => "pausing",
            TaskStatus::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One task as `list_tasks` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The container the task belongs to.
    pub container_id: String,
    /// The init process's pid.
    pub pid: u32,
    /// Its state.
    pub status: TaskStatus,
    /// How it ended, once stopped.
    pub exit_status: Option<ExitStatus>,
}

impl TaskInfo {
    pub(crate) fn from_process(p: &Process) -> TaskInfo {
        let status = TaskStatus::from_proto(p.status);
        // containerd 1.6 fills only `id` (the container id) in ListTasks; 1.7 fills both.
        let container_id = if p.container_id.is_empty() {
            p.id.clone()
        } else {
            p.container_id.clone()
        };
        TaskInfo {
            container_id,
            pid: p.pid,
            status,
            exit_status: (status == TaskStatus::Stopped).then(|| ExitStatus {
                code: p.exit_status,
                exited_at: p.exited_at.as_ref().and_then(from_timestamp),
            }),
        }
    }
}

/// Whether containerd refused a delete because the process still runs: containerd 1.6 says Unknown
/// ("cannot delete a running process"), 1.7 FailedPrecondition.
pub(crate) fn delete_refused_as_running(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::FailedPrecondition => true,
        tonic::Code::Unknown => status.message().contains("running"),
        _ => false,
    }
}
