//! `lcd checkpoint create|ls|rm`, docker's checkpoint commands: CRIU checkpoints kept by name, in
//! the container's own directory under the data root or in a `--checkpoint-dir`, for
//! `lcd start --checkpoint NAME`. What CRIU cannot carry over is refused up front with a reason:
//! a terminal (lcd gives the restored process no terminal to take over) and a paused or stopped
//! container; established TCP connections fail in CRIU itself, whose error says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use libcontainerd::{Container, Id, Task, TaskStatus};

use crate::cli::{CheckpointAction, CheckpointArgs};
use crate::context::Ctx;
use crate::cri;
use crate::session::has_terminal;
use crate::state;

/// How long `checkpoint create` waits for the checkpointed container to stop.
const CHECKPOINT_EXIT_WAIT: Duration = Duration::from_secs(10);

/// `lcd checkpoint ...`.
pub async fn checkpoint(ctx: &Ctx, args: CheckpointArgs) -> Result<i32> {
    match args.action {
        CheckpointAction::Create {
            leave_running,
            checkpoint_dir,
            container,
            name,
        } => {
            create(
                ctx,
                &container,
                &name,
                checkpoint_dir.as_deref(),
                leave_running,
            )
            .await
        }
        CheckpointAction::Ls {
            checkpoint_dir,
            container,
        } => list(ctx, &container, checkpoint_dir.as_deref()).await,
        CheckpointAction::Rm {
            checkpoint_dir,
            container,
            name,
        } => remove(ctx, &container, &name, checkpoint_dir.as_deref()).await,
    }
}

/// `lcd checkpoint create [--leave-running] [--checkpoint-dir DIR] CONTAINER NAME`: prints NAME.
async fn create(
    ctx: &Ctx,
    id: &str,
    name: &str,
    checkpoint_dir: Option<&Path>,
    leave_running: bool,
) -> Result<i32> {
    check_name(name)?;
    let client = ctx.client().await?;
    let (container, task) = state::load_with_task(&client, id).await?;
    let id = container.id();
    cri::refuse_change(&container, "checkpoint", ctx.force_kubernetes)?;
    let task = match task {
        Some((task, TaskStatus::Running)) => task,
        Some((_, TaskStatus::Paused | TaskStatus::Pausing)) => {
            bail!("cannot checkpoint container {id}: it is paused; unpause it first")
        }
        _ => bail!("cannot checkpoint container {id}: it is not running"),
    };
    refuse_terminal(&container, "checkpoint")?;
    let base = checkpoints_of(ctx, id, checkpoint_dir)?;
    let dir = base.join(name);
    if dir.exists() {
        bail!("checkpoint with name {name} already exists for container {id}");
    }
    working_criu(ctx).await?;
    std::fs::create_dir_all(&base)
        .with_context(|| format!("create checkpoint directory {}", base.display()))?;
    if !leave_running {
        // A checkpoint that stops the container is a stop by the user: lcd's agent must not
        // restart it by its --restart policy (`start --checkpoint` clears the mark).
        crate::launch::mark_stopped_by_user(&container).await?;
    }
    task.create_checkpoint(&dir, !leave_running).await?;
    if !leave_running {
        reap_checkpointed(ctx, &container, &task).await?;
    }
    println!("{name}");
    Ok(0)
}

/// `lcd checkpoint ls [--checkpoint-dir DIR] CONTAINER`: docker's table of names.
async fn list(ctx: &Ctx, id: &str, checkpoint_dir: Option<&Path>) -> Result<i32> {
    let client = ctx.client().await?;
    let (container, _) = state::load_with_task(&client, id).await?;
    let base = checkpoints_of(ctx, container.id(), checkpoint_dir)?;
    let mut names = Vec::new();
    match std::fs::read_dir(&base) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.with_context(|| format!("list {}", base.display()))?;
                // Only directories holding CRIU images are checkpoints.
                if entry
                    .path()
                    .join(libcontainerd::checkpoint::CRIU_INVENTORY)
                    .is_file()
                {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("list {}", base.display())),
    }
    names.sort();
    println!("CHECKPOINT NAME");
    for name in names {
        println!("{name}");
    }
    Ok(0)
}

/// `lcd checkpoint rm [--checkpoint-dir DIR] CONTAINER NAME`.
async fn remove(ctx: &Ctx, id: &str, name: &str, checkpoint_dir: Option<&Path>) -> Result<i32> {
    check_name(name)?;
    let client = ctx.client().await?;
    let (container, _) = state::load_with_task(&client, id).await?;
    let dir = existing_checkpoint(ctx, container.id(), name, checkpoint_dir)?;
    std::fs::remove_dir_all(&dir)
        .with_context(|| format!("remove checkpoint {}", dir.display()))?;
    Ok(0)
}

/// The directory of checkpoint `name` of container `id`, which must exist: for `checkpoint rm` and
/// `start --checkpoint`.
pub fn existing_checkpoint(
    ctx: &Ctx,
    id: &Id,
    name: &str,
    checkpoint_dir: Option<&Path>,
) -> Result<PathBuf> {
    check_name(name)?;
    let dir = checkpoints_of(ctx, id, checkpoint_dir)?.join(name);
    if !dir.is_dir() {
        bail!("checkpoint {name} does not exist for container {id}");
    }
    Ok(dir)
}

/// Where container `id`'s checkpoints are: `--checkpoint-dir` (no `..`, made absolute, since the
/// shim resolves it) or the container's own directory.
fn checkpoints_of(ctx: &Ctx, id: &Id, checkpoint_dir: Option<&Path>) -> Result<PathBuf> {
    match checkpoint_dir {
        Some(dir) => {
            libcontainerd::checkpoint::check_dir(dir)?;
            std::path::absolute(dir)
                .with_context(|| format!("resolve checkpoint directory {}", dir.display()))
        }
        None => Ok(ctx.checkpoints_dir(id)),
    }
}

/// docker's rule for checkpoint names: a letter or digit, then letters, digits, `_`, `.`, `-`.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        bail!("invalid checkpoint name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(())
}

/// A container with a terminal cannot go through CRIU here: its terminal belongs to the shim and
/// would have to be handed to the restored process, which lcd does not do.
pub fn refuse_terminal(container: &Container, what: &str) -> Result<()> {
    if has_terminal(container) {
        bail!(
            "cannot {what} container {}: it has a terminal (-t), which criu cannot carry over; run it without -t to checkpoint it",
            container.id()
        );
    }
    Ok(())
}

/// A criu that passes `criu check`, or an error that says which criu failed and how to get one.
/// `criu check` takes 100+ ms (criu cannot cache what it learns about the kernel unless /run is a
/// tmpfs), so a pass is remembered in the exec root for that binary (path, size, mtime) and kernel.
pub async fn working_criu(ctx: &Ctx) -> Result<PathBuf> {
    let stamp = ctx.exec_root.join("criu-checked");
    tokio::task::spawn_blocking(move || {
        let key = libcontainerd::checkpoint::find_criu().and_then(|criu| check_key(&criu));
        if let Some((criu, key)) = &key {
            if std::fs::read_to_string(&stamp).is_ok_and(|found| found == *key) {
                return Ok(criu.clone());
            }
        }
        let criu = libcontainerd::checkpoint::check_criu(None)?;
        if let Some((checked, key)) = key.filter(|(path, _)| *path == criu) {
            // Only an optimisation: a stamp that cannot be written means checking again next time.
            let _ = std::fs::write(&stamp, key);
            return Ok(checked);
        }
        Ok(criu)
    })
    .await
    .map_err(|e| anyhow!("run criu check: {e}"))?
    .map_err(|e: libcontainerd::Error| {
        anyhow!(
            "{e} (`bash .ci/install` in lcd's source tree builds criu 4.1.1 into /usr/local/sbin)"
        )
    })
}

/// What identifies one criu check: the binary (path, size, mtime) and the running kernel.
fn check_key(criu: &Path) -> Option<(PathBuf, String)> {
    let meta = criu.metadata().ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some((
        criu.to_path_buf(),
        format!(
            "{} {} {mtime} {}\n",
            criu.display(),
            meta.len(),
            kernel.trim()
        ),
    ))
}

/// After a checkpoint with exit, record the container as exited so that `start` finds it stopped
/// (unless lcd's agent, for a detached container, saw the exit first and recorded it).
async fn reap_checkpointed(ctx: &Ctx, container: &Container, task: &Task) -> Result<()> {
    let waited = tokio::time::timeout(CHECKPOINT_EXIT_WAIT, task.wait())
        .await
        .map_err(|_| {
            anyhow!(
                "container {} did not stop after its checkpoint; stop it with `lcd stop {}`",
                task.id(),
                task.id()
            )
        })?;
    match waited {
        Ok(status) => {
            state::reap_locked(ctx, container, task, Some(status)).await?;
        }
        Err(e) if e.kind() == libcontainerd::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_follow_docker() {
        for good in ["cp1", "a", "A.b-c_d", "1x"] {
            check_name(good).unwrap();
        }
        for bad in ["", ".x", "-x", "_x", "a/b", "..", "a b", "é"] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains("invalid checkpoint name"), "{bad}: {err}");
        }
    }
}
