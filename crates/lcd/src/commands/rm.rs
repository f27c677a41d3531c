//! `lcd rm [-f] ID...`: remove containers, their task (if stopped, or with -f) and their log.

use anyhow::{bail, Context as _, Result};
use libcontainerd::TaskStatus;

use crate::cli::RmArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::network;
use crate::state;
use crate::{mounts, volumes};

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

fn remove_log(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}
