//! How processes are and how they ended: task states, exit statuses, and the classification of a
//! command that could not be started (docker's 126/127). Plain values, shared by tasks, execs,
//! containers and events.

use std::time::SystemTime;

use containerd_client::types::v1::{Process, Status};

use crate::error::{Error, ErrorKind};
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

/// Why a process could not be started, as docker distinguishes it (exit codes 127 and 126).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecFailure {
    /// The command does not exist in the container.
    NotFound,
    /// The command exists but cannot be executed.
    NotExecutable,
}

impl ExecFailure {
    /// Classify the runtime's error text (runc's messages, as docker does).
    pub fn classify(message: &str) -> Option<ExecFailure> {
        let m = message.to_ascii_lowercase();
        // "unable to retrieve OCI runtime error ... exec: \"runc\": not found" is the runtime
        // itself missing, not the container's command: an lcd error (125), not a 127.
        if m.contains("unable to retrieve oci runtime error") {
            return None;
        }
        if !(m.contains("exec") || m.contains("starting container process")) {
            return None;
        }
        if m.contains("executable file not found") || m.contains("no such file or directory") {
            Some(ExecFailure::NotFound)
        } else if m.contains("permission denied")
            || m.contains("exec format error")
            || m.contains("is a directory")
        {
            Some(ExecFailure::NotExecutable)
        } else {
            None
        }
    }

    /// Of an error returned by create or start, if it is one.
    pub fn of(error: &Error) -> Option<ExecFailure> {
        match error.kind() {
            ErrorKind::NotFound | ErrorKind::PermissionDenied => {
                ExecFailure::classify(error.message())
            }
            _ => None,
        }
    }
}

/// Map a create/start failure, recognising a command that cannot be run.
pub(crate) fn start_error(context: String, status: tonic::Status) -> Error {
    match ExecFailure::classify(status.message()) {
        Some(ExecFailure::NotFound) => Error::new(
            ErrorKind::NotFound,
            format!("{context}: {}", runtime_reason(status.message())),
        )
        .with_source(status),
        Some(ExecFailure::NotExecutable) => Error::new(
            ErrorKind::PermissionDenied,
            format!("{context}: {}", runtime_reason(status.message())),
        )
        .with_source(status),
        None => Error::from_status(context, status),
    }
}

/// The useful tail of runc's nested error ("exec: \"x\": executable file not found in $PATH").
fn runtime_reason(message: &str) -> &str {
    let message = message.trim().trim_end_matches(": unknown");
    message
        .rfind("exec: ")
        .map(|i| &message[i..])
        .unwrap_or(message)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_runc_exec_errors() {
        let nf = "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown";
        assert_eq!(ExecFailure::classify(nf), Some(ExecFailure::NotFound));
        assert_eq!(
            runtime_reason(nf),
            "exec: \"nope\": executable file not found in $PATH"
        );
        let pd = "OCI runtime create failed: runc create failed: unable to start container process: exec: \"/etc/passwd\": permission denied: unknown";
        assert_eq!(ExecFailure::classify(pd), Some(ExecFailure::NotExecutable));
        assert_eq!(ExecFailure::classify("container not found"), None);
        let runc_missing = "OCI runtime create failed: unable to retrieve OCI runtime error (open /run/x/log.json: no such file or directory): exec: \"runc\": executable file not found in $PATH: unknown";
        assert_eq!(ExecFailure::classify(runc_missing), None);
    }
}
