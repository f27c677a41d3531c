//! `lcd run`: `create`, then `start` attached or detached, and with `--rm` remove the container
//! once it has exited.

use anyhow::{bail, Result};
use libcontainerd::{Container, ErrorKind};

use super::create::create_container;
use super::start::{not_a_tty, run_attached, start_detached, Attached};
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
        start_detached(ctx, &container, interactive).await.map(|_| {
            println!("{}", container.id());
            0
        })
    } else {
        match run_attached(container.clone(), interactive, args.rm).await {
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
    if outcome.is_err() || args.rm {
        // Nothing half-made stays behind when run fails, and --rm removes it either way.
        remove_quietly(ctx, &container).await;
    }
    outcome
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
