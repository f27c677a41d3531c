//! `lcd run`: `create`, then `start` attached or detached, and with `--rm` remove the container
//! once it has exited (by lcd itself when attached, by lcd's agent when detached).

use std::collections::HashMap;

use anyhow::{bail, Result};
use libcontainerd::{Container, ErrorKind};

use super::create::create_container;
use super::start::{not_a_tty, run_attached, Attached};
use crate::cli::RunArgs;
use crate::container_lock::ContainerLock;
use crate::context::Ctx;
use crate::launch::start_detached;
use crate::network;
use crate::restart::{Policy, LABEL_AUTO_REMOVE, LABEL_DETACHED};
use crate::tty;
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
    // docker refuses before creating anything: raw keys need a terminal to come from.
    if interactive && args.create.tty && !args.detach && !tty::stdin_is_terminal() {
        return Ok(not_a_tty());
    }
    let mut labels = HashMap::new();
    if args.detach {
        // Written with the container, so the detached start needs no second write.
        labels.insert(LABEL_DETACHED.to_string(), "1".to_string());
        if args.rm {
            labels.insert(LABEL_AUTO_REMOVE.to_string(), "1".to_string());
        }
    }
    let (container, lock) = create_container(ctx, &args.create, labels).await?;
    // The container's lock is held until its task runs (see crate::container_lock).
    let mut held = Some(lock);
    let outcome = if args.detach {
        start_detached(ctx, &container, interactive).await.map(|_| {
            println!("{}", container.id());
            0
        })
    } else {
        // A container removed when it exits keeps no log (docker's removes it with the
        // container), so its attached output goes to the terminal alone.
        let log = (!args.rm).then(|| ctx.log_path(container.id()));
        let attached = run_attached(
            ctx,
            &mut held,
            container.clone(),
            interactive,
            args.rm,
            log.as_deref(),
        )
        .await;
        match attached {
            Ok(Attached::Exited(code)) => Ok(code),
            Ok(Attached::Detached) => {
                if args.rm {
                    detached_with_rm(ctx, &container).await;
                }
                return Ok(0);
            }
            Err(e) => Err(e),
        }
    }
    .map_err(|e| network::hook_error(container.bundle_dir(), e));
    if outcome.is_err() || (args.rm && !args.detach) {
        // Nothing half-made stays behind when run fails, and an attached --rm removes it either
        // way (a detached one is the agent's to remove once it exits).
        remove_quietly(ctx, held.take(), &container).await;
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

/// What becomes of a `--rm` container the user detached from (Ctrl-P Ctrl-Q): it keeps running,
/// as docker's does, and, as docker's daemon does, lcd's agent removes it when it exits: it is
/// marked as a detached `--rm` container. Should it have exited already (before the agent could
/// know it was its to remove), it goes now. With `--address` there is no agent: the user is told
/// how to remove it.
async fn detached_with_rm(ctx: &Ctx, container: &Container) {
    let id = container.id();
    let handed_over = if ctx.address.is_none() {
        let labels = std::collections::HashMap::from([
            (LABEL_DETACHED.to_string(), "1".to_string()),
            (LABEL_AUTO_REMOVE.to_string(), "1".to_string()),
        ]);
        container.clone().set_labels(&labels).await.is_ok()
    } else {
        false
    };
    if !handed_over {
        eprintln!(
            "{id} keeps running; --rm cannot remove it after a detach: `lcd rm -f {id}` removes it"
        );
        return;
    }
    if let Ok(Some((_, libcontainerd::TaskStatus::Stopped))) =
        crate::state::task_with_status(container).await
    {
        remove_quietly(ctx, None, container).await;
    }
}

/// Remove the container and its log, saying nothing if someone else (`lcd rm -f`) removed it
/// first; under its lock (`held`, or taken here).
async fn remove_quietly(ctx: &Ctx, held: Option<ContainerLock>, container: &Container) {
    let lock = match held {
        Some(lock) => Some(lock),
        None => ContainerLock::acquire(ctx, container.id().as_str())
            .await
            .ok(),
    };
    // Usually the task is gone already (deleted once it exited, which the container handle
    // remembers): then this is a single RPC.
    let mut removed = container.delete().await;
    if matches!(&removed, Err(e) if e.kind() == ErrorKind::FailedPrecondition) {
        // Its task is still there (the run failed half-way): it goes first.
        if let Ok(task) = container.task().await {
            let _ = task.force_delete().await;
        }
        removed = container.delete().await;
    }
    match removed {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(container = %container.id(), error = %e, "removing the container"),
    }
    if let Err(e) = network::forget(ctx, container.id()) {
        tracing::warn!(container = %container.id(), error = %e, "releasing the container's network");
    }
    // A run that failed after its logger started leaves no log behind.
    let _ = std::fs::remove_file(ctx.log_path(container.id()));
    if let Some(lock) = lock {
        lock.remove();
    }
}
