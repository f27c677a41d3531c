//! Starting containerd: spawning it detached from us, and waiting until its socket answers (also
//! for a containerd we adopt), while noticing if it dies.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use containerd_client::services::v1::version_client::VersionClient;
use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use super::config::{binary_not_found, DaemonConfig};
use super::identity::Identity;
use super::pidfd::Proc;
use super::POLL_INTERVAL;
use crate::error::{Error, Result};

/// How often to poll the socket during the first [`FAST_POLL_PERIOD`] of a start.
const FAST_POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How long to poll the socket at [`FAST_POLL_INTERVAL`].
const FAST_POLL_PERIOD: Duration = Duration::from_millis(250);
/// The longest a single connect + Version attempt may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Fires when a containerd we spawned has exited and been reaped.
pub(super) type Exited = oneshot::Receiver<io::Result<ExitStatus>>;

/// Spawn containerd detached from us; returns a handle on it and a channel that fires when it
/// exits (and has been reaped).
pub(super) fn spawn(config: &DaemonConfig, binary: &Path) -> Result<(Proc, Exited)> {
    let log_path = config.log_file();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| Error::io(format!("open containerd log {}", log_path.display()), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::io(format!("open containerd log {}", log_path.display()), e))?;
    // Nothing runs there before containerd does: what an earlier daemon left goes.
    let scratch = config.scratch_dir();
    if let Err(e) = std::fs::remove_dir_all(&scratch) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(dir = %scratch.display(), error = %e, "cannot empty containerd's temporary directory");
        }
    }
    std::fs::create_dir_all(&scratch)
        .map_err(|e| Error::io(format!("create {}", scratch.display()), e))?;
    let mut cmd = Command::new(binary);
    cmd.arg("--config")
        .arg(config.config_file())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .current_dir("/")
        .env("XDG_RUNTIME_DIR", &scratch)
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
    let proc = Proc::unreaped_child(pid);
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

/// SIGKILL a containerd we spawned and that has not been reaped yet.
pub(super) fn kill_child(child: &Proc, exited: &mut Exited) {
    // Without a pidfd, the pid is only safe to signal while the reaper has not reported the exit.
    if !child.has_pidfd() && !matches!(exited.try_recv(), Err(oneshot::error::TryRecvError::Empty))
    {
        return;
    }
    if let Err(err) = child.signal(Signal::SIGKILL) {
        if err.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!(pid = child.pid, error = %err, "cannot kill containerd");
        }
    }
}

/// Outcome of [`wait_serving`].
pub(super) enum Serve {
    /// The socket answered Version.
    Ready,
    /// The process exited (with this status, when we are its parent).
    Died(Option<ExitStatus>),
    /// The time ran out; the last probe error.
    TimedOut(String),
}

/// How [`wait_serving`] notices that containerd died.
pub(super) enum Watch<'a> {
    /// A containerd we spawned: its reaper thread reports the exit.
    Child(&'a mut Exited, u32, &'a Identity),
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

/// Poll until `config`'s socket answers Version, the process dies, or `timeout` passes.
pub(super) async fn wait_serving(
    config: &DaemonConfig,
    mut watch: Watch<'_>,
    timeout: Duration,
) -> Serve {
    let socket = config.socket();
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
