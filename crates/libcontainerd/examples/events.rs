//! containerd's task events through a `Backend`: three containers run at once, their events
//! interleave, yet each container's arrive one at a time and in order; exits are awaited with
//! `EventMonitor::wait_init_exit`.
//!
//! ```text
//! sudo cargo run -p libcontainerd --example events -- [--address SOCKET]
//! ```
//!
//! Each event is printed by the backend as it is handed over (`event <container>#<n> <type>`, `n`
//! counting that container's events), then the example checks every container's sequence:
//! `alpha` and `beta` just run and exit (0 and 7); `gamma` is paused, resumed, exec'd into and
//! stopped with SIGTERM (its trap exits 143).

#[macro_use]
mod common;

use std::time::Duration;

use common::{within, Args, Env, Recorder, Report};
use libcontainerd::{
    exec_process, EventMonitor, EventType, Id, Output, Runtime, Signal, SpecBuilder, StdioConfig,
};

const USAGE: &str =
    "events: ordered task events of three containers, and waits for their exits (as root)";

/// Output nobody reads: `Output::Null` needs no reader attached, so nothing can block.
fn no_output() -> StdioConfig {
    StdioConfig {
        output: Output::Null,
        ..StdioConfig::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), Report> {
    let Some(args) = Args::parse(USAGE, &[])? else {
        return Ok(());
    };
    let mut interrupts = common::Interrupts::catch()?;
    let env = Env::setup("events", &args).await?;
    let outcome = interrupts.around(run(&env)).await;
    let cleaned = env.cleanup().await;
    common::finish("events", outcome, cleaned)
}

async fn run(env: &Env) -> Result<(), Report> {
    say!("events: {}", env.describe().await?);
    let recorder = Recorder::new(true);
    let monitor = EventMonitor::start(env.client.clone(), recorder.clone());
    // Live before the first container: every event from here on reaches the backend.
    within("subscribe to events", monitor.ready()).await?;

    let (alpha, beta, gamma) = tokio::join!(
        short(env, &monitor, "alpha", "echo hello from alpha"),
        short(env, &monitor, "beta", "exit 7"),
        gamma(env, &monitor),
    );
    let codes = [("alpha", alpha?), ("beta", beta?), ("gamma", gamma?)];
    for (name, code) in codes {
        say!("events: wait_init_exit({name}) -> exit {code}");
    }

    // A wait resolves when the monitor decides on the exit; the backend is handed it a moment later.
    let names = ["alpha", "beta", "gamma"];
    if !recorder
        .wait_until(Duration::from_secs(10), |r| {
            names.iter().all(|n| r.has_init_exit(n))
        })
        .await
    {
        return Err("not every exit reached the backend within 10 s".into());
    }
    let expected = [
        ("alpha", "create start exit"),
        ("beta", "create start exit"),
        (
            "gamma",
            "create start paused resumed exec-added exec-started exit exit",
        ),
    ];
    let mut wrong = Vec::new();
    for (name, want) in expected {
        let got = recorder.line(name);
        say!("events: order {name}: {got}");
        if got != want {
            wrong.push(format!("{name}: got {got:?}, expected {want:?}"));
        }
    }
    // The exit codes the backend saw are the ones the waits returned.
    for (name, code) in codes {
        let seen: Vec<u32> = recorder
            .of(name)
            .iter()
            .filter(|s| s.event == EventType::Exit && s.info.is_init())
            .map(|s| s.info.exit_code)
            .collect();
        if seen != [code] {
            wrong.push(format!(
                "{name}: backend saw init exits {seen:?}, the wait {code}"
            ));
        }
    }
    if !wrong.is_empty() {
        return Err(format!("events out of order or missing: {}", wrong.join("; ")).into());
    }
    say!("events: every container's events arrived in order, each exit once");
    Ok(())
}

async fn create(env: &Env, name: &Id, script: &str) -> Result<libcontainerd::Container, Report> {
    let spec = SpecBuilder::new(&env.rootfs)
        .args(["sh", "-c", script])
        .build()?;
    within(
        "create container",
        env.client
            .new_container(name, &spec, &Runtime::default(), &Default::default()),
    )
    .await
}

/// A container that runs `script` and exits; returns its exit code, as the event stream gave it.
async fn short(env: &Env, monitor: &EventMonitor, name: &str, script: &str) -> Result<u32, Report> {
    let id = Id::new(name)?;
    let container = create(env, &id, script).await?;
    // Registered before the task exists, so the exit cannot be missed however fast it comes.
    let exit = monitor.wait_init_exit(&id);
    let (task, _io) = within("start", container.spawn(None, &no_output())).await?;
    let status = within("wait for the exit", exit).await?;
    within("delete task", task.delete()).await?;
    within("delete container", container.delete()).await?;
    Ok(status.code)
}

/// A container that is paused, resumed, exec'd into and stopped with a signal.
async fn gamma(env: &Env, monitor: &EventMonitor) -> Result<u32, Report> {
    let id = Id::new("gamma")?;
    let container = create(
        env,
        &id,
        "trap 'exit 143' TERM; while :; do sleep 0.1; done",
    )
    .await?;
    let exit = monitor.wait_init_exit(&id);
    let (task, _io) = within("start", container.spawn(None, &no_output())).await?;
    within("pause", task.pause()).await?;
    within("resume", task.resume()).await?;

    let exec_id = Id::new("check")?;
    let exec_exit = monitor.wait_exit(&id, &exec_id);
    let process = exec_process(container.spec(), ["true"]).build()?;
    let (exec, _io) = within("exec", task.spawn_exec(&exec_id, process, &no_output())).await?;
    let exec_status = within("wait for the exec's exit", exec_exit).await?;
    within("delete exec", exec.delete()).await?;
    say!(
        "events: exec {exec_id} in gamma exited {}",
        exec_status.code
    );

    // Signal 15 is SIGTERM; `Signal::new` refuses numbers the kernel does not have.
    within("kill", task.kill(Signal::new(15)?)).await?;
    let status = within("wait for the exit", exit).await?;
    within("delete task", task.delete()).await?;
    within("delete container", container.delete()).await?;
    Ok(status.code)
}
