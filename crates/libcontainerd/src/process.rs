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

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, GetRequest, ResizePtyRequest, StartRequest,
    WaitRequest,
};
use oci_spec::runtime::{BoxBuilder, Process as OciProcess, Spec, User};

use crate::client::Client;
use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::id::Id;
use crate::io::{self, all_fifos, CloseTarget, DirectIo, PreparedIo, StdioConfig, StdioPaths};
use crate::signal::Signal;
use crate::task::{start_error, ExitStatus, Task, TaskStatus};
use crate::time::from_timestamp;

/// The `type_url` containerd's `typeurl` registers the OCI process spec under; the shim refuses an
/// exec spec of any other type.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// Bound on the cleanup after a failed exec (kill, wait, delete), so a wedged shim cannot hang the
/// caller's error path.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Docker's default PATH, for an exec into a container whose spec has no process.
const DEFAULT_PATH: &str = crate::spec::DEFAULT_PATH;

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
        let (exec, io, guard) =
            crate::cancel::detached(
                "exec",
                async move { this.exec_now(&id, spec, &config).await },
            )
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
        config: &StdioConfig,
    ) -> Result<(Process, DirectIo, crate::cancel::CleanupGuard)> {
        let container = self.container();
        let client = container.client();
        let bundle = container.bundle_dir();
        ensure_dir(bundle)?;
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
                let error = self.start_exec_error(exec_id, status).await;
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
    async fn start_exec_error(&self, exec_id: &Id, status: tonic::Status) -> Error {
        let cause = status.clone();
        let error = start_error(format!("exec {exec_id} in container {}", self.id()), status);
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

fn ensure_dir(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(path)
        .map_err(|e| Error::io(format!("create bundle dir {}", path.display()), e))
}

/// Serialise an OCI process spec to the `Any` that `Tasks.Exec` takes.
pub fn process_to_any(process: &OciProcess) -> Result<prost_types::Any> {
    let value = serde_json::to_vec(process)
        .map_err(|e| Error::internal(format!("encode process spec as json: {e}")).with_source(e))?;
    Ok(prost_types::Any {
        type_url: PROCESS_TYPE_URL.to_string(),
        value,
    })
}

/// Start building the spec of an exec running `args` in a container with spec `base`.
///
/// The container's own process is the template, as Docker does: its env, working directory, user,
/// capabilities, rlimits, `noNewPrivileges` and security labels carry over; args, terminal and
/// console size do not.
pub fn exec_process<I, S>(base: &Spec, args: I) -> ExecProcessBuilder
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    ExecProcessBuilder {
        base: base.process().clone(),
        args: args.into_iter().map(Into::into).collect(),
        env: Vec::new(),
        cwd: None,
        user: None,
        terminal: false,
        console_size: None,
    }
}

/// Builds the OCI process spec of an exec. Setters never fail; [`ExecProcessBuilder::build`]
/// validates.
#[derive(Debug, Clone)]
pub struct ExecProcessBuilder {
    base: Option<OciProcess>,
    args: Vec<String>,
    env: Vec<String>,
    cwd: Option<String>,
    user: Option<(u32, u32)>,
    terminal: bool,
    console_size: Option<(u32, u32)>,
}

impl ExecProcessBuilder {
    /// Add or replace one `KEY=VALUE` variable (a later `KEY` replaces the container's in place).
    pub fn env(mut self, key_value: impl Into<String>) -> Self {
        self.env.push(key_value.into());
        self
    }

    /// The working directory inside the container (default: the container's); must be absolute.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Run as numeric `uid` and `gid` (default: the container's user). The container user's
    /// additional groups are dropped: they belong to that user.
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.user = Some((uid, gid));
        self
    }

    /// Give the process a terminal; also adds `TERM=xterm` unless `TERM` is set (default: no).
    pub fn terminal(mut self, yes: bool) -> Self {
        self.terminal = yes;
        self
    }

    /// The terminal's initial size in columns and rows, applied by runc before the command runs,
    /// so the command never sees a 0x0 terminal. Only used with a terminal.
    pub fn console_size(mut self, width: u32, height: u32) -> Self {
        self.console_size = Some((width, height));
        self
    }

    /// Validate the options and produce the spec. Every error is [`ErrorKind::InvalidArgument`].
    pub fn build(self) -> Result<OciProcess> {
        validate_args(&self.args)?;
        let mut process = self.base.unwrap_or_else(|| {
            let mut p = OciProcess::default();
            p.set_env(Some(vec![format!("PATH={DEFAULT_PATH}")]))
                .set_cwd(PathBuf::from("/"))
                .set_user(User::default())
                .set_capabilities(None)
                .set_rlimits(None)
                .set_apparmor_profile(None)
                .set_no_new_privileges(Some(true));
            p
        });

        let mut env = process.env().clone().unwrap_or_default();
        if self.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_string());
        }
        crate::spec::apply_env(&mut env, &self.env)?;

        if let Some(cwd) = &self.cwd {
            if !cwd.starts_with('/') || cwd.contains('\0') {
                return Err(Error::invalid(format!(
                    "working directory {cwd:?} must be an absolute path"
                )));
            }
            process.set_cwd(PathBuf::from(cwd));
        }
        if let Some((uid, gid)) = self.user {
            let mut user = User::default();
            user.set_uid(uid)
                .set_gid(gid)
                .set_umask(process.user().umask())
                .set_additional_gids(None)
                .set_username(None);
            process.set_user(user);
        }
        let console_size = match (self.terminal, self.console_size) {
            (true, Some((width, height))) if width > 0 && height > 0 => {
                // Box has no setters; its builder cannot fail with every field given.
                let size = BoxBuilder::default()
                    .width(u64::from(width))
                    .height(u64::from(height))
                    .build()
                    .map_err(|e| {
                        Error::internal(format!("build console size: {e}")).with_source(e)
                    })?;
                Some(size)
            }
            _ => None,
        };
        process
            .set_args(Some(self.args))
            .set_command_line(None)
            .set_env(Some(env))
            .set_terminal(Some(self.terminal))
            .set_console_size(console_size);
        Ok(process)
    }
}

fn validate_args(args: &[String]) -> Result<()> {
    match args.first() {
        None => return Err(Error::invalid("an exec needs a command")),
        Some(cmd) if cmd.is_empty() => {
            return Err(Error::invalid("the exec's command must not be empty"))
        }
        Some(_) => {}
    }
    if let Some(arg) = args.iter().find(|a| a.contains('\0')) {
        return Err(Error::invalid(format!(
            "argument {arg:?} must not contain a NUL byte"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::spec::SpecBuilder;

    fn base() -> Spec {
        SpecBuilder::new("/rootfs")
            .env("FOO=container")
            .env("KEEP=1")
            .cwd("/home")
            .user(1000, 1000)
            .terminal(true)
            .build()
            .unwrap()
    }

    #[test]
    fn exec_spec_inherits_the_container_process() {
        let spec = base();
        let p = exec_process(&spec, ["ls", "-l"]).build().unwrap();
        assert_eq!(
            p.args().as_deref(),
            Some(&["ls".to_string(), "-l".into()][..])
        );
        assert_eq!(p.cwd(), Path::new("/home"));
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(
            p.terminal(),
            Some(false),
            "the init's terminal does not carry over"
        );
        let env = p.env().clone().unwrap();
        assert!(env.contains(&"FOO=container".to_string()), "{env:?}");
        let base = spec.process().as_ref().unwrap();
        assert_eq!(p.capabilities(), base.capabilities());
        assert_eq!(p.rlimits(), base.rlimits());
        assert_eq!(p.no_new_privileges(), Some(true));
    }

    #[test]
    fn overrides_replace_in_place() {
        let p = exec_process(&base(), ["sh"])
            .env("FOO=exec")
            .env("NEW=x")
            .cwd("/tmp")
            .user(5, 6)
            .terminal(true)
            .console_size(80, 24)
            .build()
            .unwrap();
        let env = p.env().clone().unwrap();
        assert!(env.contains(&"FOO=exec".to_string()), "{env:?}");
        assert!(!env.contains(&"FOO=container".to_string()), "{env:?}");
        assert_eq!(env.last().map(String::as_str), Some("NEW=x"));
        assert_eq!(
            env.iter().filter(|e| e.starts_with("TERM=")).count(),
            1,
            "{env:?}"
        );
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (5, 6));
        assert_eq!(p.terminal(), Some(true));
        let size = p.console_size().unwrap();
        assert_eq!((size.width(), size.height()), (80, 24));
        let any = process_to_any(&p).unwrap();
        assert_eq!(any.type_url, PROCESS_TYPE_URL);
        let json: serde_json::Value = serde_json::from_slice(&any.value).unwrap();
        assert_eq!(json["consoleSize"]["width"], 80);
        assert_eq!(json["terminal"], true);
    }

    #[test]
    fn bad_options_are_invalid_arguments() {
        let spec = base();
        let none: [&str; 0] = [];
        for builder in [
            exec_process(&spec, none),
            exec_process(&spec, [""]),
            exec_process(&spec, ["a\0b"]),
            exec_process(&spec, ["ls"]).env("NOEQUALS"),
            exec_process(&spec, ["ls"]).env("=x"),
            exec_process(&spec, ["ls"]).cwd("relative"),
        ] {
            let err = builder.build().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        }
    }

    #[test]
    fn a_spec_without_process_gets_sane_defaults() {
        let mut spec = base();
        spec.set_process(None);
        let p = exec_process(&spec, ["true"]).build().unwrap();
        assert_eq!(p.cwd(), Path::new("/"));
        assert_eq!(p.user().uid(), 0);
        assert!(p.env().as_ref().unwrap()[0].starts_with("PATH="));
    }
}
