//! `lcd rm [-f] ID...`: remove containers, their task (if stopped, or with -f) and their log.
//!
//! A container's exit is recorded before its task is deleted, and the task is deleted before the
//! container: an `rm` killed at any point leaves either the container as it was, or an exited
//! container that says how it ended (never one shown as `Created` after it ran).
//!
//! Each container is removed under its lock (see [`crate::container_lock`]), so that a racing `run`,
//! `start` or the agent's reaping finishes its step first. Removal agrees with a concurrent one: a container (or task) that another `rm` removed meanwhile
//! counts as removed, and `rm -f` of a missing container prints docker's error but succeeds.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use libcontainerd::{Container, ErrorKind, Signal, Task, TaskStatus};

use crate::cli::RmArgs;
use crate::container_lock::ContainerLock;
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
            let (lock, container, task) =
                match state::locked_load_with_task(ctx, &client, &id).await {
                    // docker's rm -f says so, and counts it done: the container is gone.
                    Err(e) if force && state::is_gone(&e) => {
                        crate::exit::print(&e);
                        return Ok(());
                    }
                    loaded => loaded?,
                };
            cri::refuse_change(&container, "remove", ctx.force_kubernetes)?;
            if let Some((task, status)) = task {
                if status == TaskStatus::Stopped {
                    state::reap_if_present(&lock, &container, &task, None).await?;
                } else if force {
                    // The agent must not start it again while it goes.
                    if let Err(e) = launch::mark_stopped_by_user(&container).await {
                        if !state::is_gone(&e) {
                            return Err(e);
                        }
                    }
                    kill_and_reap(&lock, &container, &task, status).await?;
                } else {
                    bail!(
                        "cannot remove container {id}: it is {status}; stop it first or use rm -f"
                    );
                }
            }
            crash_point("rm-after-exit-recorded");
            delete_container(&container, force, &id).await?;
            network::forget(ctx, container.id())?;
            remove_log(&ctx.log_path(container.id()))?;
            if remove_volumes {
                let records = volumes::mounts_of(container.labels());
                mounts::remove_anonymous(ctx, &client, &records).await?;
            }
            // Its checkpoints go with it, as docker's do (those in a --checkpoint-dir stay).
            remove_checkpoints(&ctx.checkpoints_dir(container.id()))?;
            lock.remove();
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// SIGKILL the task's processes, wait for the init process, and record its exit as the task goes.
/// A task that never ran (or whose state containerd cannot tell) is only force-deleted: there is
/// no exit to record.
async fn kill_and_reap(
    lock: &ContainerLock,
    container: &Container,
    task: &Task,
    status: TaskStatus,
) -> Result<()> {
    if !matches!(
        status,
        TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing
    ) {
        return match task.force_delete().await {
            Err(e) if e.kind() != ErrorKind::NotFound && !state::task_went(container).await => {
                Err(e.into())
            }
            _ => Ok(()),
        };
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
        if state::reap_if_present(lock, container, task, Some(status))
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    // It would not go, or its exit could not be recorded: it goes all the same (unless a racing
    // `rm` took it already).
    match task.force_delete().await {
        Err(e) if e.kind() != ErrorKind::NotFound && !state::task_went(container).await => {
            return Err(e.into())
        }
        _ => {}
    }
    Ok(())
}

async fn delete_task(
    container: &Container,
    task: &Task,
    status: TaskStatus,
    force: bool,
    id: &str,
) -> Result<()> {
    let deleted = if status == TaskStatus::Stopped {
        task.delete().await.map(|_| ())
    } else if force {
        task.force_delete().await
    } else {
        bail!("cannot remove container {id}: it is {status}; stop it first or use rm -f");
    };
    match deleted {
        Err(e) if e.kind() != ErrorKind::NotFound && !state::task_went(container).await => {
            Err(e.into())
        }
        // Deleted by another lcd meanwhile.
        _ => Ok(()),
    }
}

async fn delete_container(container: &Container, force: bool, id: &str) -> Result<()> {
    let mut deleted = container.delete().await;
    if force && matches!(&deleted, Err(e) if e.kind() == ErrorKind::FailedPrecondition) {
        // A task started since we looked, by something that does not take lcd's container lock
        // (`ctr`): -f removes it too.
        if let Some((task, status)) = state::task_with_status(container).await? {
            delete_task(container, &task, status, true, id).await?;
        }
        deleted = container.delete().await;
    }
    match deleted {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
        // Removed by another lcd meanwhile: it is gone, which is what was asked.
        _ => Ok(()),
    }
}

fn remove_log(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}

fn remove_checkpoints(dir: &std::path::Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove checkpoints {}", dir.display())),
    }
}
