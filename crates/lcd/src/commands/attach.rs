//! `lcd attach`: re-open a running container's stdio (it was started detached with -i or -t) until
//! it exits or the user types the detach keys.

use anyhow::{bail, Result};
use libcontainerd::TaskStatus;

use crate::cli::AttachArgs;
use crate::context::Ctx;
use crate::session::{self, has_terminal};
use crate::{state, tty};

/// `lcd attach [--detach-keys KEYS] ID`.
pub async fn attach(ctx: &Ctx, args: AttachArgs) -> Result<i32> {
    let id = args.id.as_str();
    let keys = tty::parse_detach_keys(&args.detach_keys).map_err(anyhow::Error::msg)?;
    let client = ctx.client().await?;
    let (container, task) = state::load_with_task(&client, id).await?;
    let task = match task {
        Some((task, status)) if status != TaskStatus::Stopped => task,
        _ => bail!("container {id} is not running"),
    };
    let mut handles = None;
    container
        .attach_task(|io| {
            handles = Some(io);
            Ok(())
        })
        .await?;
    let io = handles.unwrap_or_default();
    if io.stdin.is_none() && io.stdout.is_none() {
        bail!("container {id} was started without -i or -t: its output is in `lcd logs {id}`");
    }
    let log = ctx.log_path(container.id());
    match session::attach(&task, io, has_terminal(&container), &keys, Some(&log)).await? {
        session::Outcome::Detached => Ok(0),
        session::Outcome::Exited(status) => {
            state::reap_locked(ctx, &container, &task, Some(status)).await?;
            Ok(i32::try_from(status.code).unwrap_or(255))
        }
    }
}
