//! `lcd start`: run a created (or stopped) container's task, attached (stdio forwarded, signals
//! proxied, exit status returned) or detached (output to a log file, or kept on FIFOs for a later
//! `lcd attach`; see [`crate::launch`]). `run` starts its new container the same way.

use anyhow::{bail, Context as _, Result};
use libcontainerd::{Client, Container, Output, StdioConfig, TaskStatus};

use super::checkpoint;
use crate::cli::StartArgs;
use crate::container_lock::ContainerLock;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::launch::{self, start_detached};
use crate::network;
use crate::session::{self, has_terminal};
use crate::state::{self, LABEL_STDIN};
use crate::tty;

/// `lcd start`: the second half of run, for created (or stopped) containers. A container that
/// runs already is left as it is, quietly, as docker does.
pub async fn start(ctx: &Ctx, args: StartArgs) -> Result<i32> {
    if args.ids.len() > 1 && (args.attach || args.checkpoint.is_some()) {
        bail!("you cannot start and attach (or restore) multiple containers at once");
    }
    let client = ctx.client().await?;
    if args.ids.len() > 1 {
        let args = &args;
        return for_each_id(&args.ids, |id| {
            let client = client.clone();
            async move {
                start_one(ctx, &client, args, &id).await?;
                Ok(())
            }
        })
        .await;
    }
    start_one(ctx, &client, &args, &args.ids[0]).await
}

async fn start_one(ctx: &Ctx, client: &Client, args: &StartArgs, given: &str) -> Result<i32> {
    // Held until the task runs: a racing `rm -f` or agent waits for it (see crate::container_lock).
    let (lock, container, task) = state::locked_load_with_task(ctx, client, given).await?;
    let id = container.id().clone();
    cri::refuse_change(&container, "start", ctx.force_kubernetes)?;
    let mut leftover = false;
    match task {
        Some((task, TaskStatus::Stopped)) => {
            state::reap_if_present(&lock, &container, &task, None).await?;
        }
        Some((task, TaskStatus::Created)) => {
            // Left by a start that was killed before the process ran: its shim (and logger) go
            // before the new task's come, so two loggers never write one file.
            task.force_delete().await?;
            leftover = true;
        }
        Some((_, TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing))
            if !args.attach && args.checkpoint.is_none() =>
        {
            println!("{given}");
            return Ok(0);
        }
        Some((_, status)) => bail!("container {id} is already {status}"),
        None => {}
    }
    let mut held = Some(lock);
    let stdin = args.interactive && container.labels().contains_key(LABEL_STDIN);
    if let Some(name) = &args.checkpoint {
        let dir = checkpoint::existing_checkpoint(ctx, &id, name, args.checkpoint_dir.as_deref())?;
        checkpoint::refuse_terminal(&container, "restore")?;
        checkpoint::working_criu(ctx).await?;
        // A restored process keeps the stdio it was checkpointed with: output goes to the log.
        let config = StdioConfig {
            stdin: false,
            terminal: false,
            output: ctx.log_output(container.id())?,
        };
        launch::mark_detached(&container, true).await?;
        container
            .start(Some(&dir), &config, |_| Ok(()))
            .await
            .with_context(|| format!("restore container {id} from checkpoint {name}"))?;
        println!("{given}");
        return Ok(0);
    }
    if args.attach {
        if stdin && has_terminal(&container) && !tty::stdin_is_terminal() {
            return Ok(not_a_tty());
        }
        // This run's exit is the session's to record (and no restart policy applies to it).
        launch::mark_detached(&container, false).await?;
    }
    // containerd removes a deleted task's shim directory once it sees the shim go, a moment
    // after the delete returned; until then a new shim for the container fails to start ("file
    // exists" from 1.6, "getwd: no such file or directory" from 1.7, whose cleanup removes the
    // directory under the new shim).
    let mut tries = 0;
    loop {
        let started = if args.attach {
            let log = ctx.log_path(container.id());
            run_attached(ctx, &mut held, container.clone(), stdin, false, Some(&log))
                .await
                .map(|attached| match attached {
                    Attached::Exited(code) => code,
                    Attached::Detached => 0,
                })
        } else {
            start_detached(ctx, &container, stdin).await.map(|_| {
                println!("{given}");
                0
            })
        }
        .map_err(|e| network::hook_error(container.bundle_dir(), e));
        match started {
            Err(e)
                if leftover && tries < 200 && format!("{e:#}").contains("failed to start shim") =>
            {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            started => return started,
        }
    }
}

/// docker's refusal of `-it` when stdin is not a terminal: its message, and its status 1 (a
/// refusal of the client's, not a failure of the engine's).
pub fn not_a_tty() -> i32 {
    eprintln!("lcd: the input device is not a TTY");
    1
}

/// How an attached run ended.
#[derive(Debug)]
pub enum Attached {
    /// The process exited with this status; its task is deleted and its exit recorded.
    Exited(i32),
    /// The user detached (Ctrl-P Ctrl-Q): the container keeps running, its task untouched.
    Detached,
}

/// docker's status for a container whose task was killed and deleted under an attached session
/// (`rm -f` from another shell): 128 + SIGKILL.
const KILLED: i32 = 137;

/// Run the task with our stdio connected until it exits (its task is then deleted and its exit
/// recorded on the container) or the user detaches (Ctrl-P Ctrl-Q on a terminal: the container
/// keeps running).
/// With `remove`, the exit is not recorded: the container is about to go. The output is also
/// appended to `log`, if given. `held`: the caller's lock on the container, released once the
/// task runs (so that `rm -f` can kill it meanwhile) and taken again to reap it; kept when the
/// task could not start.
pub async fn run_attached(
    ctx: &Ctx,
    held: &mut Option<ContainerLock>,
    container: Container,
    stdin: bool,
    remove: bool,
    log: Option<&std::path::Path>,
) -> Result<Attached> {
    let config = StdioConfig {
        stdin,
        terminal: false,
        output: Output::Pipe,
    };
    let terminal = has_terminal(&container);
    let (task, io) = container.create_task(None, &config).await?;
    if let Err(e) = task.start().await {
        let _ = task.force_delete().await;
        return Err(e.into());
    }
    drop(held.take());
    let status = match session::attach(&task, io, terminal, &tty::DEFAULT_DETACH_KEYS, log).await {
        Ok(session::Outcome::Exited(status)) => status,
        Ok(session::Outcome::Detached) => return Ok(Attached::Detached),
        // Someone removed the container (`rm -f`) while we were attached: its process was
        // killed, as docker reports it.
        Err(e) if state::is_gone(&e) => return Ok(Attached::Exited(KILLED)),
        Err(e) => return Err(e),
    };
    let lock = ContainerLock::acquire(ctx, container.id().as_str()).await?;
    let reaped = if remove {
        task.delete().await.map(|_| ()).map_err(anyhow::Error::from)
    } else {
        state::reap_if_present(&lock, &container, &task, Some(status))
            .await
            .map(|_| ())
    };
    match reaped {
        Ok(()) => {}
        // Reaped (or removed) by another lcd meanwhile: the exit is the one we saw.
        Err(e) if state::is_gone(&e) => {}
        // containerd 1.7 (and 1.6 mid-delete) answer a racing delete with the shim's closed
        // connection: reaped all the same once the task is gone.
        Err(_) if state::task_went(&container).await => {}
        Err(e) => return Err(e),
    }
    lock.release(&container).await;
    Ok(Attached::Exited(i32::try_from(status.code).unwrap_or(255)))
}
