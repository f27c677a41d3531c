//! `lcd stop [-t SECONDS] ID...`: SIGTERM, then SIGKILL after a grace period.

use std::time::Duration;

use anyhow::Result;

use crate::cli::StopArgs;
use crate::context::Ctx;
use crate::exit::for_each_id;
use crate::state;

/// `lcd stop`: SIGTERM, wait up to -t seconds, then SIGKILL; the stopped task is reaped.
pub async fn stop(ctx: &Ctx, args: StopArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let grace = Duration::from_secs(args.time);
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            let task = state::running(container.id(), task)?;
            // A paused process cannot act on SIGTERM; docker's stop also just signals it.
            task.kill(libcontainerd::Signal::TERM).await?;
            if tokio::time::timeout(grace, task.wait()).await.is_err() {
                task.kill_all(libcontainerd::Signal::KILL).await?;
                task.wait().await?;
            }
            state::reap(&container, &task).await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}
