//! A container's task: its init process, as containerd runs it.

use std::time::{Duration, SystemTime};

use containerd_client::services::v1::{
    DeleteTaskRequest, KillRequest, ResizePtyRequest, StartRequest, WaitRequest,
};
use containerd_client::types::v1::{Process, Status};

use crate::container::Container;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::io::all_fifos;
use crate::signal::Signal;
use crate::time::from_timestamp;

/// How long `force_delete` waits for a killed task to stop before deleting it anyway.
const FORCE_DELETE_WAIT: Duration = Duration::from_secs(10);

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
    /// containerd does not know.
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

/// Send `signal` to process `exec_id` (empty: the init process) of container `container_id`, or with
/// `all` to every process of the task; `what` names the process in errors.
pub(crate) async fn send_kill(
    client: &crate::client::Client,
    container_id: &Id,
    exec_id: &str,
    signal: Signal,
    all: bool,
    what: &str,
) -> Result<()> {
    client
        .tasks()
        .kill(client.request(KillRequest {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
            signal: signal.as_u32(),
            all,
        }))
        .await
        .map_err(|s| {
            if s.code() == tonic::Code::NotFound {
                Error::not_found(format!("cannot kill {what}: it is not running")).with_source(s)
            } else {
                Error::from_status(format!("kill {what}"), s)
            }
        })?;
    Ok(())
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

/// The init process of a container.
#[derive(Clone, Debug)]
pub struct Task {
    container: Container,
    pid: u32,
}

impl Task {
    pub(crate) fn new(container: Container, pid: u32) -> Self {
        Task { container, pid }
    }

    /// The init process's pid on the host.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The container's id.
    pub fn id(&self) -> &Id {
        self.container.id()
    }

    /// The container this task belongs to.
    pub fn container(&self) -> &Container {
        &self.container
    }

    fn client(&self) -> &crate::client::Client {
        self.container.client()
    }

    /// Start a created task; returns its pid.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %self.id()))]
    pub async fn start(&self) -> Result<u32> {
        let response = self
            .client()
            .tasks()
            .start(self.client().request(StartRequest {
                container_id: self.id().to_string(),
                exec_id: String::new(),
            }))
            .await
            .map_err(|s| start_error(format!("start container {}", self.id()), s))?;
        Ok(response.into_inner().pid)
    }

    /// Send `signal` to the init process.
    pub async fn kill(&self, signal: Signal) -> Result<()> {
        self.send_signal(signal, false).await
    }

    /// Send `signal` to every process of the task.
    pub async fn kill_all(&self, signal: Signal) -> Result<()> {
        self.send_signal(signal, true).await
    }

    async fn send_signal(&self, signal: Signal, all: bool) -> Result<()> {
        let what = format!("container {}", self.id());
        send_kill(self.client(), self.id(), "", signal, all, &what).await
    }

    /// Wait until the init process exits.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %self.id()))]
    pub async fn wait(&self) -> Result<ExitStatus> {
        let response = self
            .client()
            .tasks()
            .wait(self.client().request(WaitRequest {
                container_id: self.id().to_string(),
                exec_id: String::new(),
            }))
            .await
            .map_err(|s| Error::from_status(format!("wait for container {}", self.id()), s))?
            .into_inner();
        Ok(ExitStatus {
            code: response.exit_status,
            exited_at: response.exited_at.as_ref().and_then(from_timestamp),
        })
    }

    /// The task's current state.
    pub async fn status(&self) -> Result<TaskStatus> {
        let process = self.client().get_process(self.id(), "").await?;
        Ok(TaskStatus::from_proto(process.status))
    }

    /// Resize the init process's terminal.
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.client()
            .tasks()
            .resize_pty(self.client().request(ResizePtyRequest {
                container_id: self.id().to_string(),
                exec_id: String::new(),
                width,
                height,
            }))
            .await
            .map_err(|s| {
                Error::from_status(format!("resize terminal of container {}", self.id()), s)
            })?;
        Ok(())
    }

    /// Delete a stopped task, returning how it exited, and remove its FIFOs. A running task is
    /// [`ErrorKind::FailedPrecondition`]; a task that is gone already is [`ErrorKind::NotFound`]
    /// (its FIFOs are removed all the same). Runs to completion if the caller stops waiting.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %self.id()))]
    pub async fn delete(&self) -> Result<ExitStatus> {
        let this = self.clone();
        crate::cancel::detached("delete task", async move { this.delete_now().await }).await
    }

    async fn delete_now(&self) -> Result<ExitStatus> {
        let response = self
            .client()
            .tasks()
            .delete(self.client().request(DeleteTaskRequest {
                container_id: self.id().to_string(),
            }))
            .await
            .map_err(|s| match s.code() {
                _ if delete_refused_as_running(&s) => Error::new(
                    ErrorKind::FailedPrecondition,
                    format!(
                        "cannot delete the task of container {}: it has not stopped (kill it first)",
                        self.id()
                    ),
                )
                .with_source(s),
                tonic::Code::NotFound => {
                    Error::not_found(format!("container {} has no task", self.id())).with_source(s)
                }
                _ => Error::from_status(format!("delete task of container {}", self.id()), s),
            })
            .inspect_err(|e| {
                // No task (deleted by an earlier call whose answer was lost, or by containerd after
                // its shim died): whatever FIFOs it had are stale.
                if e.kind() == ErrorKind::NotFound {
                    self.remove_fifos();
                }
            })?
            .into_inner();
        self.container.task_was_deleted();
        self.remove_fifos();
        Ok(ExitStatus {
            code: response.exit_status,
            exited_at: response.exited_at.as_ref().and_then(from_timestamp),
        })
    }

    /// Kill every process of the task and delete it, whatever its state (also a task only created).
    /// Runs to completion if the caller stops waiting.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %self.id()))]
    pub async fn force_delete(&self) -> Result<()> {
        let this = self.clone();
        crate::cancel::detached(
            "force delete task",
            async move { this.force_delete_now().await },
        )
        .await
    }

    /// A guard that force-deletes this task unless disarmed: for a task whose creator may be
    /// dropped before handing it over.
    pub(crate) fn removal_guard(&self) -> crate::cancel::CleanupGuard {
        let task = self.clone();
        crate::cancel::CleanupGuard::new(async move {
            if let Err(e) = task.force_delete_now().await {
                tracing::warn!(container = %task.id(), error = %e, "removing the task of a cancelled call");
            }
        })
    }

    async fn force_delete_now(&self) -> Result<()> {
        let signalled = match self.kill_all(Signal::KILL).await {
            Ok(()) => true,
            // No process to signal: it exited, or never ran (a start that failed, e.g. a restore
            // from a bad checkpoint, leaves a Created task with pid 0 whose wait never returns).
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::FailedPrecondition
                ) =>
            {
                false
            }
            Err(e) => return Err(e),
        };
        // Delete fails while the process is still going down; wait for it, within bounds.
        let wait = async {
            if signalled {
                self.wait().await.map(|_| ())
            } else {
                Ok(())
            }
        };
        match tokio::time::timeout(FORCE_DELETE_WAIT, wait).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::NotFound => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::DeadlineExceeded,
                    format!(
                        "container {} did not stop within {:?} of SIGKILL",
                        self.id(),
                        FORCE_DELETE_WAIT
                    ),
                ))
            }
        }
        match self.delete_now().await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn remove_fifos(&self) {
        let fifos = all_fifos(self.container.bundle_dir(), self.id().as_str());
        if let Err(e) = fifos.remove() {
            tracing::warn!(container = %self.id(), error = %e, "removing fifos");
        }
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
