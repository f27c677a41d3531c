//! `lcd rm [-f] ID...`: remove containers, their task (if stopped, or with -f) and their log.
//!
//! A container's exit is recorded before its task is deleted, and the task is deleted before the
//! container: an `rm` killed at any point leaves either the container as it was, or an exited
//! container that says how it ended (never one shown as `Created` after it ran).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use libcontainerd::{Container, ErrorKind, Signal, Task, TaskStatus};

use crate::cli::RmArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::fault::crash_point;
use crate::launch;
use crate::network;
use crate::state;
use crate::{mounts, volumes};

/// How long `rm -f` waits for a SIGKILLed process to go before deleting its task regardless.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// `lcd rm`.
pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let force = args.force;
    let remove_volumes = args.volumes;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            cri::refuse_change(&container, "remove", ctx.force_kubernetes)?;
            if let Some((task, status)) = task {
                if status == TaskStatus::Stopped {
                    state::reap_if_present(&container, &task, None).await?;
                } else if force {
                    // The agent must not start it again while it goes.
                    launch::mark_stopped_by_user(&container).await?;
                    kill_and_reap(&container, &task, status).await?;
                } else {
                    bail!(
                        "cannot remove container {id}: it is {status}; stop it first or use rm -f"
                    );
                }
            }
            crash_point("rm-after-exit-recorded");
            match container.delete().await {
                // The agent removed it meanwhile (a `run -d --rm` container that just exited).
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                removed => removed?,
            }
            network::forget(ctx, container.id())?;
            remove_log(&ctx.log_path(container.id()))?;
            if remove_volumes {
                let records = volumes::mounts_of(container.labels());
                mounts::remove_anonymous(ctx, &client, &records).await?;
            }
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// SIGKILL the task's processes, wait for the init process, and record its exit as the task goes.
/// A task that never ran (or whose state containerd cannot tell) is only force-deleted: there is
/// no exit to record.
async fn kill_and_reap(container: &Container, task: &Task, status: TaskStatus) -> Result<()> {
    if !matches!(
        status,
        TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing
    ) {
        task.force_delete().await?;
        return Ok(());
    }
    match task.kill_all(Signal::KILL).await {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::FailedPrecondition
            ) => {}
        Err(e) => return Err(e.into()),
    }
    crash_point("rm-after-kill");
    if let Ok(Ok(status)) = tokio::time::timeout(KILL_WAIT, task.wait()).await {
        if state::reap_if_present(container, task, Some(status))
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    // It would not go, or its exit could not be recorded: it goes all the same.
    task.force_delete().await?;
    Ok(())
}

fn remove_log(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}
