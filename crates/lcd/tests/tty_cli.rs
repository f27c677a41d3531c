//! `lcd run -it` and `lcd attach` end to end, as a person uses them: the built binary on a real
//! pseudo-terminal that is its controlling terminal (raw mode, the window size at start and after a
//! resize, Ctrl-C reaching the container, Ctrl-P Ctrl-Q detaching, the terminal restored), and
//! attaching without a terminal from several processes in turn. Each test has its own temp dir,
//! namespace and managed containerd (see `support`); every child process has a deadline.

mod support;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::termios::{tcgetattr, LocalFlags};
use support::{Lcd, TIMEOUT};

/// Bound on anything that should take well under a second; generous for a loaded machine.
const PROMPT: Duration = Duration::from_secs(20);

/// A pseudo-terminal whose slave side becomes the controlling terminal of the processes started on
/// it, with the master's output collected by a thread.
struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
    output: mpsc::Receiver<Vec<u8>>,
    /// Output read but not yet consumed by [`Pty::expect`].
    seen: String,
}

/// A process started on a [`Pty`]; killed (by its pid) if the test ends before it does.
struct OnPty {
    child: Option<Child>,
}

impl OnPty {
    /// Whether the process is still running.
    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .expect("child")
            .try_wait()
            .expect("wait")
            .is_none()
    }

    /// Wait up to [`PROMPT`] for the exit; on timeout kill the process and fail.
    #[track_caller]
    fn wait(&mut self, pty: &mut Pty) -> ExitStatus {
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
    fn new(cols: u16, rows: u16) -> Pty {
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
    fn spawn(&self, mut cmd: Command) -> OnPty {
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
    fn collect(&mut self, wait: Duration) {
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
    fn expect(&mut self, needle: &str) -> String {
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

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).expect("type on the terminal");
    }

    /// Type a command line for the container's shell and return what the terminal shows until the
    /// command has run: the echo of the line, then its output. The shell redraws the line it is
    /// editing when its terminal is resized, so the echo may come in pieces; the end is found by a
    /// marker that only the shell's output can spell (`END`, typed as `EN""D`), never the echo.
    #[track_caller]
    fn command(&mut self, line: &str) -> String {
        self.type_keys(format!("{line}; echo EN\"\"D\r").as_bytes());
        let out = self.expect("END");
        // The prompt that follows ("/ # " for root in busybox sh).
        self.expect("# ");
        out
    }

    /// Change the terminal's size, as a terminal emulator does when its window is resized; the
    /// kernel sends SIGWINCH to the terminal's foreground process group.
    fn resize(&self, cols: u16, rows: u16) {
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

    fn local_flags(&self) -> LocalFlags {
        tcgetattr(self.slave.as_fd())
            .expect("tcgetattr")
            .local_flags
    }

    /// Raw mode as lcd sets it: no echo, no line editing, no signals from keys.
    fn is_raw(&self) -> bool {
        !self
            .local_flags()
            .intersects(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG)
    }

    /// A terminal as a shell leaves it for a program: echo, line editing, signals from keys.
    #[track_caller]
    fn assert_cooked(&self) {
        let flags = self.local_flags();
        assert!(
            flags.contains(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG),
            "the terminal was not restored: local flags {flags:?}"
        );
    }
}

/// Ask the container's shell for its terminal's size until it is `size` ("ROWS COLS"): a size
/// travels from our terminal through lcd and containerd, and may arrive after the next command.
#[track_caller]
fn wait_for_size(pty: &mut Pty, size: &str) {
    let deadline = Instant::now() + PROMPT;
    loop {
        let out = pty.command("stty size");
        if out.contains(size) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the size never became {size}: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Poll `lcd top ID` until some process's command line is `cmd` (or, with `present` false, until
/// none is).
#[track_caller]
fn wait_for_process(lcd: &Lcd, id: &str, cmd: &str, present: bool) {
    let deadline = Instant::now() + PROMPT;
    loop {
        let top = lcd.run(&["top", id]);
        let found = top.ok().lines().skip(1).any(|l| l.ends_with(cmd));
        if found == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{cmd:?} {} in the container: {top}",
            if present { "never ran" } else { "kept running" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `lcd ps -a` table row of `id`.
#[track_caller]
fn ps_row(lcd: &Lcd, args: &[&str], id: &str) -> Option<String> {
    let mut all = vec!["ps"];
    all.extend(args);
    let ps = lcd.run(&all);
    ps.ok()
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(id))
        .map(str::to_string)
}

#[test]
fn run_it_on_a_terminal_sizes_interrupts_exits_and_restores() {
    let lcd = Lcd::new("runit");
    let mut pty = Pty::new(120, 40);
    pty.assert_cooked();
    let before = tcgetattr(pty.slave.as_fd()).expect("tcgetattr");

    let cmd = lcd.command(["run", "-it", "--rm", "--name", "t1", lcd.rootfs(), "sh"]);
    let mut child = pty.spawn(cmd);
    pty.expect("# ");
    assert!(pty.is_raw(), "lcd must put its terminal in raw mode");

    // The container's terminal has our size from the start.
    let out = pty.command("stty size");
    assert!(out.contains("40 120"), "stty size said {out:?}");

    // A resize of our terminal reaches it: the kernel sends lcd SIGWINCH, lcd tells containerd.
    pty.resize(100, 30);
    wait_for_size(&mut pty, "30 100");

    // Ctrl-C is a key for the container's terminal: it interrupts the foreground process there,
    // not lcd.
    pty.type_keys(b"sleep 100\r");
    pty.expect("sleep 100");
    wait_for_process(&lcd, "t1", "sleep 100", true);
    pty.type_keys(b"\x03");
    // The shell prompts again once the sleep is gone.
    pty.expect("# ");
    wait_for_process(&lcd, "t1", "sleep 100", false);
    assert!(child.running(), "Ctrl-C must not end lcd");
    let out = pty.command("echo status=$?");
    assert!(out.contains("status=130"), "{out:?}");

    // The shell's exit status is lcd's, and the terminal is as lcd found it.
    pty.type_keys(b"exit 7\r");
    let status = child.wait(&mut pty);
    assert_eq!(
        status.code(),
        Some(7),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    pty.assert_cooked();
    let after = tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
    assert_eq!(after.control_flags, before.control_flags);

    // --rm: nothing is left.
    lcd.assert_clean();
}

#[test]
fn run_it_sizes_the_terminal_before_the_command_runs() {
    let lcd = Lcd::new("runsize");
    let mut pty = Pty::new(111, 33);
    // A command that reads the size at once must not see 0x0 (or an old size).
    let cmd = lcd.command(["run", "-it", "--rm", lcd.rootfs(), "stty", "size"]);
    let mut child = pty.spawn(cmd);
    let status = child.wait(&mut pty);
    pty.collect(Duration::from_millis(200));
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    assert!(pty.seen.contains("33 111"), "stty size said {:?}", pty.seen);
    pty.assert_cooked();
    lcd.assert_clean();
}

#[test]
fn attach_on_a_terminal_detaches_with_ctrl_p_ctrl_q_and_reattaches() {
    let lcd = Lcd::new("attachit");
    let out = lcd.run(&["run", "-d", "-it", "--name", "x", lcd.rootfs(), "sh"]);
    assert_eq!(out.ok(), "x\n", "{out}");
    lcd.wait_state("x", "running", PROMPT);

    let mut pty = Pty::new(100, 30);
    let mut child = pty.spawn(lcd.command(["attach", "x"]));
    // The shell's first prompt may wait in the container's output, or may not: type a line.
    pty.type_keys(b"echo hello-$((1+1))\r");
    pty.expect("hello-2");
    pty.expect("# ");
    assert!(pty.is_raw(), "lcd attach must put its terminal in raw mode");
    // Attaching sizes the container's terminal (`run -d` had no terminal to take a size from).
    wait_for_size(&mut pty, "30 100");

    // Ctrl-P Ctrl-Q: lcd attach returns 0, the container keeps running, the terminal is restored.
    pty.type_keys(b"\x10\x11");
    let status = child.wait(&mut pty);
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    pty.assert_cooked();
    let row = ps_row(&lcd, &[], "x").expect("x is not in `lcd ps` after detaching");
    assert!(row.contains("Up"), "{row}");

    // Attach again (another terminal, another size): the shell is where we left it.
    let mut pty = Pty::new(90, 25);
    let mut child = pty.spawn(lcd.command(["attach", "x"]));
    wait_for_size(&mut pty, "25 90");
    pty.type_keys(b"exit 3\r");
    let status = child.wait(&mut pty);
    assert_eq!(
        status.code(),
        Some(3),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    pty.assert_cooked();
    assert_eq!(ps_row(&lcd, &[], "x"), None, "x still runs");
    let row = ps_row(&lcd, &["-a"], "x").expect("x is not in `lcd ps -a`");
    assert!(row.contains("Exited (3)"), "{row}");

    lcd.run(&["rm", "x"]).ok();
    lcd.assert_clean();
}

#[test]
fn attach_without_a_terminal_from_one_process_after_another() {
    let lcd = Lcd::new("attachi");
    let script = "while read l; do echo got:$l; done; echo bye; exit 5";
    let out = lcd.run(&[
        "run",
        "-d",
        "-i",
        "--name",
        "y",
        lcd.rootfs(),
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.ok(), "y\n", "{out}");
    lcd.wait_state("y", "running", PROMPT);

    // A first attach, its stdin a pipe we keep open, is killed (no terminal: no detach keys).
    let mut first = lcd.spawn(&["attach", "y"], Stdio::piped());
    first
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"one\n")
        .expect("write");
    first.wait_for_line("got:one", PROMPT);
    first.signal(Signal::SIGKILL);
    let killed = first.finish(PROMPT);
    assert_eq!(
        killed.status.code(),
        None,
        "lcd attach was not killed: {killed}"
    );

    // The container runs on, its stdin still open: losing an attached client is no end of file.
    std::thread::sleep(Duration::from_millis(500));
    let row = lcd.ps_of("y");
    assert_eq!(row["state"], "running", "{row}");

    // A second attach sends a line, then its end of input ends the loop.
    let second = lcd.run_input(&["attach", "y"], b"two\n");
    second.expect_code(5);
    assert_eq!(second.stdout, "got:two\nbye\n", "{second}");
    assert_eq!(second.stderr, "", "{second}");
    let row = lcd.ps_of("y");
    assert_eq!(row["state"], "exited", "{row}");
    assert_eq!(row["exit_code"], 5, "{row}");
    let row = ps_row(&lcd, &["-a"], "y").expect("y is not in `lcd ps -a`");
    assert!(row.contains("Exited (5)"), "{row}");

    lcd.run(&["rm", "y"]).ok();
    lcd.assert_clean();
}

#[test]
fn attach_refuses_what_it_cannot_attach_to() {
    let lcd = Lcd::new("attachno");

    // Started without -i or -t: its output is in the log.
    let out = lcd.run(&["run", "-d", "--name", "plain", lcd.rootfs(), "sleep", "60"]);
    assert_eq!(out.ok(), "plain\n", "{out}");
    lcd.wait_state("plain", "running", PROMPT);
    let started = Instant::now();
    lcd.run(&["attach", "plain"])
        .expect_error(125, &["plain", "lcd logs"]);
    assert!(started.elapsed() < TIMEOUT);
    assert_eq!(lcd.ps_of("plain")["state"], "running");

    // Unknown.
    lcd.run(&["attach", "nope"]).expect_error(125, &["nope"]);

    // Created, never started.
    let out = lcd.run(&["create", "-i", "--name", "fresh", lcd.rootfs(), "cat"]);
    assert_eq!(out.ok(), "fresh\n", "{out}");
    lcd.run(&["attach", "fresh"])
        .expect_error(125, &["fresh", "not running"]);

    // Stopped.
    let out = lcd.run(&["run", "-d", "-i", "--name", "done", lcd.rootfs(), "true"]);
    assert_eq!(out.ok(), "done\n", "{out}");
    lcd.wait_state("done", "exited", PROMPT);
    lcd.run(&["attach", "done"])
        .expect_error(125, &["done", "not running"]);

    lcd.run(&["rm", "-f", "plain", "fresh", "done"]).ok();
    lcd.assert_clean();
}
