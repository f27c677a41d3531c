//! `lcd run`: `create`, then `start` attached or detached, and with `--rm` remove the container
//! once it has exited.

use anyhow::{bail, Result};
use libcontainerd::{Container, ErrorKind, Task};

use super::create::create_container;
use super::start::{is_gone, not_a_tty, run_attached, start_detached, Attached};
use crate::cli::RunArgs;
use crate::context::Ctx;
use crate::tty;

/// `lcd run`: create, start, and (unless detached) wait and return the container's exit status.
pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    if args.detach && args.rm {
        bail!(
            "--rm with -d is not supported yet: remove the container with `lcd rm` when it is done"
        );
    }
    let interactive = args.create.interactive;
    // docker refuses before creating anything: raw keys need a terminal to come from.
    if interactive && args.create.tty && !args.detach && !tty::stdin_is_terminal() {
        return Ok(not_a_tty());
    }
    let container = create_container(ctx, &args.create).await?;
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
                    detached_with_rm(ctx, &container);
                }
                return Ok(0);
            }
            Err(e) => Err(e),
        }
    };
    if matches!(&outcome, Err(e) if is_gone(e)) {
        // Removed under us (a racing `rm -f`) after its task was created: containerd keeps a
        // task whose record is gone, out of reach of its own API.
        reclaim_orphaned_task(ctx, &container).await;
    }
    if outcome.is_err() || args.rm {
        // Nothing half-made stays behind when run fails, and --rm removes it either way.
        remove_quietly(ctx, &container).await;
    }
    outcome
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
/// as docker's does. docker's daemon removes it when it exits later; nothing of lcd outlives this
/// command to do that yet, so the container is left (its task untouched) and the user is told how
/// to remove it. An lcd agent that sees exits would take the container over here.
pub fn detached_with_rm(_ctx: &Ctx, container: &Container) {
    let id = container.id();
    eprintln!(
        "{id} keeps running; --rm cannot remove it after a detach: `lcd rm -f {id}` removes it"
    );
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
    // A run that failed after its logger started (a racing `rm -f`) leaves no log behind.
    let _ = std::fs::remove_file(ctx.log_path(container.id()));
}
