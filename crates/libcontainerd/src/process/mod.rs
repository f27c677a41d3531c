//! Exec processes: more processes started inside a running task ([`Task::exec`]), their stdio,
//! signals, terminals and exit statuses, and re-attaching to one after the caller restarted.
//!
//! An exec goes through two RPCs: `Tasks.Exec` registers the process with the shim (nothing runs
//! yet) and `Tasks.Start` runs it. containerd 1.6's runc shim opens the exec's FIFOs only in `Start`,
//! so the output readers are opened before `Exec` (the shim blocks on a writer-side open until a
//! reader exists) and the stdin writer only after `Start` (before it, an `O_WRONLY` open fails with
//! `ENXIO`). For the same reason the stdin close handshake (`CloseIO`) is armed only after `Start`:
//! a `CloseIO` sent earlier is lost and `cat /dev/null | exec -i cat` would hang (moby#38001).
//!
//! Whatever fails after `Exec` succeeded, the process is deleted again and its FIFOs removed, so a
//! failed exec leaves neither a process in the shim nor a file in the bundle directory.

mod abandoned;
mod builder;
mod exec;

use std::time::Duration;

use containerd_client::services::v1::{
    DeleteProcessRequest, GetRequest, ResizePtyRequest, WaitRequest,
};

pub(crate) use abandoned::{hold as hold_output_fifo, remove_exec_fifos};
pub(crate) use builder::process_to_any;
pub use builder::{exec_process, ExecProcessBuilder, PROCESS_TYPE_URL};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::io::all_fifos;
use crate::signal::Signal;
use crate::task::{ExitStatus, Task, TaskStatus};
use crate::time::from_timestamp;

/// Bound on the cleanup after a failed exec (kill, wait, delete), so a wedged shim cannot hang the
/// caller's error path.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A process started by [`Task::exec`] inside a running container (the reference's `Process`).
///
/// Cheap to clone; every clone names the same containerd process.
#[derive(Clone, Debug)]
pub struct Process {
    task: Task,
    id: Id,
    pid: u32,
    terminal: bool,
}

impl Process {
    /// The exec id.
    pub fn id(&self) -> &Id {
        &self.id
    }

    /// The process's pid on the host.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The id of the container the process runs in.
    pub fn container_id(&self) -> &Id {
        self.task.id()
    }

    /// The task the process runs in.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Whether the process has a terminal (one output stream, resizable).
    pub fn has_terminal(&self) -> bool {
        self.terminal
    }

    fn client(&self) -> &Client {
        self.task.container().client()
    }

    fn describe(&self) -> String {
        format!("exec {} in container {}", self.id, self.task.id())
    }

    /// Send `signal` to the process.
    pub async fn kill(&self, signal: Signal) -> Result<()> {
        let what = self.describe();
        crate::task::send_kill(
            self.client(),
            self.task.id(),
            self.id.as_str(),
            signal,
            false,
            &what,
        )
        .await
    }

    /// Resize the process's terminal to `width` columns and `height` rows. A process without a
    /// terminal is [`ErrorKind::FailedPrecondition`]: containerd's shim silently ignores such a call,
    /// which would hide a caller's mistake.
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        if !self.terminal {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("cannot resize {}: it has no terminal", self.describe()),
            ));
        }
        if width == 0 || height == 0 {
            return Err(Error::invalid(format!(
                "cannot resize {} to {width}x{height}: width and height must be positive",
                self.describe()
            )));
        }
        self.client()
            .tasks()
            .resize_pty(self.client().request(ResizePtyRequest {
                container_id: self.task.id().to_string(),
                exec_id: self.id.to_string(),
                width,
                height,
            }))
            .await
            .map_err(|s| self.map_missing(s, "resize terminal of"))?;
        Ok(())
    }

    /// Wait until the process exits. Returns at once for a process that has exited already (until
    /// it is deleted). The exit status is this process's own, also when the container's init
    /// process exits first.
    pub async fn wait(&self) -> Result<ExitStatus> {
        let response = self
            .client()
            .tasks()
            .wait(self.client().request(WaitRequest {
                container_id: self.task.id().to_string(),
                exec_id: self.id.to_string(),
            }))
            .await
            .map_err(|s| self.map_missing(s, "wait for"))?
            .into_inner();
        Ok(ExitStatus {
            code: response.exit_status,
            exited_at: response.exited_at.as_ref().and_then(from_timestamp),
        })
    }

    /// The process's state.
    pub async fn status(&self) -> Result<TaskStatus> {
        let process = get_exec(self.client(), self.task.id(), &self.id).await?;
        Ok(TaskStatus::from_proto(process.status))
    }

    /// Delete the exited process, returning how it exited, and remove its FIFOs. A process still
    /// running is [`ErrorKind::FailedPrecondition`]; one that is gone already is
    /// [`ErrorKind::NotFound`] (its FIFOs are removed all the same). Runs to completion if the
    /// caller stops waiting.
    pub async fn delete(&self) -> Result<ExitStatus> {
        let this = self.clone();
        crate::cancel::detached("delete exec", async move { this.delete_now().await }).await
    }

    async fn delete_now(&self) -> Result<ExitStatus> {
        let response = self
            .client()
            .tasks()
            .delete_process(self.client().request(DeleteProcessRequest {
                container_id: self.task.id().to_string(),
                exec_id: self.id.to_string(),
            }))
            .await
            .map_err(|s| {
                if crate::task::delete_refused_as_running(&s) {
                    self.still_running(s)
                } else {
                    self.map_missing(s, "delete")
                }
            })
            .inspect_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    self.remove_fifos();
                }
            })?
            .into_inner();
        self.remove_fifos();
        Ok(ExitStatus {
            code: response.exit_status,
            exited_at: response.exited_at.as_ref().and_then(from_timestamp),
        })
    }

    /// Kill the process (if it still runs), wait for it within bounds and delete it. Runs to
    /// completion if the caller stops waiting.
    pub async fn force_delete(&self) -> Result<ExitStatus> {
        let this = self.clone();
        crate::cancel::detached(
            "force delete exec",
            async move { this.force_delete_now().await },
        )
        .await
    }

    async fn force_delete_now(&self) -> Result<ExitStatus> {
        match self.kill(Signal::KILL).await {
            Ok(()) => {}
            // Already exited (or never started): nothing to kill.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::FailedPrecondition
                ) => {}
            Err(e) => return Err(e),
        }
        match tokio::time::timeout(CLEANUP_TIMEOUT, self.wait()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::NotFound => {
                // Deleted already (or the whole task is gone): only our files may be left.
                self.remove_fifos();
                return Err(e);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::DeadlineExceeded,
                    format!(
                        "{} did not stop within {:?} of SIGKILL",
                        self.describe(),
                        CLEANUP_TIMEOUT
                    ),
                ))
            }
        }
        self.delete_now().await
    }

    /// Delete a process that was registered (and maybe started) but failed to get going, within
    /// bounds. Errors are logged: the caller reports the original failure.
    async fn discard(&self) {
        let cleanup = async {
            match self.delete_now().await {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == ErrorKind::FailedPrecondition => {
                    self.force_delete_now().await.map(|_| ())
                }
                Err(e) => Err(e),
            }
        };
        match tokio::time::timeout(CLEANUP_TIMEOUT, cleanup).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::NotFound => {}
            Ok(Err(e)) => {
                tracing::warn!(exec = %self.id, container = %self.task.id(), error = %e, "removing an exec that failed to start")
            }
            Err(_) => {
                tracing::warn!(exec = %self.id, container = %self.task.id(), "removing an exec that failed to start timed out")
            }
        }
        self.remove_fifos();
    }

    fn still_running(&self, status: tonic::Status) -> Error {
        Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "cannot delete {}: it has not exited (kill it first)",
                self.describe()
            ),
        )
        .with_source(status)
    }

    fn map_missing(&self, status: tonic::Status, action: &str) -> Error {
        if status.code() == tonic::Code::NotFound {
            Error::not_found(format!("{action} {}: no such process", self.describe()))
                .with_source(status)
        } else {
            Error::from_status(format!("{action} {}", self.describe()), status)
        }
    }

    fn remove_fifos(&self) {
        let fifos = all_fifos(self.task.container().bundle_dir(), self.id.as_str());
        if let Err(e) = fifos.remove() {
            tracing::warn!(exec = %self.id, container = %self.task.id(), error = %e, "removing fifos");
        }
    }
}

/// The raw state of exec `exec_id`, with a "no such exec" error when containerd does not know it.
async fn get_exec(
    client: &Client,
    container_id: &Id,
    exec_id: &Id,
) -> Result<containerd_client::types::v1::Process> {
    let response = client
        .tasks()
        .get(client.request(GetRequest {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
        }))
        .await
        .map_err(|s| {
            if s.code() == tonic::Code::NotFound {
                Error::not_found(format!(
                    "no exec {exec_id} in container {container_id} (or no running task)"
                ))
                .with_source(s)
            } else {
                Error::from_status(format!("get exec {exec_id} in container {container_id}"), s)
            }
        })?
        .into_inner();
    response.process.ok_or_else(|| {
        Error::internal(format!(
            "containerd returned no process for exec {exec_id} in container {container_id}"
        ))
    })
}
