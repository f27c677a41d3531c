//! Starting a container's task with nobody attached: what `lcd run -d`, `lcd start` and the agent's
//! restarts share. Output goes to the container's log file through `lcd-logger`, or stays on FIFOs
//! for a later `lcd attach` when the container takes input or has a terminal. The container is
//! marked detached first (its exit is the agent's to record) and loses any "stopped by the user"
//! mark (a started container is no longer stopped).

use std::collections::HashMap;

use anyhow::Result;
use libcontainerd::{Container, Output, StdioConfig, Task};

use crate::context::Ctx;
use crate::restart::{LABEL_DETACHED, LABEL_STOPPED_BY_USER};

/// Start the container's task detached; see the module's summary.
pub async fn start_detached(ctx: &Ctx, container: &Container, stdin: bool) -> Result<Task> {
    mark_detached(container, true).await?;
    if stdin {
        // A container that takes input is attached to later (`lcd attach`): its stdio stays on
        // FIFOs. Output waits in them (64 KiB, then the process blocks) until someone attaches.
        // With a terminal but no stdin (`-d -t`) there is nothing to type: its output goes to
        // the log, as docker's does, and `lcd logs` shows it.
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
        crate::fault::crash_point("start-after-task-create");
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
    Ok(container
        .start(None, &config, |_| {
            crate::fault::crash_point("start-after-task-create");
            Ok(())
        })
        .await?)
}

/// [`start_detached`] right after the container's previous task was deleted: containerd removes a
/// deleted task's shim directory once it sees the shim go, a moment after the delete returned, and
/// until then a new shim for the container fails to start ("file exists" from 1.6, "getwd: no
/// such file or directory" from 1.7). Such a start is tried again, for up to two seconds.
pub async fn start_detached_after_delete(
    ctx: &Ctx,
    container: &Container,
    stdin: bool,
) -> Result<Task> {
    let mut tries = 0;
    loop {
        match start_detached(ctx, container, stdin).await {
            Err(e) if tries < 200 && format!("{e:#}").contains("failed to start shim") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            started => return started,
        }
    }
}

/// Mark the container as started detached (or, with `detached` false, as attached: its own
/// session records its exit), clearing the "stopped by the user" mark; no write when the labels
/// already say so.
pub async fn mark_detached(container: &Container, detached: bool) -> Result<()> {
    let labels = container.labels();
    let mut changes = HashMap::new();
    if labels.contains_key(LABEL_DETACHED) != detached {
        let value = if detached { "1" } else { "" };
        changes.insert(LABEL_DETACHED.to_string(), value.to_string());
    }
    if labels.contains_key(LABEL_STOPPED_BY_USER) {
        changes.insert(LABEL_STOPPED_BY_USER.to_string(), String::new());
    }
    if !changes.is_empty() {
        container.clone().set_labels(&changes).await?;
    }
    Ok(())
}

/// Mark a container the user is stopping (`stop`, `kill`, `rm -f`) so that the agent does not
/// restart it; a write only for a container with a restart policy.
pub async fn mark_stopped_by_user(container: &Container) -> Result<()> {
    let labels = container.labels();
    if labels.contains_key(crate::restart::LABEL_RESTART)
        && !labels.contains_key(LABEL_STOPPED_BY_USER)
    {
        let changes = HashMap::from([(LABEL_STOPPED_BY_USER.to_string(), "1".to_string())]);
        container.clone().set_labels(&changes).await?;
    }
    Ok(())
}
