//! `lcd checkpoint create`: CRIU-checkpoint a running container into a directory, for
//! `lcd start --checkpoint DIR`.

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use libcontainerd::Task;

use crate::cli::{CheckpointAction, CheckpointArgs};
use crate::context::Ctx;
use crate::cri;
use crate::state;

/// How long `checkpoint create` waits for the checkpointed container to stop.
const CHECKPOINT_EXIT_WAIT: Duration = Duration::from_secs(10);

/// `lcd checkpoint create [--leave-running] ID DIR`: CRIU-checkpoint a running container into DIR
/// (new or empty). Without `--leave-running` the container stops, ready for
/// `lcd start --checkpoint DIR ID`.
pub async fn checkpoint(ctx: &Ctx, args: CheckpointArgs) -> Result<i32> {
    let CheckpointAction::Create {
        leave_running,
        id,
        dir,
    } = args.action;
    // Refuse `..` as the user wrote it, before it is made absolute.
    libcontainerd::checkpoint::check_dir(&dir)?;
    let dir = std::path::absolute(&dir)
        .with_context(|| format!("resolve checkpoint directory {}", dir.display()))?;
    let client = ctx.client().await?;
    let task = state::running_task(&client, &id).await?;
    cri::refuse_change(task.container(), "checkpoint", ctx.force_kubernetes)?;
    task.create_checkpoint(&dir, !leave_running).await?;
    if !leave_running {
        reap_checkpointed(&task).await?;
    }
    println!("{}", dir.display());
    Ok(0)
}

/// After a checkpoint with exit, record the container as exited so that `start` finds it stopped.
async fn reap_checkpointed(task: &Task) -> Result<()> {
    tokio::time::timeout(CHECKPOINT_EXIT_WAIT, task.wait())
        .await
        .map_err(|_| {
            anyhow!(
                "container {} did not stop after its checkpoint; stop it with `lcd stop {}`",
                task.id(),
                task.id()
            )
        })??;
    state::reap(task.container(), task).await?;
    Ok(())
}
