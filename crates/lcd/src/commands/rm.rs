//! `lcd rm [-f] ID...`: remove containers, their task (if stopped, or with -f) and their log.
//! Removal agrees with a concurrent one: a container (or task) that another `rm` removed meanwhile
//! counts as removed, and `rm -f` of a missing container prints docker's error but succeeds.

use anyhow::{bail, Context as _, Result};
use libcontainerd::{Container, ErrorKind, Task, TaskStatus};

use super::start::is_gone;
use crate::cli::RmArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::state;

/// `lcd rm`.
pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let force = args.force;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = match state::load_with_task(&client, &id).await {
                // docker's rm -f says so, and counts it done: the container is gone.
                Err(e) if force && is_gone(&e) => {
                    crate::exit::print(&e);
                    return Ok(());
                }
                loaded => loaded?,
            };
            cri::refuse_change(&container, "remove", ctx.force_kubernetes)?;
            if let Some((task, status)) = task {
                delete_task(&task, status, force, &id).await?;
            }
            delete_container(&container, force, &id).await?;
            remove_log(&ctx.log_path(container.id()))?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

async fn delete_task(task: &Task, status: TaskStatus, force: bool, id: &str) -> Result<()> {
    let deleted = if status == TaskStatus::Stopped {
        task.delete().await.map(|_| ())
    } else if force {
        task.force_delete().await
    } else {
        bail!("cannot remove container {id}: it is {status}; stop it first or use rm -f");
    };
    match deleted {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
        // Deleted by another lcd meanwhile.
        _ => Ok(()),
    }
}

async fn delete_container(container: &Container, force: bool, id: &str) -> Result<()> {
    let mut deleted = container.delete().await;
    if force && matches!(&deleted, Err(e) if e.kind() == ErrorKind::FailedPrecondition) {
        // A task was started since we looked (a racing `lcd start` or `run`): -f removes it too.
        if let Some((task, status)) = state::task_with_status(container).await? {
            delete_task(&task, status, true, id).await?;
        }
        deleted = container.delete().await;
    }
    match deleted {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
        // Removed by another lcd meanwhile: it is gone, which is what was asked.
        _ => {}
    }
    if force {
        // A task whose create was under way while the record went (a racing `run -d`) would
        // outlive its container: containerd deletes a record whatever its task.
        if let Ok(task) = container.task().await {
            let _ = task.force_delete().await;
        }
    }
    Ok(())
}

fn remove_log(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}
