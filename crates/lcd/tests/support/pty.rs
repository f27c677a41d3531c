//! A pseudo-terminal for the tests that run `lcd` as a person does on a terminal (`run -it`,
//! `attach`, `exec -it`): lcd gets the slave side as its controlling terminal and stdio, the test
//! types on the master and reads what the terminal shows.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::termios::{tcgetattr, LocalFlags};

use super::PROMPT;

/// A pseudo-terminal whose slave side becomes the controlling terminal of the processes started on
/// it, with the master's output collected by a thread.
pub struct Pty {
    master: std::fs::File,
    /// The terminal side, kept open so that reads of the master never fail with EIO.
    pub slave: OwnedFd,
    output: mpsc::Receiver<Vec<u8>>,
    /// Output read but not yet consumed by [`Pty::expect`].
    pub seen: String,
}

/// A process started on a [`Pty`]; killed (by its pid) if the test ends before it does.
pub struct OnPty {
    child: Option<Child>,
}

impl OnPty {
    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .expect("child")
            .try_wait()
            .expect("wait")
            .is_none()
    }

    /// Wait up to [`PROMPT`] for the exit; on timeout kill the process and fail.
    #[track_caller]
    pub fn wait(&mut self, pty: &mut Pty) -> ExitStatus {
        let deadline = Instant::now() + PROMPT;
        let child = self.child.as_mut().expect("child");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                pty.collect(Duration::from_millis(100));
                panic!(
                    "lcd did not exit within {PROMPT:?}; terminal: {:?}",
                    pty.seen
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for OnPty {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Mark `fd` close-on-exec, so that processes spawned by other tests meanwhile (and the daemons
/// they start) do not inherit it.
fn cloexec(fd: &OwnedFd) {
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .expect("FD_CLOEXEC");
}

impl Pty {
    pub fn new(cols: u16, rows: u16) -> Pty {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        cloexec(&pty.master);
        cloexec(&pty.slave);
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().expect("clone master");
        let (tx, output) = mpsc::channel();
        // Blocking reads in a thread of their own. The test keeps the slave open, so reads never
        // fail with EIO; the thread ends when the test's receiver is gone, or with the process.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            master,
            slave: pty.slave,
            output,
            seen: String::new(),
        }
    }

    /// Start `cmd` in a new session with this terminal as its controlling terminal and stdio, as a
    /// shell starts a job: the kernel sends it SIGWINCH when the size changes.
    pub fn spawn(&self, mut cmd: Command) -> OnPty {
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("clone slave"));
        cmd.stdin(io(&self.slave))
            .stdout(io(&self.slave))
            .stderr(io(&self.slave));
        // SAFETY: between fork and exec the closure calls only setsid(2) and ioctl(2), which are
        // async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        OnPty {
            child: Some(cmd.spawn().expect("spawn lcd on the terminal")),
        }
    }

    /// Add whatever output arrives within `wait` to what is seen.
    pub fn collect(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Ok(chunk) = self
            .output
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Read the terminal's output until it contains `needle`; returns (and consumes) everything up
    /// to and including it. Fails after [`PROMPT`].
    #[track_caller]
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PROMPT;
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!("no {needle:?} on the terminal: {:?}", self.seen),
            }
        }
        let end = self.seen.find(needle).map_or(0, |i| i + needle.len());
        let seen = self.seen[..end].to_string();
        self.seen.drain(..end);
        seen
    }

    pub fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).expect("type on the terminal");
    }

    /// Type a command line for the container's shell and return what the terminal shows until the
    /// command has run: the echo of the line, then its output. The shell redraws the line it is
    /// editing when its terminal is resized, so the echo may come in pieces; the end is found by a
    /// marker that only the shell's output can spell (`END`, typed as `EN""D`), never the echo.
    #[track_caller]
    pub fn command(&mut self, line: &str) -> String {
        self.type_keys(format!("{line}; echo EN\"\"D\r").as_bytes());
        let out = self.expect("END");
        // The prompt that follows ("/ # " for root in busybox sh).
        self.expect("# ");
        out
    }

    /// Change the terminal's size, as a terminal emulator does when its window is resized; the
    /// kernel sends SIGWINCH to the terminal's foreground process group.
    pub fn resize(&self, cols: u16, rows: u16) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which points to a live local.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    }

    pub fn local_flags(&self) -> LocalFlags {
        tcgetattr(self.slave.as_fd())
            .expect("tcgetattr")
            .local_flags
    }

    /// Raw mode as lcd sets it: no echo, no line editing, no signals from keys.
    pub fn is_raw(&self) -> bool {
        !self
            .local_flags()
            .intersects(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG)
    }

    /// A terminal as a shell leaves it for a program: echo, line editing, signals from keys.
    #[track_caller]
    pub fn assert_cooked(&self) {
        let flags = self.local_flags();
        assert!(
            flags.contains(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG),
            "the terminal was not restored: local flags {flags:?}"
        );
    }
}
