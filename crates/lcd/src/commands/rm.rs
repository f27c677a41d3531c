//! `lcd rm [-f] ID...`: remove containers, their task (if stopped, or with -f) and their log.

use anyhow::{bail, Context as _, Result};
use libcontainerd::TaskStatus;

use crate::cli::RmArgs;
use crate::context::Ctx;
use crate::exit::for_each_id;
use crate::state;

/// `lcd rm`.
pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let force = args.force;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            if let Some((task, status)) = task {
                if status == TaskStatus::Stopped {
                    task.delete().await?;
                } else if force {
                    task.force_delete().await?;
                } else {
                    bail!(
                        "cannot remove container {id}: it is {status}; stop it first or use rm -f"
                    );
                }
            }
            container.delete().await?;
            remove_log(&ctx.log_path(container.id()))?;
            // Its checkpoints go with it, as docker's do (those in a --checkpoint-dir stay).
            remove_checkpoints(&ctx.checkpoints_dir(container.id()))?;
            println!("{id}");
            Ok(())
        }
    })
    .await
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
