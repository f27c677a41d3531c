//! The managed containerd's public lifecycle: [`Daemon`] starts or adopts it, reports its status,
//! stops it and (for fault-injection tests) kills it.

use std::fs;
use std::time::Instant;

use nix::sys::signal::Signal;

use super::config::{resolve_binary, DaemonConfig};
use super::files::{
    create_private_dir, lock, log_tail, record_root, remove_if_exists, remove_runtime_files,
    secure_sockets, write_atomic,
};
use super::identity::{read_pid_file, write_pid_file, Identity, PidFile};
use super::launch::{kill_child, spawn, wait_serving, Serve, Watch};
use super::occupant::Occupant;
use super::pidfd::terminate;
use super::{KILL_WAIT, POLL_INTERVAL};
use crate::error::{Error, ErrorKind, Result};

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
        let id = Identity::of(&self.config);
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
    ///
    /// Fails with [`ErrorKind::FailedPrecondition`] if another containerd (another root's, given
    /// the same state directory) serves the sockets; it and its files are left alone.
    pub async fn ensure_running(&self) -> Result<u32> {
        let config = &self.config;
        config.validate()?;
        let binary = resolve_binary(&config.binary);
        create_private_dir(&config.root)?;
        create_private_dir(&config.state)?;
        let _lock = lock(config).await?;
        let begin = Instant::now();

        let id = Identity::of(config);
        if let Some(proc) = id.locate(&config.pid_file()) {
            let pid = proc.pid;
            match wait_serving(config, Watch::Adopted(&proc, &id), config.start_timeout).await {
                Serve::Ready => {
                    if read_pid_file(&config.pid_file()) != PidFile::Pid(pid) {
                        write_pid_file(&config.pid_file(), pid)?;
                    }
                    secure_sockets(config)?;
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

        // Nothing of ours is running. Before the sockets go, make sure nobody else serves them.
        if let Some(occupant) = Occupant::find(config).await {
            return Err(occupant.refusal(config));
        }
        let binary = binary?;
        // Whatever the pid file and sockets say is stale. The process a stale pid file names is
        // left alone.
        remove_runtime_files(config)?;
        record_root(config)?;
        write_atomic(&config.config_file(), config.render()?.as_bytes())?;

        let log_offset = fs::metadata(config.log_file()).map_or(0, |m| m.len());
        let (child, mut exited) = spawn(config, &binary)?;
        let pid = child.pid;
        if let Err(err) = write_pid_file(&config.pid_file(), pid) {
            kill_child(&child, &mut exited);
            return Err(err);
        }

        match wait_serving(
            config,
            Watch::Child(&mut exited, pid, &id),
            config.start_timeout,
        )
        .await
        {
            Serve::Ready => {
                secure_sockets(config)?;
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
    /// containerd is never signalled, and the files of another containerd serving the same state
    /// directory are left alone. Shims and containers keep running, as with any containerd.
    pub async fn stop(&self) -> Result<()> {
        let config = &self.config;
        // A configuration ensure_running rejects never started anything.
        if config.validate().is_err() || !config.state.is_dir() {
            return Ok(());
        }
        let _lock = lock(config).await?;
        let id = Identity::of(config);
        if let Some(proc) = id.locate(&config.pid_file()) {
            let escalated = terminate(&proc, config.stop_timeout, || id.is_ours(proc.pid)).await?;
            tracing::info!(pid = proc.pid, escalated, "stopped containerd");
        } else if let Some(occupant) = Occupant::find(config).await {
            tracing::info!(
                ?occupant,
                "containerd is not running; another one serves the state directory, left alone"
            );
            return Ok(());
        }
        remove_runtime_files(config)?;
        Ok(())
    }

    /// Kill our containerd with SIGKILL, without any cleanup (for fault-injection tests); returns
    /// the pid killed once it is gone. Fails with [`ErrorKind::NotFound`] if it is not running.
    pub fn kill(&self) -> Result<u32> {
        let id = Identity::of(&self.config);
        let proc = id.locate(&self.config.pid_file()).ok_or_else(|| {
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
}
