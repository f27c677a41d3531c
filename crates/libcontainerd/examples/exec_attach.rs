//! Execs into a long-running container: one fed through stdin, one with a terminal that is
//! resized, and one that a *fresh* client re-attaches to, as an engine does after a restart.
//!
//! ```text
//! sudo cargo run -p libcontainerd --example exec_attach -- [--address SOCKET]
//! ```
//!
//! What it shows:
//! - `Container::spawn` for a long-running init process, its output read until it is ready;
//! - `Task::spawn_exec` with stdin: write, `Stdin::close` (end of file reaches the process), read;
//! - a terminal exec (`ExecProcessBuilder::terminal`, `console_size`): one output stream, no
//!   stderr, and `Process::resize` seen by `stty size` inside;
//! - letting go of an exec's stdio without ending it (`Stdin::detach`, `OutputReader::detach`),
//!   then `Task::attach_process` from a new `Client`: the input written then reaches the same
//!   process, and its output comes back;
//! - stopping the container with a parsed `Signal` and removing everything.

#[macro_use]
mod common;

use common::{read_all, read_until, within, Args, Env, Report};
use libcontainerd::{
    exec_process, Container, DirectIo, Id, Runtime, Signal, SpecBuilder, StdioConfig, Task,
};
use tokio::io::AsyncWriteExt;

const USAGE: &str =
    "exec_attach: execs with stdin, a terminal and re-attaching, in one container (as root)";

#[tokio::main]
async fn main() -> Result<(), Report> {
    let Some(args) = Args::parse(USAGE, &[])? else {
        return Ok(());
    };
    let mut interrupts = common::Interrupts::catch()?;
    let env = Env::setup("execattach", &args).await?;
    let outcome = interrupts.around(run(&env)).await;
    let cleaned = env.cleanup().await;
    common::finish("exec_attach", outcome, cleaned)
}

async fn run(env: &Env) -> Result<(), Report> {
    say!("exec_attach: {}", env.describe().await?);
    let id = Id::new("box")?;
    // TERM ends it: as pid 1, sh ignores any signal it has no trap for.
    let spec = SpecBuilder::new(&env.rootfs)
        .args([
            "sh",
            "-c",
            "trap 'echo box stopping; exit 0' TERM; echo box ready; while :; do sleep 0.1; done",
        ])
        .build()?;
    let container = within(
        "create container",
        env.client
            .new_container(&id, &spec, &Runtime::default(), &Default::default()),
    )
    .await?;
    let (task, mut io) = within("start", container.spawn(None, &StdioConfig::default())).await?;
    let mut init_out = io.stdout.take().ok_or("the init process has no stdout")?;
    read_until(&mut init_out, "box ready").await?;
    say!("exec_attach: container {id} running, pid {}", task.pid());

    stdin_exec(&container, &task).await?;
    terminal_exec(&container, &task).await?;
    re_attach(env, &container, &task).await?;

    let signal: Signal = "SIGTERM".parse()?;
    within("kill", task.kill(signal)).await?;
    let status = within("wait", task.wait()).await?;
    let said = String::from_utf8_lossy(&read_all(Some(init_out)).await?).into_owned();
    within("delete task", task.delete()).await?;
    within("delete container", container.delete()).await?;
    say!(
        "exec_attach: {signal} -> container said {:?}, exit {}",
        said.trim(),
        status.code
    );
    if status.code != 0 || !said.contains("box stopping") {
        return Err("the container did not stop through its TERM trap".into());
    }
    Ok(())
}

/// `tr` in the container: what goes in through stdin comes out in capitals, and closing stdin
/// ends it.
async fn stdin_exec(container: &Container, task: &Task) -> Result<(), Report> {
    let process = exec_process(container.spec(), ["tr", "a-z", "A-Z"]).build()?;
    let stdio = StdioConfig {
        stdin: true,
        ..StdioConfig::default()
    };
    let (exec, mut io) = within(
        "exec tr",
        task.spawn_exec(&Id::new("upper")?, process, &stdio),
    )
    .await?;
    let mut stdin = io.stdin.take().ok_or("no stdin handle")?;
    // Read while writing: a process can fill its output FIFO before it has read all its input.
    let reader = tokio::spawn(read_all(io.stdout.take()));
    stdin.write_all(b"hello through stdin\n").await?;
    // Our end of the FIFO and, through containerd, the process's: tr sees end of file.
    within("close stdin", stdin.close()).await?;
    let out = within("read tr's output", reader).await??;
    let status = within("wait for tr", exec.wait()).await?;
    within("delete tr", exec.delete()).await?;
    let out = String::from_utf8_lossy(&out);
    say!(
        "exec_attach: stdin exec: {:?} (exit {})",
        out.trim(),
        status.code
    );
    if out.trim() != "HELLO THROUGH STDIN" || status.code != 0 {
        return Err("the stdin exec did not echo its input in capitals".into());
    }
    Ok(())
}

/// A shell with a terminal: `stty size` before and after a resize.
async fn terminal_exec(container: &Container, task: &Task) -> Result<(), Report> {
    let process = exec_process(
        container.spec(),
        ["sh", "-c", "stty size; read a; stty size; read b; exit 5"],
    )
    .terminal(true)
    .console_size(80, 24)
    .build()?;
    let stdio = StdioConfig {
        stdin: true,
        ..StdioConfig::default()
    };
    let (exec, mut io) = within(
        "exec with a terminal",
        task.spawn_exec(&Id::new("tty")?, process, &stdio),
    )
    .await?;
    if io.stderr.is_some() {
        return Err("a terminal has one output stream, yet there is a stderr".into());
    }
    let mut stdin = io.stdin.take().ok_or("no stdin handle")?;
    let mut out = io.stdout.take().ok_or("no terminal output")?;
    // stty prints rows, then columns.
    read_until(&mut out, "24 80").await?;
    within("resize", exec.resize(120, 40)).await?;
    stdin.write_all(b"\n").await?;
    read_until(&mut out, "40 120").await?;
    stdin.write_all(b"\n").await?;
    let status = within("wait for the terminal exec", exec.wait()).await?;
    within("delete the terminal exec", exec.delete()).await?;
    say!(
        "exec_attach: terminal exec: stty size 24 80, resized to 120x40, stty size 40 120 (exit {})",
        status.code
    );
    if status.code != 5 {
        return Err(format!("the terminal exec exited {}, expected 5", status.code).into());
    }
    Ok(())
}

/// Start an exec that waits for a line, let go of its stdio, and finish the conversation from a
/// fresh client.
async fn re_attach(env: &Env, container: &Container, task: &Task) -> Result<(), Report> {
    let worker = Id::new("worker")?;
    let process = exec_process(
        container.spec(),
        [
            "sh",
            "-c",
            "echo worker ready; read line; echo \"worker got: $line\"; exit 2",
        ],
    )
    .build()?;
    let stdio = StdioConfig {
        stdin: true,
        ..StdioConfig::default()
    };
    let (exec, mut io) =
        within("exec the worker", task.spawn_exec(&worker, process, &stdio)).await?;
    let mut out = io.stdout.take().ok_or("no stdout")?;
    read_until(&mut out, "worker ready").await?;
    say!(
        "exec_attach: worker exec pid {} is waiting for a line; letting go of its stdio",
        exec.pid()
    );
    // Let go without ending anything: dropping stdin would close it (end of file), dropping an
    // output reader would drain it in the background, and both would race the re-attach below.
    // The shim holds the FIFOs open meanwhile, so the process notices nothing.
    let DirectIo { stdin, stderr, .. } = io;
    stdin.ok_or("no stdin")?.detach();
    out.detach();
    if let Some(stderr) = stderr {
        stderr.detach();
    }

    // An engine that restarted: a new connection, the container and task looked up by id.
    let client = env.fresh_client().await?;
    let (container, task) = match within(
        "load the container",
        client.load_container_and_task(container.id()),
    )
    .await?
    {
        (container, Some((task, _status))) => (container, task),
        (container, None) => return Err(format!("container {} has no task", container.id()).into()),
    };
    let mut handles = None;
    let exec = within(
        "re-attach",
        task.attach_process(&worker, |io| {
            handles = Some(io);
            Ok(())
        }),
    )
    .await?;
    let mut io = handles.ok_or("attach_process gave no stdio")?;
    let mut stdin = io.stdin.take().ok_or("no stdin after re-attaching")?;
    let reader = tokio::spawn(read_all(io.stdout.take()));
    stdin.write_all(b"again\n").await?;
    within("close stdin", stdin.close()).await?;
    let out = within("read the worker's output", reader).await??;
    let status = within("wait for the worker", exec.wait()).await?;
    within("delete the worker", exec.delete()).await?;
    let out = String::from_utf8_lossy(&out);
    say!(
        "exec_attach: re-attached from a new client to exec {} of {}: {:?} (exit {})",
        exec.id(),
        container.id(),
        out.trim(),
        status.code
    );
    if out.trim() != "worker got: again" || status.code != 2 {
        return Err("the re-attached worker did not answer".into());
    }
    Ok(())
}
