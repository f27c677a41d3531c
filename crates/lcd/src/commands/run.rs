//! `lcd run`: `create`, then `start` attached or detached, and with `--rm` remove the container
//! once it has exited (by lcd itself when attached, by lcd's agent when detached).

use std::collections::HashMap;

use anyhow::{bail, Result};
use libcontainerd::{Container, ErrorKind, Task};

use super::create::create_container;
use super::start::{is_gone, not_a_tty, run_attached, Attached};
use crate::cli::RunArgs;
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
    let container = create_container(ctx, &args.create, labels).await?;
    let outcome = if args.detach {
        match start_detached(ctx, &container, interactive).await {
            // Failing here removes the log below, as any failed run does.
            Ok(task) => ensure_not_removed(ctx, &container, &task).await.map(|()| {
                println!("{}", container.id());
                0
            }),
            Err(e) => Err(e),
        }
    } else {
        // A container removed when it exits keeps no log (docker's removes it with the
        // container), so its attached output goes to the terminal alone.
        let log = (!args.rm).then(|| ctx.log_path(container.id()));
        match run_attached(container.clone(), interactive, args.rm, log.as_deref()).await {
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
    .map_err(network::hook_error);
    let record_gone = match &outcome {
        Err(e) if is_gone(e) => true,
        // Whatever the error said (a shim that went mid-create, say), a record that is gone
        // leaves a task nobody else can reach.
        Err(_) => matches!(
            container.client().load_container(container.id()).await,
            Err(e) if e.kind() == ErrorKind::NotFound
        ),
        Ok(_) => false,
    };
    if record_gone {
        // Removed under us (a racing `rm -f`) after its task was created: containerd keeps a
        // task whose record is gone, out of reach of its own API.
        reclaim_orphaned_task(ctx, &container).await;
    }
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

/// A `rm -f` racing this run may have removed the record while the task was being created
/// (containerd deletes a record whatever its task): then the task, which nobody could find any
/// more, goes too, and the run fails as docker's does for a container removed under it.
async fn ensure_not_removed(ctx: &Ctx, container: &Container, task: &Task) -> Result<()> {
    match container.client().load_container(container.id()).await {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if task.force_delete().await.is_err() {
                reclaim_orphaned_task(ctx, container).await;
            }
            bail!("container {} was removed while it started", container.id())
        }
        _ => Ok(()),
    }
}

/// Remove the task containerd may keep for a container whose record was deleted while the task
/// was being created: its task API needs the record, so a stand-in record of the same id (on
/// `/`, never run) is made, the task deleted through it, and the stand-in removed. When the id
/// is taken again (a new container of that name), it is not ours to touch, and nothing happens.
async fn reclaim_orphaned_task(ctx: &Ctx, container: &Container) {
    let Ok(spec) = libcontainerd::SpecBuilder::new("/").build() else {
        return;
    };
    let client = container.client();
    let Ok(stand_in) = client
        .new_container(container.id(), &spec, &ctx.runtime(), &Default::default())
        .await
    else {
        return;
    };
    if let Ok(task) = stand_in.task().await {
        let _ = task.force_delete().await;
    }
    if let Err(e) = stand_in.delete().await {
        tracing::debug!(container = %container.id(), error = %e, "removing a stand-in record");
    }
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
        remove_quietly(ctx, container).await;
    }
}

/// Remove the container and its log, saying nothing if someone else (`lcd rm -f`) removed it
/// first.
async fn remove_quietly(ctx: &Ctx, container: &Container) {
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
    // A run that failed after its logger started (a racing `rm -f`) leaves no log behind.
    let _ = std::fs::remove_file(ctx.log_path(container.id()));
}
