//! The managed containerd: a private containerd that this library starts, finds again and stops.
//!
//! This is the counterpart of moby's `libcontainerd/supervisor`. When the user gives no containerd
//! address, the `lcd` CLI calls [`Daemon::ensure_running`]: the first invocation starts a private
//! containerd with its own root, state and socket, and later invocations (separate processes) adopt it.
//! Integration tests start their own containerd the same way in a temporary directory.
//!
//! Layout, for a [`DaemonConfig`] with `root` and `state`:
//!
//! | path                            | what                                              |
//! |---------------------------------|---------------------------------------------------|
//! | `<root>/config.toml`            | the containerd configuration we generate           |
//! | `<root>/containerd`             | containerd's root (images, snapshots, metadata)   |
//! | `<state>/containerd`            | containerd's state (shim bundles, fifos)           |
//! | `<state>/containerd.sock`       | the gRPC socket (mode 0600)                        |
//! | `<state>/containerd.sock.ttrpc` | the ttrpc socket for shims (mode 0600)             |
//! | `<state>/containerd.pid`        | the pid of the running containerd                  |
//! | `<state>/containerd.lock`       | an flock that serialises starting and stopping     |
//! | `<state>/containerd.log`        | containerd's stdout and stderr, appended           |
//!
//! Unlike moby, which adopts whatever process the pid file names, a process counts as *our*
//! containerd only if it is alive (not a zombie), its executable is the configured binary and its
//! command line names our configuration file. Signals are sent through a pidfd opened before that
//! check, so a recycled pid is never signalled.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use containerd_client::services::v1::version_client::VersionClient;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use crate::error::{Error, ErrorKind, Result};

/// The longest path a unix socket address can hold (`sun_path` is 108 bytes including the NUL).
const SOCKET_PATH_MAX: usize = 107;
/// How often the supervisor polls for a socket, a lock or an exit.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often to poll the socket during the first [`FAST_POLL_PERIOD`] of a start.
const FAST_POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How long to poll the socket at [`FAST_POLL_INTERVAL`].
const FAST_POLL_PERIOD: Duration = Duration::from_millis(250);
/// The longest a single connect + Version attempt may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long to wait for a process to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How many log lines an error message quotes.
const LOG_TAIL_LINES: usize = 5;
/// The longest log line an error message quotes.
const LOG_LINE_MAX: usize = 400;
/// Where to look for the binary when `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Plugins the managed containerd does not load: CRI (we are not a kubelet), the snapshotters that
/// only log errors on an ordinary host (aufs even runs `modprobe`), and `opt`, which would create
/// `/opt/containerd` outside our directories.
const DISABLED_PLUGINS: &[&str] = &[
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.internal.v1.opt",
];

/// Where and how to run the managed containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Persistent directory: containerd's root (`<root>/containerd`) and our `config.toml`.
    pub root: PathBuf,
    /// Runtime directory: containerd's state (`<state>/containerd`), the socket, the pid file, the
    /// lock file and the log. Keep it short: the socket path must fit in 107 bytes.
    pub state: PathBuf,
    /// The containerd binary; a bare name is looked up in `PATH`. Default `containerd`.
    pub binary: PathBuf,
    /// How long [`Daemon::ensure_running`] waits for containerd to answer. Default 15 s.
    pub start_timeout: Duration,
    /// How long [`Daemon::stop`] waits after SIGTERM before SIGKILL. Default 15 s.
    pub stop_timeout: Duration,
    /// Run containerd with log level `debug` instead of `info`.
    pub debug: bool,
}

impl DaemonConfig {
    /// A configuration with the default binary and timeouts. Relative paths are made absolute
    /// against the current directory.
    pub fn new(root: impl Into<PathBuf>, state: impl Into<PathBuf>) -> Self {
        DaemonConfig {
            root: make_absolute(root.into()),
            state: make_absolute(state.into()),
            binary: PathBuf::from("containerd"),
            start_timeout: Duration::from_secs(15),
            stop_timeout: Duration::from_secs(15),
            debug: false,
        }
    }

    /// The gRPC socket clients connect to: `<state>/containerd.sock`.
    pub fn socket(&self) -> PathBuf {
        self.state.join("containerd.sock")
    }

    /// The pid file: `<state>/containerd.pid`.
    pub fn pid_file(&self) -> PathBuf {
        self.state.join("containerd.pid")
    }

    /// containerd's log (stdout and stderr, appended): `<state>/containerd.log`.
    pub fn log_file(&self) -> PathBuf {
        self.state.join("containerd.log")
    }

    /// The generated configuration: `<root>/config.toml`.
    fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The ttrpc socket the shims connect back to.
    fn ttrpc_socket(&self) -> PathBuf {
        self.state.join("containerd.sock.ttrpc")
    }

    /// The lock that serialises starting and stopping.
    fn lock_file(&self) -> PathBuf {
        self.state.join("containerd.lock")
    }

    /// Check what can be checked without touching the filesystem.
    fn validate(&self) -> Result<()> {
        for (what, dir) in [("root", &self.root), ("state", &self.state)] {
            if !dir.is_absolute() {
                return Err(Error::invalid(format!(
                    "containerd {what} directory {} is not absolute: pass an absolute path",
                    dir.display()
                )));
            }
        }
        // The ttrpc socket is the longest socket path.
        let longest = self.ttrpc_socket();
        let len = longest.as_os_str().len();
        if len > SOCKET_PATH_MAX {
            return Err(Error::invalid(format!(
                "containerd socket path {} is {len} bytes, longer than the {SOCKET_PATH_MAX}-byte unix socket limit: use a shorter state directory",
                longest.display()
            )));
        }
        if self.binary.as_os_str().is_empty() {
            return Err(Error::invalid(
                "containerd binary path is empty: pass a binary name or path",
            ));
        }
        Ok(())
    }

    /// The containerd 1.6 configuration (`version = 2`) for this daemon.
    fn render(&self) -> Result<String> {
        let root = toml_path(&self.root.join("containerd"))?;
        let state = toml_path(&self.state.join("containerd"))?;
        let socket = toml_path(&self.socket())?;
        let ttrpc = toml_path(&self.ttrpc_socket())?;
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let level = if self.debug { "debug" } else { "info" };
        let disabled = DISABLED_PLUGINS
            .iter()
            .map(|p| toml_string(p))
            .collect::<Vec<_>>()
            .join(", ");
        // bolt waits forever for its file lock by default; a bound turns a second containerd on the
        // same root into an error in the log instead of a hang.
        let bolt_timeout_ms = self.start_timeout.as_millis().max(1000);
        Ok(format!(
            "# Generated by libcontainerd for its managed containerd; rewritten at every start.\n\
             version = 2\n\
             root = {root}\n\
             state = {state}\n\
             oom_score = 0\n\
             disabled_plugins = [{disabled}]\n\
             \n\
             [grpc]\n  address = {socket}\n  uid = {uid}\n  gid = {gid}\n\
             \n\
             [ttrpc]\n  address = {ttrpc}\n  uid = {uid}\n  gid = {gid}\n\
             \n\
             [debug]\n  address = \"\"\n  level = \"{level}\"\n\
             \n\
             [timeouts]\n  \"io.containerd.timeout.bolt.open\" = \"{bolt_timeout_ms}ms\"\n\
             \n\
             [plugins]\n  [plugins.\"io.containerd.monitor.v1.cgroups\"]\n    no_prometheus = true\n"
        ))
    }
}

/// What [`Daemon::status`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonStatus {
    /// Our containerd is running with this pid.
    Running {
        /// Its pid.
        pid: u32,
    },
    /// No pid file and no containerd of ours.
    Stopped,
    /// The pid file exists but does not name our containerd: the pid is dead, a zombie, or an
    /// unrelated process (`pid` is `None` when the file does not hold a valid pid).
    StalePidFile {
        /// The pid the file holds, if it holds one.
        pid: Option<u32>,
    },
}

/// The managed containerd described by a [`DaemonConfig`].
///
/// A `Daemon` holds no process handle: every call looks at the pid file and `/proc`, so separate
/// processes (later `lcd` invocations) can manage the same containerd.
#[derive(Debug, Clone)]
pub struct Daemon {
    config: DaemonConfig,
}

impl Daemon {
    /// A supervisor for the containerd `config` describes. Starts nothing.
    pub fn new(config: DaemonConfig) -> Self {
        Daemon { config }
    }

    /// The configuration.
    pub fn config(&self) -> &DaemonConfig {
        &self.config
    }

    /// Whether our containerd is running, judged by the pid file and `/proc` (not by the socket).
    ///
    /// When the pid file is missing or stale but a containerd of ours is still running (its pid file
    /// was lost), that process is reported as [`DaemonStatus::Running`].
    pub fn status(&self) -> DaemonStatus {
        let id = self.identity();
        let recorded = match read_pid_file(&self.config.pid_file()) {
            PidFile::Missing => None,
            PidFile::Invalid => Some(None),
            PidFile::Pid(pid) => {
                if id.is_ours(pid) {
                    return DaemonStatus::Running { pid };
                }
                Some(Some(pid))
            }
        };
        if let Some(pid) = id.scan() {
            return DaemonStatus::Running { pid };
        }
        match recorded {
            None => DaemonStatus::Stopped,
            Some(pid) => DaemonStatus::StalePidFile { pid },
        }
    }

    /// Start containerd unless ours is already running (then adopt it); returns its pid.
    ///
    /// Serialised by an exclusive flock on `<state>/containerd.lock`, so two racing processes start
    /// only one containerd. Returns once the socket answers the Version RPC, or fails after
    /// `start_timeout` (the half-started containerd is killed). A stale pid file is replaced; the
    /// process it names is never signalled.
    pub async fn ensure_running(&self) -> Result<u32> {
        let config = &self.config;
        config.validate()?;
        let binary = resolve_binary(&config.binary);
        create_private_dir(&config.root)?;
        create_private_dir(&config.state)?;
        let _lock = self.lock().await?;
        let begin = Instant::now();

        let id = self.identity();
        if let Some(proc) = self.locate(&id) {
            let pid = proc.pid;
            match self
                .wait_serving(Watch::Adopted(&proc, &id), config.start_timeout)
                .await
            {
                Serve::Ready => {
                    if read_pid_file(&config.pid_file()) != PidFile::Pid(pid) {
                        self.write_pid_file(pid)?;
                    }
                    self.secure_sockets()?;
                    tracing::debug!(pid, socket = %config.socket().display(), "adopted running containerd");
                    return Ok(pid);
                }
                Serve::Died(_) => {
                    tracing::info!(
                        pid,
                        "containerd exited while being adopted; starting a new one"
                    );
                }
                Serve::TimedOut(last) => {
                    return Err(Error::new(
                        ErrorKind::DeadlineExceeded,
                        format!(
                            "containerd (pid {pid}) is running but did not answer on {} within {:?} ({last}): stop it with `kill {pid}` and retry",
                            config.socket().display(),
                            config.start_timeout
                        ),
                    ));
                }
            }
        }

        let binary = binary?;
        // Nothing of ours is running: whatever the pid file and sockets say is stale. The process a
        // stale pid file names is left alone.
        for path in [config.pid_file(), config.socket(), config.ttrpc_socket()] {
            remove_if_exists(&path)?;
        }
        write_atomic(&config.config_file(), config.render()?.as_bytes())?;

        let log_offset = fs::metadata(config.log_file()).map_or(0, |m| m.len());
        let (child, mut exited) = self.spawn(&binary)?;
        let pid = child.pid;
        if let Err(err) = self.write_pid_file(pid) {
            kill_child(&child, &mut exited);
            return Err(err);
        }

        match self
            .wait_serving(Watch::Child(&mut exited, pid, &id), config.start_timeout)
            .await
        {
            Serve::Ready => {
                self.secure_sockets()?;
                tracing::info!(pid, elapsed = ?begin.elapsed(), socket = %config.socket().display(), "started containerd");
                Ok(pid)
            }
            Serve::Died(status) => {
                let _ = remove_if_exists(&config.pid_file());
                let status = status.map_or_else(|| "exited".to_string(), |s| s.to_string());
                Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "containerd exited during startup ({status}): {}; see {} for the full log",
                        log_tail(&config.log_file(), log_offset),
                        config.log_file().display()
                    ),
                ))
            }
            Serve::TimedOut(last) => {
                kill_child(&child, &mut exited);
                child.wait_exit(KILL_WAIT).await;
                let _ = remove_if_exists(&config.pid_file());
                Err(Error::new(
                    ErrorKind::DeadlineExceeded,
                    format!(
                        "containerd (pid {pid}) did not answer on {} within {:?} ({last}), killed it: {}; see {} or raise the start timeout",
                        config.socket().display(),
                        config.start_timeout,
                        log_tail(&config.log_file(), log_offset),
                        config.log_file().display()
                    ),
                ))
            }
        }
    }

    /// Stop our containerd: SIGTERM, wait up to `stop_timeout`, then SIGKILL; then remove the pid
    /// file and the sockets. Ok if it is not running. A process that is not verified to be our
    /// containerd is never signalled. Shims and containers keep running, as with any containerd.
    pub async fn stop(&self) -> Result<()> {
        let config = &self.config;
        // A configuration ensure_running rejects never started anything.
        if config.validate().is_err() || !config.state.is_dir() {
            return Ok(());
        }
        let _lock = self.lock().await?;
        let id = self.identity();
        if let Some(proc) = self.locate(&id) {
            let escalated = terminate(&proc, config.stop_timeout, || id.is_ours(proc.pid)).await?;
            tracing::info!(pid = proc.pid, escalated, "stopped containerd");
        }
        for path in [config.pid_file(), config.socket(), config.ttrpc_socket()] {
            remove_if_exists(&path)?;
        }
        Ok(())
    }

    /// Kill our containerd with SIGKILL, without any cleanup (for fault-injection tests); returns
    /// the pid killed once it is gone. Fails with [`ErrorKind::NotFound`] if it is not running.
    pub fn kill(&self) -> Result<u32> {
        let id = self.identity();
        let proc = self.locate(&id).ok_or_else(|| {
            Error::not_found(format!(
                "no managed containerd is running under {}: nothing to kill",
                self.config.state.display()
            ))
        })?;
        match proc.signal(Signal::SIGKILL) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => return Ok(proc.pid),
            Err(err) => {
                return Err(Error::io(
                    format!("kill containerd (pid {})", proc.pid),
                    err,
                ))
            }
        }
        let deadline = Instant::now() + KILL_WAIT;
        while !proc.has_exited() {
            if Instant::now() >= deadline {
                return Err(Error::internal(format!(
                    "containerd (pid {}) survived SIGKILL for {KILL_WAIT:?}: it may be stuck in the kernel, check /proc/{}/stack",
                    proc.pid, proc.pid
                )));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        Ok(proc.pid)
    }

    /// What identifies our containerd.
    fn identity(&self) -> Identity {
        let exe = match resolve_binary(&self.config.binary) {
            Ok(path) => fs::canonicalize(&path).ok().map(|canonical| {
                let meta = fs::metadata(&canonical).ok();
                ExeId {
                    path: canonical,
                    dev_ino: meta.map(|m| (m.dev(), m.ino())),
                }
            }),
            // The binary may have been removed (upgrade) while our containerd runs.
            Err(_) if self.config.binary.is_absolute() => Some(ExeId {
                path: self.config.binary.clone(),
                dev_ino: None,
            }),
            Err(_) => None,
        };
        let config = self.config.config_file();
        Identity {
            exe,
            config_canonical: fs::canonicalize(&config).ok(),
            config,
        }
    }

    /// Our running containerd, found through the pid file or else `/proc`, as a signalable handle.
    fn locate(&self, id: &Identity) -> Option<Proc> {
        let recorded = match read_pid_file(&self.config.pid_file()) {
            PidFile::Pid(pid) => Some(pid),
            _ => None,
        };
        recorded
            .and_then(|pid| Proc::open_verified(pid, id))
            .or_else(|| id.scan().and_then(|pid| Proc::open_verified(pid, id)))
    }

    /// Take the start/stop lock, polling so that the wait is bounded and cancellation is safe.
    async fn lock(&self) -> Result<Flock<File>> {
        let path = self.config.lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("open lock file {}", path.display()), e))?;
        // A holder waits at most start_timeout (starting) or stop_timeout plus the SIGKILL wait
        // (stopping); allow both and some slack.
        let patience = self.config.start_timeout + self.config.stop_timeout + KILL_WAIT * 2;
        let deadline = Instant::now() + patience;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(lock),
                Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
                    file = f;
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::DeadlineExceeded,
                            format!(
                                "timed out after {patience:?} waiting for lock {}: another process is starting or stopping containerd, retry later",
                                path.display()
                            ),
                        ));
                    }
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
                Err((_, errno)) => {
                    return Err(Error::io(
                        format!("lock {}", path.display()),
                        io::Error::from(errno),
                    ))
                }
            }
        }
    }

    /// Spawn containerd detached from us; returns a handle on it and a channel that fires when it
    /// exits (and has been reaped).
    fn spawn(&self, binary: &Path) -> Result<(Proc, oneshot::Receiver<io::Result<ExitStatus>>)> {
        let log_path = self.config.log_file();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(|e| Error::io(format!("open containerd log {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io(format!("open containerd log {}", log_path.display()), e))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(self.config.config_file())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .current_dir("/")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID");
        // SAFETY: the hook runs in the forked child before exec and only calls setsid(2), which is
        // async-signal-safe; it allocates nothing and takes no locks.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(io::Error::from)?;
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|err| {
            if err.kind() == io::ErrorKind::NotFound {
                binary_not_found(binary).with_source(err)
            } else {
                Error::io(format!("start containerd {}", binary.display()), err)
            }
        })?;
        let pid = child.id();
        // Open the pidfd before the reaper thread exists: the child cannot have been reaped yet, so
        // the pidfd surely refers to it.
        let proc = Proc {
            pid,
            pidfd: pidfd_open(pid).ok(),
        };
        let (tx, rx) = oneshot::channel();
        // Reap containerd when it exits so a long-running caller (a test process) keeps no zombie.
        // The thread dies with the process; containerd does not.
        let reaper = std::thread::Builder::new()
            .name(format!("containerd-reaper-{pid}"))
            .spawn(move || {
                let status = child.wait();
                let _ = tx.send(status);
            });
        if let Err(err) = reaper {
            tracing::warn!(pid, error = %err, "cannot start a thread to reap containerd; it stays a zombie after it exits");
        }
        Ok((proc, rx))
    }

    /// Poll until the socket answers Version, the process dies, or `timeout` passes.
    async fn wait_serving(&self, mut watch: Watch<'_>, timeout: Duration) -> Serve {
        let socket = self.config.socket();
        let begin = Instant::now();
        let deadline = begin + timeout;
        let mut last = String::from("socket not created");
        loop {
            if let Some(status) = watch.exited() {
                return Serve::Died(status);
            }
            if socket.exists() {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match probe(&socket, PROBE_TIMEOUT.min(remaining)).await {
                    Ok(()) => return Serve::Ready,
                    Err(err) => last = err,
                }
            }
            if Instant::now() >= deadline {
                if let Some(status) = watch.exited() {
                    return Serve::Died(status);
                }
                return Serve::TimedOut(last);
            }
            // containerd usually serves within tens of milliseconds: poll fast at first.
            let interval = if begin.elapsed() < FAST_POLL_PERIOD {
                FAST_POLL_INTERVAL
            } else {
                POLL_INTERVAL
            };
            tokio::time::sleep(interval).await;
        }
    }

    /// Restrict the sockets to their owner (containerd creates them 0660).
    fn secure_sockets(&self) -> Result<()> {
        for path in [self.config.socket(), self.config.ttrpc_socket()] {
            match fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io(format!("chmod {}", path.display()), err)),
            }
        }
        Ok(())
    }

    /// Record `pid` in the pid file (atomically).
    fn write_pid_file(&self, pid: u32) -> Result<()> {
        write_atomic(&self.config.pid_file(), format!("{pid}\n").as_bytes())
    }
}

/// SIGKILL a containerd we spawned and that has not been reaped yet.
fn kill_child(child: &Proc, exited: &mut oneshot::Receiver<io::Result<ExitStatus>>) {
    // Without a pidfd, the pid is only safe to signal while the reaper has not reported the exit.
    if child.pidfd.is_none()
        && !matches!(exited.try_recv(), Err(oneshot::error::TryRecvError::Empty))
    {
        return;
    }
    if let Err(err) = child.signal(Signal::SIGKILL) {
        if err.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!(pid = child.pid, error = %err, "cannot kill containerd");
        }
    }
}

/// Connect to `socket` and call Version, within `timeout`.
async fn probe(socket: &Path, timeout: Duration) -> std::result::Result<(), String> {
    let attempt = async {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|e| format!("connect: {}", error_chain(&e)))?;
        VersionClient::new(channel)
            .version(())
            .await
            .map_err(|s| format!("version: {}", s.message()))?;
        Ok(())
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("version call timed out after {timeout:?}")),
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Outcome of [`Daemon::wait_serving`].
enum Serve {
    /// The socket answered Version.
    Ready,
    /// The process exited (with this status, when we are its parent).
    Died(Option<ExitStatus>),
    /// The time ran out; the last probe error.
    TimedOut(String),
}

/// How [`Daemon::wait_serving`] notices that containerd died.
enum Watch<'a> {
    /// A containerd we spawned: its reaper thread reports the exit.
    Child(
        &'a mut oneshot::Receiver<io::Result<ExitStatus>>,
        u32,
        &'a Identity,
    ),
    /// A containerd we found running.
    Adopted(&'a Proc, &'a Identity),
}

impl Watch<'_> {
    /// `Some` once the process is gone.
    fn exited(&mut self) -> Option<Option<ExitStatus>> {
        match self {
            Watch::Child(rx, pid, id) => match rx.try_recv() {
                Ok(status) => Some(status.ok()),
                Err(oneshot::error::TryRecvError::Empty) => None,
                // No reaper thread: fall back to /proc.
                Err(oneshot::error::TryRecvError::Closed) => (!id.is_ours(*pid)).then_some(None),
            },
            Watch::Adopted(proc, id) => {
                (proc.has_exited() || !id.is_ours(proc.pid)).then_some(None)
            }
        }
    }
}

/// SIGTERM `proc`, wait up to `timeout`, then SIGKILL it if `still_ours` says it is still the same
/// process. Returns whether SIGKILL was needed.
async fn terminate(proc: &Proc, timeout: Duration, still_ours: impl Fn() -> bool) -> Result<bool> {
    let pid = proc.pid;
    match proc.signal(Signal::SIGTERM) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
        Err(err) => {
            return Err(Error::io(
                format!("send SIGTERM to containerd (pid {pid})"),
                err,
            ))
        }
    }
    if proc.wait_exit(timeout).await {
        return Ok(false);
    }
    // Without a pidfd the pid may have been recycled while we waited: check again.
    if proc.pidfd.is_none() && !still_ours() {
        return Ok(false);
    }
    tracing::warn!(
        pid,
        ?timeout,
        "containerd did not exit after SIGTERM; sending SIGKILL"
    );
    match proc.signal(Signal::SIGKILL) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => return Ok(true),
        Err(err) => {
            return Err(Error::io(
                format!("send SIGKILL to containerd (pid {pid})"),
                err,
            ))
        }
    }
    if proc.wait_exit(KILL_WAIT).await {
        Ok(true)
    } else {
        Err(Error::internal(format!(
            "containerd (pid {pid}) survived SIGKILL for {KILL_WAIT:?}: it may be stuck in the kernel, check /proc/{pid}/stack"
        )))
    }
}

/// A process we may signal: its pid and, where the kernel has them, a pidfd that keeps referring
/// to the same process even if the pid is recycled.
struct Proc {
    pid: u32,
    pidfd: Option<OwnedFd>,
}

impl Proc {
    /// A handle for `pid`; `None` if it is not running. Works without pidfd support too.
    fn open(pid: u32) -> Option<Proc> {
        if pid <= 1 || pid > i32::MAX as u32 {
            return None;
        }
        match pidfd_open(pid) {
            Ok(fd) => Some(Proc {
                pid,
                pidfd: Some(fd),
            }),
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => None,
            Err(_) => Some(Proc { pid, pidfd: None }),
        }
    }

    /// A handle for `pid` if it is our containerd. The pidfd is opened before the check, so the
    /// handle refers to the process that passed it.
    fn open_verified(pid: u32, id: &Identity) -> Option<Proc> {
        let proc = Proc::open(pid)?;
        (id.is_ours(pid) && !proc.has_exited()).then_some(proc)
    }

    /// Send `signal`.
    fn signal(&self, signal: Signal) -> io::Result<()> {
        match &self.pidfd {
            Some(fd) => pidfd_send_signal(fd, signal),
            None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), signal)
                .map_err(io::Error::from),
        }
    }

    /// Whether the process has exited (a zombie counts as exited).
    fn has_exited(&self) -> bool {
        match &self.pidfd {
            Some(fd) => pidfd_exited(fd),
            None => !process_live(self.pid),
        }
    }

    /// Wait up to `timeout` for the process to exit; returns whether it did.
    async fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.has_exited() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// `pidfd_open(2)`.
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the syscall returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `pidfd_send_signal(2)`.
fn pidfd_send_signal(fd: &OwnedFd, signal: Signal) -> io::Result<()> {
    // SAFETY: a syscall on a live fd we own, with a null siginfo, as the man page allows.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a pidfd reports its process as exited (it becomes readable then).
fn pidfd_exited(fd: &OwnedFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let ret = unsafe { libc::poll(&mut pfd, 1, 0) };
    ret > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// The state letter in `/proc/<pid>/stat` (`R`, `S`, `Z`, ...), if the process exists.
fn process_state(pid: u32) -> Option<u8> {
    let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain ") ".
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

/// Whether `pid` exists and is not a zombie.
fn process_live(pid: u32) -> bool {
    matches!(process_state(pid), Some(state) if state != b'Z' && state != b'X' && state != b'x')
}

/// The executable our containerd runs.
struct ExeId {
    /// Canonical path of the configured binary.
    path: PathBuf,
    /// Its device and inode, when it exists.
    dev_ino: Option<(u64, u64)>,
}

/// What makes a process our containerd.
struct Identity {
    exe: Option<ExeId>,
    config: PathBuf,
    config_canonical: Option<PathBuf>,
}

impl Identity {
    /// Whether `pid` is alive, runs our binary and was started with our config file.
    fn is_ours(&self, pid: u32) -> bool {
        if pid <= 1 || pid == std::process::id() || !process_live(pid) {
            return false;
        }
        self.exe_matches(pid) && self.cmdline_matches(pid)
    }

    fn exe_matches(&self, pid: u32) -> bool {
        let Some(exe) = &self.exe else {
            return false;
        };
        let link = format!("/proc/{pid}/exe");
        if let Ok(target) = fs::read_link(&link) {
            // After a package upgrade the running binary shows as "<path> (deleted)".
            let bytes = target.as_os_str().as_bytes();
            let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
            if Path::new(OsStr::from_bytes(bytes)) == exe.path {
                return true;
            }
        }
        match (exe.dev_ino, fs::metadata(&link)) {
            (Some(dev_ino), Ok(meta)) => (meta.dev(), meta.ino()) == dev_ino,
            _ => false,
        }
    }

    fn cmdline_matches(&self, pid: u32) -> bool {
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let Some(arg) = config_arg(&cmdline) else {
            return false;
        };
        let arg = Path::new(&arg);
        if arg == self.config {
            return true;
        }
        match (&self.config_canonical, arg.is_absolute()) {
            (Some(ours), true) => fs::canonicalize(arg).is_ok_and(|theirs| &theirs == ours),
            _ => false,
        }
    }

    /// Our containerd found by scanning `/proc`, for when the pid file is missing or wrong.
    fn scan(&self) -> Option<u32> {
        self.exe.as_ref()?;
        let entries = fs::read_dir("/proc").ok()?;
        let mut pids: Vec<u32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        pids.into_iter().find(|&pid| self.is_ours(pid))
    }
}

/// The `--config` argument in a NUL-separated command line.
fn config_arg(cmdline: &[u8]) -> Option<OsString> {
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    for (i, arg) in args.iter().enumerate() {
        if matches!(*arg, b"--config" | b"-config" | b"-c") {
            return args.get(i + 1).map(|v| OsStr::from_bytes(v).to_os_string());
        }
        for prefix in [&b"--config="[..], b"-config=", b"-c="] {
            if let Some(value) = arg.strip_prefix(prefix) {
                return Some(OsStr::from_bytes(value).to_os_string());
            }
        }
    }
    None
}

/// What the pid file holds.
#[derive(Debug, PartialEq, Eq)]
enum PidFile {
    Missing,
    Invalid,
    Pid(u32),
}

fn read_pid_file(path: &Path) -> PidFile {
    match fs::read_to_string(path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) if pid > 1 && pid <= i32::MAX as u32 => PidFile::Pid(pid),
            _ => PidFile::Invalid,
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => PidFile::Missing,
        Err(_) => PidFile::Invalid,
    }
}

/// Find the containerd binary: a path is taken as is, a bare name is looked up in `PATH`.
fn resolve_binary(binary: &Path) -> Result<PathBuf> {
    if binary.components().count() > 1 || binary.is_absolute() {
        let path = make_absolute(binary.to_path_buf());
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(binary_not_found(binary))
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| binary_not_found(binary))
}

fn binary_not_found(binary: &Path) -> Error {
    let message = if binary.components().count() > 1 || binary.is_absolute() {
        format!(
            "containerd binary {:?} not found or not executable: install the containerd package or pass --containerd with the right path",
            binary.display().to_string()
        )
    } else {
        format!(
            "containerd binary {:?} not found in PATH: install the containerd package or pass --containerd",
            binary.display().to_string()
        )
    };
    Error::new(ErrorKind::Unavailable, message)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn make_absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        std::path::absolute(&path).unwrap_or(path)
    }
}

/// Create `dir` (and missing parents) with mode 0700. An existing directory is left as it is, with
/// a warning if others can write to it.
fn create_private_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.permissions().mode() & 0o022 != 0 {
                tracing::warn!(dir = %dir.display(), "managed containerd directory is writable by others; use a private directory");
            }
            Ok(())
        }
        Ok(_) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} exists and is not a directory: remove it or choose another directory",
                dir.display()
            ),
        )),
        Err(_) => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(format!("create directory {}", dir.display()), e))?;
            // The umask may have narrowed or the mode may need widening to exactly 0700.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(format!("chmod directory {}", dir.display()), e))
        }
    }
}

/// Replace `path` with `contents` through a temporary file and a rename (mode 0600).
fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        io::Write::write_all(&mut file, contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(format!("write {}", path.display()), e)
    })
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io(format!("remove {}", path.display()), err)),
    }
}

/// The last lines the log got after `offset`, on one line.
fn log_tail(path: &Path, offset: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        // Read at most the last 64 KiB of this run's output.
        let start = offset.max(len.saturating_sub(64 * 1024));
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let text = match read() {
        Ok(text) => text,
        Err(err) => return format!("cannot read the log: {err}"),
    };
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.len() > LOG_LINE_MAX {
                let mut end = LOG_LINE_MAX;
                while !l.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}...", &l[..end])
            } else {
                l.to_string()
            }
        })
        .collect();
    if lines.is_empty() {
        return "containerd wrote nothing to its log".to_string();
    }
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!("last log lines: {}", tail.join(" | "))
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path as a TOML string; containerd's config cannot hold non-UTF-8 paths.
fn toml_path(path: &Path) -> Result<String> {
    path.to_str().map(toml_string).ok_or_else(|| {
        Error::invalid(format!(
            "path {} is not valid UTF-8: choose a UTF-8 directory for the managed containerd",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_arg_forms() {
        assert_eq!(
            config_arg(b"containerd\0--config\0/a/config.toml\0"),
            Some(OsString::from("/a/config.toml"))
        );
        assert_eq!(
            config_arg(b"containerd\0--config=/b.toml\0"),
            Some(OsString::from("/b.toml"))
        );
        assert_eq!(
            config_arg(b"containerd\0-c\0/c.toml"),
            Some(OsString::from("/c.toml"))
        );
        assert_eq!(config_arg(b"containerd\0--log-level\0debug\0"), None);
        assert_eq!(config_arg(b"containerd\0--config\0"), Some(OsString::new()));
    }

    #[test]
    fn pid_file_parsing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pid");
        assert_eq!(read_pid_file(&path), PidFile::Missing);
        for (text, want) in [
            ("1234\n", PidFile::Pid(1234)),
            (" 77 ", PidFile::Pid(77)),
            ("0", PidFile::Invalid),
            ("1", PidFile::Invalid),
            ("-5", PidFile::Invalid),
            ("4294967295", PidFile::Invalid),
            ("abc", PidFile::Invalid),
            ("", PidFile::Invalid),
        ] {
            fs::write(&path, text).expect("write");
            assert_eq!(read_pid_file(&path), want, "{text:?}");
        }
    }

    #[test]
    fn rendered_config_is_valid_and_escaped() {
        let mut config = DaemonConfig::new("/tmp/r\"x\\y", "/tmp/s");
        config.debug = true;
        let text = config.render().expect("render");
        assert!(
            text.contains("root = \"/tmp/r\\\"x\\\\y/containerd\""),
            "{text}"
        );
        assert!(text.contains("state = \"/tmp/s/containerd\""));
        assert!(text.contains("address = \"/tmp/s/containerd.sock\""));
        assert!(text.contains("address = \"/tmp/s/containerd.sock.ttrpc\""));
        assert!(text.contains("level = \"debug\""));
        assert!(text.contains("\"io.containerd.grpc.v1.cri\""));
        assert!(text.contains("\"io.containerd.timeout.bolt.open\" = \"15000ms\""));
        assert_eq!(toml_string("a\nb"), "\"a\\u000Ab\"");
    }

    #[test]
    fn long_socket_path_is_rejected() {
        let long = format!("/tmp/{}", "x".repeat(90));
        let err = DaemonConfig::new("/tmp/r", long)
            .validate()
            .expect_err("too long");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("shorter state directory"), "{err}");
        DaemonConfig::new("/tmp/r", "/tmp/s")
            .validate()
            .expect("short path");
    }

    #[test]
    fn relative_paths_become_absolute() {
        let config = DaemonConfig::new("r", "s");
        assert!(config.root.is_absolute());
        assert!(config.socket().is_absolute());
    }

    #[test]
    fn missing_binary_is_unavailable() {
        let err = resolve_binary(Path::new("lcd-no-such-containerd")).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.message().contains("not found in PATH"), "{err}");
        let err = resolve_binary(Path::new("/nonexistent/containerd")).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        resolve_binary(Path::new("sh")).expect("sh is in PATH");
    }

    #[test]
    fn log_tail_takes_the_last_lines_after_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        fs::write(&path, "old run\n").expect("write");
        let offset = fs::metadata(&path).expect("stat").len();
        let mut text = String::new();
        for i in 0..10 {
            text.push_str(&format!("line {i}\n"));
        }
        fs::write(&path, format!("old run\n{text}")).expect("write");
        let tail = log_tail(&path, offset);
        assert_eq!(
            tail,
            "last log lines: line 5 | line 6 | line 7 | line 8 | line 9"
        );
        assert_eq!(
            log_tail(&path, fs::metadata(&path).expect("stat").len()),
            "containerd wrote nothing to its log"
        );
    }

    #[test]
    fn identity_rejects_unrelated_processes() {
        let config = DaemonConfig::new("/tmp/lcd-identity-r", "/tmp/lcd-identity-s");
        let id = Daemon::new(config).identity();
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        assert!(process_live(pid));
        assert!(!id.is_ours(pid));
        assert!(!id.is_ours(std::process::id()));
        assert!(!id.is_ours(1));
        child.kill().expect("kill sleep");
        child.wait().expect("wait sleep");
        assert!(!process_live(pid));
    }

    /// A process that ignores SIGTERM gets SIGKILL after the timeout.
    #[tokio::test]
    async fn terminate_escalates_to_sigkill() {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("trap '' TERM; echo ready; while :; do sleep 0.1; done")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        // Wait until the trap is installed.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut byte = [0u8; 1];
        stdout.read_exact(&mut byte).expect("read ready");
        let pid = child.id();
        let proc = Proc::open(pid).expect("open");
        let begin = Instant::now();
        let escalated = terminate(&proc, Duration::from_millis(300), || true)
            .await
            .expect("terminate");
        assert!(escalated, "SIGTERM should have been ignored");
        assert!(begin.elapsed() >= Duration::from_millis(300));
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }

    /// A process that honours SIGTERM is not killed.
    #[tokio::test]
    async fn terminate_stops_at_sigterm() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let proc = Proc::open(child.id()).expect("open");
        let escalated = terminate(&proc, Duration::from_secs(5), || true)
            .await
            .expect("terminate");
        assert!(!escalated);
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
        // The process is gone: signalling through the pidfd now fails instead of hitting a
        // recycled pid.
        assert!(proc.has_exited());
    }
}
