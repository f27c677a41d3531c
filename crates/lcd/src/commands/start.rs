//! `lcd start`: run a created (or stopped) container's task, attached (stdio forwarded, signals
//! proxied, exit status returned) or detached (output to a log file, or kept on FIFOs for a later
//! `lcd attach`). `run` starts its new container the same way, with the two functions here.

use anyhow::{bail, Context as _, Result};
use libcontainerd::{Container, Id, Output, StdioConfig, Task, TaskStatus};

use super::checkpoint;
use crate::cli::StartArgs;
use crate::context::Ctx;
use crate::session::{self, has_terminal};
use crate::state::{self, LABEL_STDIN};
use crate::tty;

/// `lcd start`: the second half of run, for a created (or stopped) container.
pub async fn start(ctx: &Ctx, args: StartArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let id = Id::new(args.id.as_str())?;
    let (container, task) = client.load_container_and_task(&id).await?;
    match task {
        Some((task, TaskStatus::Stopped)) => {
            state::reap(&container, &task).await?;
        }
        Some((_, status)) => bail!("container {id} is already {status}"),
        None => {}
    }
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
        container
            .start(Some(&dir), &config, |_| Ok(()))
            .await
            .with_context(|| format!("restore container {id} from checkpoint {name}"))?;
        println!("{id}");
        return Ok(0);
    }
    if args.attach {
        run_attached(container, stdin, false).await
    } else {
        start_detached(ctx, &container, stdin).await?;
        println!("{id}");
        Ok(0)
    }
}

/// Start the container's task with nobody attached; see the module's summary for where its output
/// goes.
pub async fn start_detached(ctx: &Ctx, container: &Container, stdin: bool) -> Result<Task> {
    if stdin || has_terminal(container) {
        // A container that takes input is attached to later (`lcd attach`): its stdio stays on
        // FIFOs. Output waits in them (64 KiB, then the process blocks) until someone attaches.
        let config = StdioConfig {
            stdin,
            terminal: false,
            output: Output::Pipe,
        };
        let (task, mut io) = container.create_task(None, &config).await?;
        // The shim holds a writer on the stdin FIFO itself, so the process sees end of file only
        // through CloseIO: letting go of our end without it keeps stdin open for `lcd attach`.
        if let Some(ours) = io.stdin.take() {
            ours.detach();
        }
        if let Err(e) = task.start().await {
            let _ = task.force_delete().await;
            return Err(e.into());
        }
        return Ok(task);
    }
    let config = StdioConfig {
        stdin,
        terminal: false,
        output: ctx.log_output(container.id())?,
    };
    Ok(container.start(None, &config, |_| Ok(())).await?)
}

/// Run the task with our stdio connected and return its exit status; the task is deleted afterwards
/// (its exit is recorded on the container, or the container goes too with --rm). If the user detaches
/// (Ctrl-P Ctrl-Q on a terminal), the container keeps running and lcd returns 0.
pub async fn run_attached(container: Container, stdin: bool, remove: bool) -> Result<i32> {
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
    let status = match session::attach(&task, io, terminal, &tty::DEFAULT_DETACH_KEYS).await? {
        session::Outcome::Exited(status) => status,
        session::Outcome::Detached => return Ok(0),
    };
    if remove {
        task.delete().await?;
    } else {
        state::reap(&container, &task).await?;
    }
    Ok(i32::try_from(status.code).unwrap_or(255))
}
