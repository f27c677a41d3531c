//! `lcd exec` end to end: the built binary against a real containerd, as a user runs it — exit
//! statuses, streams, stdin, signals, and a terminal test through a real pseudo-terminal (raw mode,
//! window sizes at start and on SIGWINCH, Ctrl-C reaching the container, the terminal restored).

#[path = "../../libcontainerd/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::TestEnv;
use libcontainerd::{Container, Runtime, StdioConfig, Task};
use nix::sys::termios::{tcgetattr, LocalFlags};

/// Bound on anything that should take well under a second; generous for a loaded machine.
const PROMPT: Duration = Duration::from_secs(20);

/// `lcd` with the global flags that point it at the test's containerd and namespace.
fn lcd(env: &TestEnv) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lcd"));
    cmd.arg("--address")
        .arg(env.daemon.config().socket())
        .args(["--namespace", &env.namespace])
        .arg("--data-root")
        .arg(env.dir().join("data"))
        .arg("--exec-root")
        .arg(env.dir().join("run"));
    cmd
}

/// A container named `name` that would run `args`, without a task yet.
async fn container(env: &TestEnv, name: &str, args: &[&str]) -> Container {
    let spec = env.spec(args).build().expect("spec");
    env.client
        .new_container(
            &TestEnv::id(name),
            &spec,
            &Runtime::default(),
            &Default::default(),
        )
        .await
        .expect("new container")
}

/// A running container named `name` whose init process sleeps.
async fn sleeper(env: &TestEnv, name: &str) -> (Container, Task) {
    let container = container(env, name, &["sleep", "600"]).await;
    let task = container
        .start(None, &StdioConfig::default(), |_| Ok(()))
        .await
        .expect("start");
    (container, task)
}

/// Files of execs left in the bundle dir (lcd's exec ids start with `exec-`).
fn exec_leftovers(container: &Container) -> Vec<String> {
    std::fs::read_dir(container.bundle_dir())
        .expect("bundle dir")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("exec-"))
        .collect()
}

/// Run lcd to the end with `input` on its stdin; (exit code, stdout, stderr).
fn run(mut cmd: Command, input: Option<&[u8]>) -> (Option<i32>, String, String) {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn lcd");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
    }
    let output = child.wait_with_output().expect("wait for lcd");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn args<'a>(cmd: &'a mut Command, args: &[&str]) -> &'a mut Command {
    cmd.args(args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_reports_the_commands_status_and_streams() {
    let env = TestEnv::new().await;
    let (c, task) = sleeper(&env, "cli").await;

    let mut cmd = lcd(&env);
    args(
        &mut cmd,
        &["exec", "cli", "sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(run(cmd, None), (Some(3), "out\n".into(), "err\n".into()));

    let mut cmd = lcd(&env);
    args(
        &mut cmd,
        &[
            "exec",
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "-u",
            "1000:1001",
            "cli",
            "sh",
            "-c",
            "echo $FOO $(pwd) $(id -u) $(id -g)",
        ],
    );
    assert_eq!(
        run(cmd, None),
        (Some(0), "bar /tmp 1000 1001\n".into(), String::new())
    );

    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "cli", "no-such-command"]);
    let (code, out, err) = run(cmd, None);
    assert_eq!(code, Some(127), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("no-such-command"), "{err}");

    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "cli", "/etc/passwd"]);
    let (code, _, err) = run(cmd, None);
    assert_eq!(code, Some(126), "{err}");

    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "no-such-container", "true"]);
    let (code, _, err) = run(cmd, None);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("no such container"), "{err}");

    // A container that exists but has no task: exec (and pause) say it is not running.
    let idle = container(&env, "idle", &["true"]).await;
    for verb in [&["exec", "idle", "true"][..], &["pause", "idle"]] {
        let mut cmd = lcd(&env);
        args(&mut cmd, verb);
        let (code, _, err) = run(cmd, None);
        assert_eq!(code, Some(125), "{verb:?}: {err}");
        assert!(err.contains("container idle is not running"), "{err}");
    }
    idle.delete().await.expect("remove the idle container");

    // -t -i needs a terminal to read keys from.
    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "-it", "cli", "true"]);
    let (code, _, err) = run(cmd, Some(b""));
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("not a TTY"), "{err}");

    // -t alone: the command has a terminal, output comes through it.
    let mut cmd = lcd(&env);
    args(
        &mut cmd,
        &["exec", "-t", "cli", "sh", "-c", "tty; echo $TERM"],
    );
    let (code, out, err) = run(cmd, None);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "/dev/pts/0\r\nxterm\r\n");

    assert!(exec_leftovers(&c).is_empty(), "{:?}", exec_leftovers(&c));
    task.force_delete().await.expect("remove task");
    c.delete().await.expect("remove container");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_forwards_stdin_and_its_end() {
    let env = TestEnv::new().await;
    let (c, task) = sleeper(&env, "cat").await;

    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "-i", "cat", "cat"]);
    assert_eq!(
        run(cmd, Some(b"one\ntwo\n")),
        (Some(0), "one\ntwo\n".into(), String::new())
    );

    // `cat /dev/null | lcd exec -i c cat` must return at once (moby#38001).
    let started = Instant::now();
    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "-i", "cat", "cat"]);
    assert_eq!(run(cmd, Some(b"")), (Some(0), String::new(), String::new()));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");

    // Without -i the command's stdin is empty, whatever lcd's is.
    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "cat", "cat"]);
    assert_eq!(
        run(cmd, Some(b"ignored\n")),
        (Some(0), String::new(), String::new())
    );

    assert!(exec_leftovers(&c).is_empty(), "{:?}", exec_leftovers(&c));
    task.force_delete().await.expect("remove task");
    c.delete().await.expect("remove container");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_detached_returns_at_once_and_the_command_runs() {
    let env = TestEnv::new().await;
    let (c, task) = sleeper(&env, "bg").await;

    let started = Instant::now();
    let mut cmd = lcd(&env);
    args(
        &mut cmd,
        &[
            "exec",
            "-d",
            "bg",
            "sh",
            "-c",
            "echo lost; sleep 1; echo done > /tmp/marker",
        ],
    );
    assert_eq!(run(cmd, None), (Some(0), String::new(), String::new()));
    assert!(started.elapsed() < Duration::from_secs(1) + PROMPT / 4);

    let deadline = Instant::now() + PROMPT;
    loop {
        let mut cmd = lcd(&env);
        args(&mut cmd, &["exec", "bg", "cat", "/tmp/marker"]);
        let (code, out, _) = run(cmd, None);
        if code == Some(0) {
            assert_eq!(out, "done\n");
            break;
        }
        assert!(Instant::now() < deadline, "the detached command never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(exec_leftovers(&c).is_empty(), "{:?}", exec_leftovers(&c));
    task.force_delete().await.expect("remove task");
    c.delete().await.expect("remove container");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_sent_to_lcd_reach_the_command() {
    let env = TestEnv::new().await;
    let (c, task) = sleeper(&env, "sig").await;
    let mut cmd = lcd(&env);
    args(
        &mut cmd,
        &[
            "exec",
            "sig",
            "sh",
            "-c",
            "trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn lcd");
    let mut out = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let n = out.read(&mut buf).expect("read");
        assert!(n > 0, "lcd ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal lcd");
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read");
    let status = child.wait().expect("wait");
    // lcd was not killed by the signal: it passed it on and reports the command's own exit.
    assert_eq!(status.code(), Some(9), "{status:?}");
    assert!(rest.contains("got-term"), "{rest:?}");
    assert_eq!(
        task.status().await.expect("status"),
        libcontainerd::TaskStatus::Running
    );
    assert!(exec_leftovers(&c).is_empty(), "{:?}", exec_leftovers(&c));
    task.force_delete().await.expect("remove task");
    c.delete().await.expect("remove container");
    env.cleanup().await;
}

/// A pseudo-terminal whose slave side becomes lcd's controlling terminal.
struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
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
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().expect("clone master");
        let (tx, output) = mpsc::channel();
        // Blocking reads in a thread of their own; it ends with the test process.
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

    /// Start `cmd` in a new session with this terminal as its controlling terminal and stdio, so
    /// the kernel sends it SIGWINCH when the size changes, as a shell's job would be.
    fn spawn(&self, mut cmd: Command) -> std::process::Child {
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
        cmd.spawn().expect("spawn lcd on the terminal")
    }

    /// Read the terminal's output until it contains `needle`; returns everything seen since the
    /// last call.
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

    fn is_raw(&self) -> bool {
        let termios = tcgetattr(self.slave.as_fd()).expect("tcgetattr");
        !termios
            .local_flags
            .intersects(LocalFlags::ECHO | LocalFlags::ICANON)
    }
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PROMPT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lcd did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_it_under_a_real_terminal() {
    let env = TestEnv::new().await;
    let (c, task) = sleeper(&env, "term").await;
    let mut pty = Pty::new(111, 33);
    assert!(!pty.is_raw());

    // Each line typed prints the size the command's terminal has now.
    let mut cmd = lcd(&env);
    args(
        &mut cmd,
        &[
            "exec",
            "-it",
            "term",
            "sh",
            "-c",
            "stty size; while read x; do echo \"size:$(stty size)\"; done",
        ],
    );
    let mut child = pty.spawn(cmd);
    // The size is right from the start, before any SIGWINCH.
    pty.expect("33 111");
    assert!(pty.is_raw(), "lcd must put its terminal in raw mode");

    pty.resize(120, 40);
    let deadline = Instant::now() + PROMPT;
    loop {
        // The resize travels SIGWINCH -> lcd -> containerd; ask until it has arrived.
        pty.type_keys(b"\r");
        let line = pty.expect("size:");
        let line = line + &pty.expect("\n");
        if line.contains("40 120") {
            break;
        }
        assert!(Instant::now() < deadline, "the new size never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Ctrl-C is a key for the container's terminal: it interrupts the command, not lcd.
    pty.type_keys(b"\x03");
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(!pty.is_raw(), "lcd must restore the terminal");

    // A command that fails to start leaves the terminal as it found it too.
    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "-it", "term", "no-such-command"]);
    let mut child = pty.spawn(cmd);
    assert_eq!(wait_exit(&mut child).code(), Some(127));
    assert!(!pty.is_raw());

    assert_eq!(
        task.status().await.expect("status"),
        libcontainerd::TaskStatus::Running
    );
    assert!(exec_leftovers(&c).is_empty(), "{:?}", exec_leftovers(&c));
    task.force_delete().await.expect("remove task");
    c.delete().await.expect("remove container");
    env.cleanup().await;
}
