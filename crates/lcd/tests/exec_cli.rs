//! `lcd exec` end to end: the built binary against a real containerd, as a user runs it — exit
//! statuses, streams, stdin, signals, and a terminal test through a real pseudo-terminal (raw mode,
//! window sizes at start and on SIGWINCH, Ctrl-C reaching the container, the terminal restored).

#[path = "../../libcontainerd/tests/common/mod.rs"]
mod common;
mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestEnv;
use libcontainerd::{Container, Runtime, StdioConfig, Task};
use support::pty::Pty;
use support::PROMPT;

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
    // `tty` names the terminal (and fails without one); which pts number it gets depends on what
    // else holds terminals on the machine, so only its kind is checked. The terminal turns each
    // "\n" into "\r\n", and TERM is docker's.
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert!(
        matches!(lines.as_slice(), [tty, "xterm", ""] if tty.starts_with("/dev/pts/")),
        "{out:?}"
    );

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_it_under_a_real_terminal() {
    let env = TestEnv::new().await;
    let (c, task) = sleeper(&env, "term").await;
    let mut pty = Pty::new(111, 33);
    pty.assert_cooked();

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
    let status = child.wait(&mut pty);
    assert_eq!(status.code(), Some(130), "{status:?}");
    pty.assert_cooked();

    // A command that fails to start leaves the terminal as it found it too.
    let mut cmd = lcd(&env);
    args(&mut cmd, &["exec", "-it", "term", "no-such-command"]);
    let mut child = pty.spawn(cmd);
    assert_eq!(child.wait(&mut pty).code(), Some(127));
    pty.assert_cooked();

    assert_eq!(
        task.status().await.expect("status"),
        libcontainerd::TaskStatus::Running
    );
    assert!(exec_leftovers(&c).is_empty(), "{:?}", exec_leftovers(&c));
    task.force_delete().await.expect("remove task");
    c.delete().await.expect("remove container");
    env.cleanup().await;
}
