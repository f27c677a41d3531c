//! A container's task: its init process, as containerd runs it. The handle lives here; creating
//! and starting a task ([`Container::start`](crate::Container::start) and friends) in `create`.

mod create;

use std::time::Duration;

use containerd_client::services::v1::{
    DeleteTaskRequest, KillRequest, ResizePtyRequest, StartRequest, WaitRequest,
};

use crate::container::Container;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::io::all_fifos;
pub(crate) use crate::runtime_failure::start_error;
pub use crate::runtime_failure::ExecFailure;
use crate::signal::Signal;
pub(crate) use crate::status::delete_refused_as_running;
pub use crate::status::{ExitStatus, TaskInfo, TaskStatus};
use crate::time::from_timestamp;

/// How long `force_delete` waits for a killed task to stop before deleting it anyway.
const FORCE_DELETE_WAIT: Duration = Duration::from_secs(10);
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
            .map_err(|s| {
                start_error(
                    format!("start container {}", self.id()),
                    self.container.spec_command(),
                    s,
                )
            })?;
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

    /// Checkpoint the task with CRIU into `dir`, a new or empty directory (made if missing); with
    /// `exit` the container stops afterwards. A `dir` with `..` components is
    /// [`ErrorKind::InvalidArgument`], an existing non-empty one [`ErrorKind::AlreadyExists`]; a
    /// checkpoint without CRIU images is an error, never an empty success. Only a running task
    /// can be checkpointed: a paused, created or stopped one is [`ErrorKind::FailedPrecondition`]
    /// before anything is made. A failed dump (criu's error, a full disk) leaves the task running
    /// as it was and `dir` as it was found.
    pub async fn create_checkpoint(&self, dir: &std::path::Path, exit: bool) -> Result<()> {
        let status = self.status().await?;
        if status != TaskStatus::Running {
            let hint = match status {
                TaskStatus::Paused => "; unpause it first",
                _ => "",
            };
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "checkpoint container {}: it is {status}, not running{hint}",
                    self.id()
                ),
            ));
        }
        crate::checkpoint::checkpoint_task(self, dir, exit).await
    }

    fn remove_fifos(&self) {
        let fifos = all_fifos(self.container.bundle_dir(), self.id().as_str());
        if let Err(e) = fifos.remove() {
            tracing::warn!(container = %self.id(), error = %e, "removing fifos");
        }
        // With the task gone, so are its execs: FIFOs left by execs whose client died go too.
        crate::process::remove_exec_fifos(self.container.bundle_dir(), self.id());
    }
}
