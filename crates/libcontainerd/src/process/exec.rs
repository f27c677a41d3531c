//! Starting execs in a task and finding or re-attaching to existing ones.

use containerd_client::services::v1::{ExecProcessRequest, StartRequest};
use oci_spec::runtime::Process as OciProcess;

use super::{builder::process_to_any, get_exec, Process};
use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::id::Id;
use crate::io::{self, all_fifos, CloseTarget, DirectIo, PreparedIo, StdioConfig, StdioPaths};
use crate::task::{start_error, Task, TaskStatus};

impl Task {
    /// Start `process` inside this running task as exec `exec_id` (the reference's `Exec`).
    ///
    /// Whether the process gets a terminal comes from `process.terminal` (`stdio.terminal` is
    /// ignored): with one there is a single output stream and no stderr FIFO. FIFOs are
    /// `<bundle>/<exec id>-stdin|-stdout|-stderr`. `attach` receives the stdio handles once the
    /// process runs; its output waits in the FIFOs until then, so nothing is lost. Closing the
    /// [`Stdin`](crate::Stdin) handle (or dropping it) delivers end of file to the process.
    ///
    /// Errors: an exec id in use in this container is [`ErrorKind::AlreadyExists`], one equal to
    /// the container's id [`ErrorKind::Conflict`]; a container that is not running is [`ErrorKind::FailedPrecondition`];
    /// a task that is gone is [`ErrorKind::NotFound`]; a command that cannot be run is classified by
    /// [`ExecFailure::of`](crate::ExecFailure::of). On any failure the process is deleted again and
    /// its FIFOs removed; so is it if the caller drops the returned future before it resolves.
    pub async fn exec(
        &self,
        exec_id: &Id,
        process: OciProcess,
        stdio: &StdioConfig,
        attach: impl FnOnce(DirectIo) -> Result<(), BoxError>,
    ) -> Result<Process> {
        let terminal = process.terminal().unwrap_or(false);
        let config = StdioConfig {
            terminal,
            ..stdio.clone()
        };
        let spec = process_to_any(&process)?;
        let command = process.args().as_ref().and_then(|a| a.first().cloned());
        if exec_id == self.id() {
            // The init process's FIFOs carry the container id: the same exec id would replace them.
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "exec id {exec_id} is the id of container {}; choose another",
                    self.id()
                ),
            ));
        }
        let this = self.clone();
        let id = exec_id.clone();
        let (exec, io, guard) = crate::cancel::detached("exec", async move {
            this.exec_now(&id, spec, command.as_deref(), &config).await
        })
        .await?;
        match attach(io)
            .map_err(|e| Error::from_callback(format!("attach stdio of {}", exec.describe()), e))
        {
            Ok(()) => {
                guard.disarm();
                Ok(exec)
            }
            Err(e) => {
                guard.disarm();
                let discarding = exec.clone();
                let _ = crate::cancel::detached("discard exec", async move {
                    discarding.discard().await;
                    Ok(())
                })
                .await;
                Err(e)
            }
        }
    }

    /// Run `process` as exec `exec_id` and hand back its stdio: [`Task::exec`] without a callback,
    /// with the same guarantees and errors.
    pub async fn spawn_exec(
        &self,
        exec_id: &Id,
        process: OciProcess,
        stdio: &StdioConfig,
    ) -> Result<(Process, DirectIo)> {
        let mut handles = None;
        let exec = self
            .exec(exec_id, process, stdio, |io| {
                handles = Some(io);
                Ok(())
            })
            .await?;
        Ok((exec, handles.unwrap_or_default()))
    }

    /// Register and start the exec; the guard discards it unless disarmed.
    async fn exec_now(
        &self,
        exec_id: &Id,
        spec: prost_types::Any,
        command: Option<&str>,
        config: &StdioConfig,
    ) -> Result<(Process, DirectIo, crate::cancel::CleanupGuard)> {
        let container = self.container();
        let client = container.client();
        let bundle = container.bundle_dir();
        crate::container::make_bundle_dir(bundle)?;
        self.check_exec_id_free(exec_id).await?;

        let prepared = PreparedIo::prepare(bundle, exec_id.as_str(), config)?;
        let StdioPaths {
            stdin,
            stdout,
            stderr,
            terminal,
        } = prepared.paths.clone();
        let request = ExecProcessRequest {
            container_id: self.id().to_string(),
            stdin,
            stdout,
            stderr,
            terminal,
            spec: Some(spec),
            exec_id: exec_id.to_string(),
        };
        if let Err(status) = client.tasks().exec(client.request(request)).await {
            prepared.abandon();
            return Err(self.exec_error(exec_id, status).await);
        }

        // From here on the process exists in containerd: every failure must delete it again.
        let mut exec = Process {
            task: self.clone(),
            id: exec_id.clone(),
            pid: 0,
            terminal: config.terminal,
        };
        let started = client
            .tasks()
            .start(client.request(StartRequest {
                container_id: self.id().to_string(),
                exec_id: exec_id.to_string(),
            }))
            .await;
        exec.pid = match started {
            Ok(response) => response.into_inner().pid,
            Err(status) => {
                let error = self.start_exec_error(exec_id, command, status).await;
                exec.discard().await;
                prepared.abandon();
                return Err(error);
            }
        };
        let closer = prepared.closer.clone();
        let result = async {
            // The shim holds the read side of stdin only from Start on.
            let io = prepared.finish()?;
            closer
                .process_ready(CloseTarget {
                    client: client.clone(),
                    container_id: self.id().to_string(),
                    exec_id: exec_id.to_string(),
                })
                .await?;
            Ok(io)
        }
        .await;
        match result {
            Ok(io) => {
                let discarding = exec.clone();
                let guard = crate::cancel::CleanupGuard::new(async move {
                    discarding.discard().await;
                });
                Ok((exec, io, guard))
            }
            Err(e) => {
                exec.discard().await;
                Err(e)
            }
        }
    }

    /// An existing exec of this task, e.g. one started by an earlier run of the caller.
    /// [`ErrorKind::NotFound`] if there is none.
    pub async fn load_process(&self, exec_id: &Id) -> Result<Process> {
        let process = get_exec(self.container().client(), self.id(), exec_id).await?;
        Ok(Process {
            task: self.clone(),
            id: exec_id.clone(),
            pid: process.pid,
            terminal: process.terminal,
        })
    }

    /// Re-open the stdio that containerd recorded for exec `exec_id` and hand it to `attach`, like
    /// [`Container::attach_task`](crate::Container::attach_task) for the init process. Closing the
    /// re-opened stdin reaches the process. Only one reader may be attached at a time.
    pub async fn attach_process(
        &self,
        exec_id: &Id,
        attach: impl FnOnce(DirectIo) -> Result<(), BoxError>,
    ) -> Result<Process> {
        let container = self.container();
        let process = get_exec(container.client(), self.id(), exec_id).await?;
        if !container.bundle_dir().is_dir() {
            return Err(Error::not_found(format!(
                "cannot re-attach to exec {exec_id} in container {}: its bundle dir {} is gone",
                self.id(),
                container.bundle_dir().display()
            )));
        }
        let paths = StdioPaths {
            stdin: process.stdin.clone(),
            stdout: process.stdout.clone(),
            stderr: process.stderr.clone(),
            terminal: process.terminal,
        };
        let target = CloseTarget {
            client: container.client().clone(),
            container_id: self.id().to_string(),
            exec_id: exec_id.to_string(),
        };
        let io = io::reopen(&paths, target)?;
        attach(io).map_err(|e| {
            Error::from_callback(
                format!("attach stdio of exec {exec_id} in container {}", self.id()),
                e,
            )
        })?;
        Ok(Process {
            task: self.clone(),
            id: exec_id.clone(),
            pid: process.pid,
            terminal: process.terminal,
        })
    }

    /// Refuse an exec id whose FIFOs belong to a live exec: preparing our FIFOs would replace them
    /// and cut that exec off from anyone re-attaching. Stale FIFOs (left by a crash) are fine.
    /// Costs an RPC only when such files exist.
    async fn check_exec_id_free(&self, exec_id: &Id) -> Result<()> {
        let fifos = all_fifos(self.container().bundle_dir(), exec_id.as_str());
        let any_present = [&fifos.stdin, &fifos.stdout, &fifos.stderr]
            .into_iter()
            .flatten()
            .any(|p| p.symlink_metadata().is_ok());
        if !any_present {
            return Ok(());
        }
        match get_exec(self.container().client(), self.id(), exec_id).await {
            Ok(_) => Err(self.exec_id_in_use(exec_id)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn exec_id_in_use(&self, exec_id: &Id) -> Error {
        Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "exec id {exec_id} is already in use in container {}",
                self.id()
            ),
        )
    }

    /// Explain a failed `Tasks.Exec`: the id, or the state of the container.
    async fn exec_error(&self, exec_id: &Id, status: tonic::Status) -> Error {
        let context = format!("exec {exec_id} in container {}", self.id());
        match status.code() {
            tonic::Code::AlreadyExists => self.exec_id_in_use(exec_id).with_source(status),
            tonic::Code::NotFound => Error::not_found(format!(
                "cannot exec in container {}: it has no task (is it running?)",
                self.id()
            ))
            .with_source(status),
            _ => match self.not_running(&status).await {
                Some(error) => error,
                None => Error::from_status(context, status),
            },
        }
    }

    /// Explain a failed `Tasks.Start` of an exec: a command that cannot be run, or the state of
    /// the container.
    async fn start_exec_error(
        &self,
        exec_id: &Id,
        command: Option<&str>,
        status: tonic::Status,
    ) -> Error {
        let cause = status.clone();
        let error = start_error(
            format!("exec {exec_id} in container {}", self.id()),
            command,
            status,
        );
        if crate::task::ExecFailure::of(&error).is_some() {
            return error;
        }
        self.not_running(&cause).await.unwrap_or(error)
    }

    /// [`ErrorKind::FailedPrecondition`] naming the task's state if it is not running. Called only
    /// on error paths, so the fast path pays no extra RPC.
    async fn not_running(&self, cause: &tonic::Status) -> Option<Error> {
        let state = match self.container().client().get_process(self.id(), "").await {
            Ok(process) => TaskStatus::from_proto(process.status),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Some(
                    Error::not_found(format!(
                        "cannot exec in container {}: it has no task (is it running?)",
                        self.id()
                    ))
                    .with_source(cause.clone()),
                )
            }
            Err(_) => return None,
        };
        (state != TaskStatus::Running).then(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "cannot exec in container {}: it is {state}, not running",
                    self.id()
                ),
            )
            .with_source(cause.clone())
        })
    }
}
