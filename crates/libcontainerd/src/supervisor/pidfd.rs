//! A process we may signal, safely: a pidfd keeps referring to the same process even if its pid is
//! recycled. Also whether a pid is alive, and stopping a process with SIGTERM, then SIGKILL.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{KILL_WAIT, POLL_INTERVAL};
use crate::error::{Error, Result};

/// A process we may signal: its pid and, where the kernel has them, a pidfd that keeps referring
/// to the same process even if the pid is recycled.
pub(super) struct Proc {
    pub(super) pid: u32,
    pidfd: Option<OwnedFd>,
}

impl Proc {
    /// A handle for `pid`; `None` if it is not running. Works without pidfd support too.
    pub(super) fn open(pid: u32) -> Option<Proc> {
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

    /// A handle for a child of ours that has not been reaped yet, so its pid cannot have been
    /// recycled and the pidfd (if the kernel has them) surely refers to it.
    pub(super) fn unreaped_child(pid: u32) -> Proc {
        Proc {
            pid,
            pidfd: pidfd_open(pid).ok(),
        }
    }

    /// Whether signals go through a pidfd; without one, the pid may be recycled once the process
    /// has been reaped.
    pub(super) fn has_pidfd(&self) -> bool {
        self.pidfd.is_some()
    }

    /// Send `signal`.
    pub(super) fn signal(&self, signal: Signal) -> io::Result<()> {
        match &self.pidfd {
            Some(fd) => pidfd_send_signal(fd, signal),
            None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), signal)
                .map_err(io::Error::from),
        }
    }

    /// Whether the process has exited (a zombie counts as exited).
    pub(super) fn has_exited(&self) -> bool {
        match &self.pidfd {
            Some(fd) => pidfd_exited(fd),
            None => !process_live(self.pid),
        }
    }

    /// Wait up to `timeout` for the process to exit; returns whether it did.
    pub(super) async fn wait_exit(&self, timeout: Duration) -> bool {
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

/// SIGTERM `proc`, wait up to `timeout`, then SIGKILL it if `still_ours` says it is still the same
/// process. Returns whether SIGKILL was needed.
pub(super) async fn terminate(
    proc: &Proc,
    timeout: Duration,
    still_ours: impl Fn() -> bool,
) -> Result<bool> {
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
    if !proc.has_pidfd() && !still_ours() {
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
pub(super) fn process_live(pid: u32) -> bool {
    matches!(process_state(pid), Some(state) if state != b'Z' && state != b'X' && state != b'x')
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::process::{Command, Stdio};

    use super::*;

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
