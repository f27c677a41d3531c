//! `lcd restart [-t SECONDS] [-s SIGNAL] ID...`: stop each container as `lcd stop` does (one that
//! is not running is left as it is), then start it detached, as docker's restart does.
//!
//! Each restart is one step under the container's lock (see [`crate::container_lock`]), held
//! through the stop's grace period: lcd's agent, seeing the exit, waits, then finds the new task
//! running, so it neither removes a `-d --rm` container nor applies a restart policy in between.

use anyhow::Result;
use libcontainerd::TaskStatus;

use super::stop::{end_task, parse_signal};
use crate::cli::StopArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::launch;
use crate::state::{self, LABEL_STDIN};

/// `lcd restart`.
pub async fn restart(ctx: &Ctx, args: StopArgs) -> Result<i32> {
    let signal = parse_signal(args.signal.as_deref())?;
    let client = ctx.client().await?;
    let time = args.time;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (lock, container, task) = state::locked_load_with_task(ctx, &client, &id).await?;
            cri::refuse_change(&container, "restart", ctx.force_kubernetes)?;
            match task {
                // Left by a start that was killed before its process ran: no exit to record.
                Some((task, TaskStatus::Created)) => task.force_delete().await?,
                Some((task, TaskStatus::Stopped)) => {
                    state::reap_if_present(&lock, &container, &task, None).await?;
                }
                Some((task, _)) => {
                    if let Some(status) = end_task(&container, &task, signal, time).await? {
                        state::reap_if_present(&lock, &container, &task, Some(status)).await?;
                    }
                }
                None => {}
            }
            let stdin = container.labels().contains_key(LABEL_STDIN);
            launch::start_detached_after_delete(ctx, &container, stdin).await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}
