//! `lcd stop [-t SECONDS] [-s SIGNAL] ID...`: for each running container, the stop signal (SIGTERM unless the container was
//! created with `--stop-signal` or from an image with a StopSignal), then SIGKILL after a grace
//! period (10 seconds unless `--stop-timeout` said otherwise; `-t` and `-s` override both). A
//! container that is not running is stopped already: its id is printed, as docker does.

use std::time::Duration;

use anyhow::{anyhow, Result};
use libcontainerd::{Container, ExitStatus, Signal, Task, TaskStatus};

use crate::cli::StopArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::launch;
use crate::options::stop_settings;
use crate::state;

/// docker's default grace period.
const DEFAULT_TIMEOUT: i64 = 10;

/// `lcd stop`: the stop signal, wait up to the timeout, then SIGKILL; the stopped task is reaped.
pub async fn stop(ctx: &Ctx, args: StopArgs) -> Result<i32> {
    let given_signal = parse_signal(args.signal.as_deref())?;
    let client = ctx.client().await?;
    let force_kubernetes = ctx.force_kubernetes;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            cri::refuse_change(&container, "stop", force_kubernetes)?;
            // Before anything else: a restart the agent has pending is cancelled too.
            ignore_gone(launch::mark_stopped_by_user(&container).await)?;
            let task = match task {
                // Unknown: a task that exists and has not stopped counts as running.
                Some((
                    task,
                    TaskStatus::Running
                    | TaskStatus::Paused
                    | TaskStatus::Pausing
                    | TaskStatus::Unknown,
                )) => task,
                Some((task, TaskStatus::Stopped)) => {
                    // Stopped, not reaped yet: finish the job.
                    ignore_gone(
                        state::reap_locked(ctx, &container, &task, None)
                            .await
                            .map(|_| ()),
                    )?;
                    println!("{id}");
                    return Ok(());
                }
                // Created or exited: stopped already, which docker's stop accepts quietly.
                _ => {
                    println!("{id}");
                    return Ok(());
                }
            };
            if let Some(status) = end_task(&container, &task, given_signal, args.time).await? {
                ignore_gone(
                    state::reap_locked(ctx, &container, &task, Some(status))
                        .await
                        .map(|_| ()),
                )?;
            }
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// End a running task as `stop` does: its stop signal (`signal`, else the container's, else
/// SIGTERM), up to `time` seconds (else the container's stop timeout, else 10; negative: as long as
/// it takes), then SIGKILL. Returns the exit, or None if a racing `kill`, `stop`, `rm` or the
/// agent reaped the task meanwhile (and recorded the exit). The task is not reaped here.
pub(crate) async fn end_task(
    container: &Container,
    task: &Task,
    signal: Option<Signal>,
    time: Option<i64>,
) -> Result<Option<ExitStatus>> {
    let (label_signal, label_timeout) = stop_settings(container.labels());
    let signal = match signal {
        Some(s) => s,
        None => label_signal
            .and_then(|s| s.parse().ok())
            .unwrap_or(Signal::TERM),
    };
    let timeout = time.or(label_timeout).unwrap_or(DEFAULT_TIMEOUT);
    // A paused process cannot act on the signal; docker's stop also just signals it. Each step
    // may find the work done by a racing command: the process ended, or its task was reaped, is
    // what stop wants.
    ignore_gone(task.kill(signal).await.map_err(Into::into))?;
    let waited = match u64::try_from(timeout) {
        Ok(secs) => tokio::time::timeout(Duration::from_secs(secs), task.wait())
            .await
            .ok(),
        // Negative: wait as long as it takes, as docker's -1.
        Err(_) => Some(task.wait().await),
    };
    let exited = match waited {
        Some(exited) => exited,
        None => {
            ignore_gone(task.kill_all(Signal::KILL).await.map_err(Into::into))?;
            task.wait().await
        }
    };
    match exited {
        Ok(status) => Ok(Some(status)),
        // Reaped by lcd's agent or a racing command, which recorded the exit.
        Err(e) => ignore_gone(Err(e.into())).map(|()| None),
    }
}

/// The `--signal` a user gave, parsed.
pub(crate) fn parse_signal(given: Option<&str>) -> Result<Option<Signal>> {
    given
        .map(|s| s.parse().map_err(|e| anyhow!("--signal {s}: {e}")))
        .transpose()
}

/// Success when `result` failed only because the process ended or its task (or container) went
/// away meanwhile.
fn ignore_gone(result: Result<()>) -> Result<()> {
    match result {
        Err(e) if state::is_gone(&e) || finished(&e) => Ok(()),
        other => other,
    }
}

/// containerd's refusal to signal a process that has exited.
fn finished(e: &anyhow::Error) -> bool {
    e.chain()
        .find_map(|c| c.downcast_ref::<libcontainerd::Error>())
        .is_some_and(|e| {
            e.kind() == libcontainerd::ErrorKind::FailedPrecondition
                || e.message().contains("process already finished")
        })
}
