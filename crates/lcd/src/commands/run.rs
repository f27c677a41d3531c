//! `lcd run`: `create`, then `start` attached or detached, and with `--rm` remove the container
//! once it has exited.

use anyhow::{bail, Result};
use libcontainerd::{Container, ErrorKind};

use super::create::create_container;
use super::start::{run_attached, start_detached};
use crate::cli::RunArgs;
use crate::context::Ctx;
use crate::network;
use crate::{mounts, volumes};

/// `lcd run`: create, start, and (unless detached) wait and return the container's exit status.
pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    if args.detach && args.rm {
        bail!(
            "--rm with -d is not supported yet: remove the container with `lcd rm` when it is done"
        );
    }
    let interactive = args.create.interactive;
    let container = create_container(ctx, &args.create).await?;
    let outcome = if args.detach {
        start_detached(ctx, &container, interactive).await.map(|_| {
            println!("{}", container.id());
            0
        })
    } else {
        // A container removed when it exits keeps no log (docker's removes it with the
        // container), so its attached output goes to the terminal alone.
        let log = (!args.rm).then(|| ctx.log_path(container.id()));
        run_attached(container.clone(), interactive, args.rm, log.as_deref()).await
    }
    .map_err(network::hook_error);
    if outcome.is_err() || args.rm {
        // Nothing half-made stays behind when run fails, and --rm removes it either way.
        remove_quietly(ctx, &container).await;
        // docker's `run --rm` takes the container's anonymous volumes with it.
        let records = volumes::mounts_of(container.labels());
        if let Err(e) = remove_anonymous_volumes(ctx, &records).await {
            tracing::warn!(container = %container.id(), error = %e, "removing anonymous volumes");
        }
    }
    outcome
}

async fn remove_anonymous_volumes(ctx: &Ctx, records: &[volumes::MountRecord]) -> Result<()> {
    if records.iter().all(|r| r.name.is_none()) {
        return Ok(());
    }
    mounts::remove_anonymous(ctx, &ctx.client().await?, records).await
}

async fn remove_quietly(ctx: &Ctx, container: &Container) {
    // Usually the task is gone already (deleted once it exited, which the container handle
    // remembers): then this is a single RPC.
    let mut removed = container.delete().await;
    if matches!(&removed, Err(e) if e.kind() == ErrorKind::FailedPrecondition) {
        // Its task is still there (the run failed half-way, or the user detached): it goes first.
        if let Ok(task) = container.task().await {
            let _ = task.force_delete().await;
        }
        removed = container.delete().await;
    }
    if let Err(e) = removed {
        tracing::warn!(container = %container.id(), error = %e, "removing the container");
    } else if let Err(e) = network::forget(ctx, container.id()) {
        tracing::warn!(container = %container.id(), error = %e, "releasing the container's network");
    }
}
