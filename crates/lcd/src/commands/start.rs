//! `lcd start`: run a created (or stopped) container's task, attached (stdio forwarded, signals
//! proxied, exit status returned) or detached (output to a log file, or kept on FIFOs for a later
//! `lcd attach`; see [`crate::launch`]). `run` starts its new container the same way.

use anyhow::{bail, Context as _, Result};
use libcontainerd::{Container, Id, Output, StdioConfig, TaskStatus};

use crate::cli::StartArgs;
use crate::context::Ctx;
use crate::cri;
use crate::launch::{self, start_detached};
use crate::network;
use crate::session::{self, has_terminal};
use crate::state::{self, LABEL_STDIN};
use crate::tty;

/// `lcd start`: the second half of run, for a created (or stopped) container.
pub async fn start(ctx: &Ctx, args: StartArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let id = Id::new(args.id.as_str())?;
    let (container, task) = client.load_container_and_task(&id).await?;
    cri::refuse_change(&container, "start", ctx.force_kubernetes)?;
    let mut leftover = false;
    match task {
        Some((task, TaskStatus::Stopped)) => {
            state::reap_if_present(&container, &task, None).await?;
        }
        Some((task, TaskStatus::Created)) => {
            // Left by a start that was killed before the process ran: its shim (and logger) go
            // before the new task's come, so two loggers never write one file.
            task.force_delete().await?;
            leftover = true;
        }
        Some((_, status)) => bail!("container {id} is already {status}"),
        None => {}
    }
    let stdin = args.interactive && container.labels().contains_key(LABEL_STDIN);
    if let Some(dir) = &args.checkpoint {
        // A restored process keeps the stdio it was checkpointed with: output goes to the log.
        let dir = std::path::absolute(dir)
            .with_context(|| format!("resolve checkpoint directory {}", dir.display()))?;
        let config = StdioConfig {
            stdin: false,
            terminal: false,
            output: ctx.log_output(container.id())?,
        };
        launch::mark_detached(&container, true).await?;
        container.start(Some(&dir), &config, |_| Ok(())).await?;
        println!("{id}");
        return Ok(0);
    }
    if args.attach {
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
            run_attached(container.clone(), stdin, false, Some(&log)).await
        } else {
            start_detached(ctx, &container, stdin).await.map(|_| {
                println!("{id}");
                0
            })
        }
        .map_err(network::hook_error);
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

/// Run the task with our stdio connected and return its exit status; the task is deleted afterwards
/// (its exit is recorded on the container, or the container goes too with --rm). If the user detaches
/// (Ctrl-P Ctrl-Q on a terminal), the container keeps running and lcd returns 0. The output is
/// also appended to `log`, if given.
pub async fn run_attached(
    container: Container,
    stdin: bool,
    remove: bool,
    log: Option<&std::path::Path>,
) -> Result<i32> {
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
    let status = match session::attach(&task, io, terminal, &tty::DEFAULT_DETACH_KEYS, log).await? {
        session::Outcome::Exited(status) => status,
        session::Outcome::Detached => return Ok(0),
    };
    if remove {
        task.delete().await?;
    } else {
        state::reap_if_present(&container, &task, Some(status)).await?;
    }
    Ok(i32::try_from(status.code).unwrap_or(255))
}
