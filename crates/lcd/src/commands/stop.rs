//! `lcd stop [-t SECONDS] [-s SIGNAL] ID...`: the stop signal (SIGTERM unless the container was
//! created with `--stop-signal` or from an image with a StopSignal), then SIGKILL after a grace
//! period (10 seconds unless `--stop-timeout` said otherwise; `-t` and `-s` override both).

use std::time::Duration;

use anyhow::{anyhow, Result};
use libcontainerd::Signal;

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
    let given_signal: Option<Signal> = match &args.signal {
        Some(s) => Some(s.parse().map_err(|e| anyhow!("--signal {s}: {e}"))?),
        None => None,
    };
    let client = ctx.client().await?;
    let force_kubernetes = ctx.force_kubernetes;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            cri::refuse_change(&container, "stop", force_kubernetes)?;
            // Before anything else: a restart the agent has pending is cancelled too.
            launch::mark_stopped_by_user(&container).await?;
            let task = state::running(container.id(), task)?;
            let (label_signal, label_timeout) = stop_settings(container.labels());
            let signal = match given_signal {
                Some(s) => s,
                None => label_signal
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(Signal::TERM),
            };
            let timeout = args.time.or(label_timeout).unwrap_or(DEFAULT_TIMEOUT);
            // A paused process cannot act on the signal; docker's stop also just signals it.
            match task.kill(signal).await {
                // It exited meanwhile and lcd's agent already recorded that and deleted the task.
                Err(e) if e.kind() == libcontainerd::ErrorKind::NotFound => {
                    println!("{id}");
                    return Ok(());
                }
                killed => killed?,
            }
            let waited = match u64::try_from(timeout) {
                Ok(secs) => tokio::time::timeout(Duration::from_secs(secs), task.wait())
                    .await
                    .ok(),
                // Negative: wait as long as it takes, as docker's -1.
                Err(_) => Some(task.wait().await),
            };
            let exited = match waited {
                Some(exited) => exited,
                None => match task.kill_all(Signal::KILL).await {
                    Ok(()) => task.wait().await,
                    Err(e) => Err(e),
                },
            };
            match exited {
                Ok(status) => {
                    state::reap_if_present(&container, &task, Some(status)).await?;
                }
                // lcd's agent saw the exit first: it recorded it and deleted the task.
                Err(e) if e.kind() == libcontainerd::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            println!("{id}");
            Ok(())
        }
    })
    .await
}
