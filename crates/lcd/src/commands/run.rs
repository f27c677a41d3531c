//! `lcd run`: `create`, then `start` attached or detached, and with `--rm` remove the container
//! once it has exited (by lcd itself when attached, by lcd's agent when detached).

use std::collections::HashMap;

use anyhow::{bail, Result};
use libcontainerd::{Container, ErrorKind};

use super::create::create_container;
use super::start::run_attached;
use crate::cli::RunArgs;
use crate::context::Ctx;
use crate::launch::start_detached;
use crate::network;
use crate::restart::{Policy, LABEL_AUTO_REMOVE, LABEL_DETACHED};
use crate::{mounts, volumes};

/// `lcd run`: create, start, and (unless detached) wait and return the container's exit status.
pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    let policy: Policy = args.create.restart.parse()?;
    if args.rm && policy != Policy::No {
        // docker's words.
        bail!("conflicting options: --restart and --rm");
    }
    if policy != Policy::No && !args.detach {
        bail!("--restart needs -d: an attached lcd run ends at its container's first exit");
    }
    if args.detach && args.rm && ctx.address.is_some() {
        bail!("-d --rm needs lcd's agent, which runs only beside lcd's own containerd: drop --address");
    }
    let interactive = args.create.interactive;
    let mut labels = HashMap::new();
    if args.detach {
        // Written with the container, so the detached start needs no second write.
        labels.insert(LABEL_DETACHED.to_string(), "1".to_string());
        if args.rm {
            labels.insert(LABEL_AUTO_REMOVE.to_string(), "1".to_string());
        }
    }
    let container = create_container(ctx, &args.create, labels).await?;
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
    if outcome.is_err() || (args.rm && !args.detach) {
        // Nothing half-made stays behind when run fails, and an attached --rm removes it either
        // way (a detached one is the agent's to remove once it exits).
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
