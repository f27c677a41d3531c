//! lcd's agent: the one process that outlives the CLI and sees every exit of the containers lcd
//! started detached. It records each exit on the container (code, time, OOM kill) and deletes the
//! task right away, so the shim (12 MiB) and `lcd-logger` go as they do under dockerd while `ps`,
//! `inspect` and `logs` still show how the container ended; it restarts containers as their
//! `--restart` policy says, with docker's backoff; it removes `run -d --rm` containers.
//!
//! Why one agent per managed containerd (and namespace) rather than a monitor per container
//! (podman's conmon) or the logger: exits are what the agent acts on, and the library's
//! `EventMonitor` already delivers each exactly once across reconnects; one small process serves
//! every container, where a monitor per container would add a process (and its memory) to each,
//! next to the shim that already is one. The logger is the shim's child, started only for
//! containers that log to a file, and dies with the task it would have to delete.
//!
//! Lifetime: the agent lives as long as the managed containerd it was started beside. Every lcd
//! command that reaches the managed containerd checks (one `flock` on the agent's pid file) that
//! an agent runs and starts one otherwise, so an agent killed by anything is back at the next
//! command; it exits on its own when its containerd exits, and `lcd daemon stop` stops it first.
//! Nothing is lost while it is down: at start it lists the containers and records the exits it
//! missed, finishes the removals and restarts it owed, and (when the containerd is not the one
//! it last served) applies docker's daemon-start rule (`always` runs again, `unless-stopped`
//! unless stopped by the user). See docs/agent.md.
//!
//! With `--address` (a containerd lcd does not manage) there is no agent: nothing of lcd's runs
//! beside a containerd it does not own, so `--restart` and `run -d --rm` are refused there and
//! an exited detached container keeps its shim until `lcd rm` or `lcd start`.

mod lock;
mod serve;
mod watch;

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::context::Ctx;

pub use serve::serve;

/// What `lcd daemon status` says about the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    /// An agent holds the lock; its pid.
    Running { pid: u32 },
    /// None runs.
    Stopped,
}

/// The agent's files, under `<exec root>/agent`: one set per namespace.
pub(crate) struct Files {
    dir: PathBuf,
    namespace: String,
}

impl Files {
    pub(crate) fn of(ctx: &Ctx) -> Files {
        Files {
            dir: ctx.exec_root.join("agent"),
            namespace: ctx.namespace.clone(),
        }
    }

    /// Locked by the running agent for its whole life, and holding its pid.
    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join(format!("{}.pid", self.namespace))
    }

    /// Which containerd (pid and start time) the agent last served: another one means containerd
    /// started again, and docker's daemon-start rule applies.
    pub(crate) fn served_file(&self) -> PathBuf {
        self.dir.join(format!("{}.containerd", self.namespace))
    }

    /// The agent's own messages.
    pub(crate) fn log_file(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.namespace))
    }
}

/// Whether an agent runs for this exec root and namespace.
pub fn status(ctx: &Ctx) -> AgentStatus {
    match lock::holder(&Files::of(ctx).pid_file()) {
        Some(holder) => AgentStatus::Running { pid: holder.pid },
        None => AgentStatus::Stopped,
    }
}

/// Start the agent for the managed containerd `containerd` (its pid) unless one runs; returns
/// once it holds its lock (it then catches up on its own).
pub async fn ensure(ctx: &Ctx, containerd: u32) -> Result<()> {
    let files = Files::of(ctx);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match lock::holder(&files.pid_file()) {
            None => break,
            // The agent of a containerd that is gone (one just started in its place) exits
            // within a moment of noticing: wait for it, so that the new containerd gets an agent.
            Some(holder) if holder.containerd.is_some_and(|pid| pid != containerd) => {
                if Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Some(_) => return Ok(()),
        }
    }
    std::fs::create_dir_all(&files.dir)
        .with_context(|| format!("create {}", files.dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(files.log_file())
        .with_context(|| format!("open {}", files.log_file().display()))?;
    let lcd = std::env::current_exe().context("find lcd's own binary")?;
    let mut command = Command::new(lcd);
    command
        .arg("--namespace")
        .arg(&ctx.namespace)
        .arg("--data-root")
        .arg(&ctx.data_root)
        .arg("--exec-root")
        .arg(&ctx.exec_root)
        .arg("--containerd")
        .arg(&ctx.containerd)
        .arg("agent")
        .env_remove("LCD_ADDRESS")
        .env_remove("LCD_CRASH_AT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent; the agent leaves
    // our session so that a terminal's hang-up or Ctrl-C of the command that started it spares it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().context("start lcd's agent")?;
    // It says "ready" once it holds the lock ("busy" if another agent won a race): either way an
    // agent runs. Its end of the pipe is closed right after, so this read cannot hang.
    if let Some(stdout) = child.stdout.take() {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    // Reaped by init once we exit; waiting for it here would wait for its whole life (dropping
    // the handle neither waits nor kills).
    drop(child);
    Ok(())
}

/// Stop the agent (SIGTERM, then SIGKILL after 10 s) and wait until it is gone.
pub async fn stop(ctx: &Ctx) -> Result<()> {
    let pid_file = Files::of(ctx).pid_file();
    let Some(lock::Holder { pid, .. }) = lock::holder(&pid_file) else {
        return Ok(());
    };
    let target = nix::unistd::Pid::from_raw(pid as i32);
    // The pid is the lock holder's, which is the agent while the lock is held.
    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock::holder(&pid_file).is_some_and(|holder| holder.pid == pid) {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
