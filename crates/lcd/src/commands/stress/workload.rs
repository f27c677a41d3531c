//! What a worker does once: a whole container lifecycle, or an exec in one long-running container;
//! each phase timed into the [`Tally`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use libcontainerd::spec::SpecBuilder;
use libcontainerd::{Client, Container, Id, Output, Runtime, StdioConfig, Task};

use super::tally::{Tally, CREATE, DELETE, PHASES, REMOVE, START, WAIT};
use crate::context::Ctx;

/// A rootfs to run: the one given, or a busybox one made in a temp dir (removed afterwards).
pub fn rootfs(given: &Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = given {
        return Ok((
            std::fs::canonicalize(dir).with_context(|| format!("rootfs {}", dir.display()))?,
            None,
        ));
    }
    let tmp = tempfile::Builder::new().prefix("lcd-stress").tempdir()?;
    let dir = tmp.path().join("rootfs");
    libcontainerd::rootfs::busybox(&dir, Path::new(libcontainerd::rootfs::DEFAULT_BUSYBOX))?;
    Ok((dir, Some(tmp)))
}

async fn timed<T>(
    tally: &Tally,
    phase: usize,
    f: impl std::future::Future<Output = libcontainerd::Result<T>>,
) -> Result<T> {
    let start = Instant::now();
    let out = f.await.with_context(|| PHASES[phase])?;
    tally.record(phase, start.elapsed());
    Ok(out)
}

/// Create, start, wait for, delete and remove one container running /bin/true.
pub async fn one_lifecycle(
    client: &Client,
    runtime: &Runtime,
    rootfs: &Path,
    name: &str,
    tally: &Tally,
) -> Result<()> {
    let id = Id::new(name)?;
    let spec = SpecBuilder::new(rootfs).args(["/bin/true"]).build()?;
    let container = timed(
        tally,
        CREATE,
        client.new_container(&id, &spec, runtime, &Default::default()),
    )
    .await?;
    let result = run_task(&container, tally).await;
    if result.is_err() {
        // Count the failure, but leave nothing behind for the next iteration.
        if let Ok(task) = container.task().await {
            let _ = task.force_delete().await;
        }
    }
    // Always remove the container; its time counts only when the removal worked.
    let deleted = timed(tally, REMOVE, container.delete()).await;
    result?;
    deleted?;
    Ok(())
}

async fn run_task(container: &Container, tally: &Tally) -> Result<()> {
    let null = StdioConfig {
        output: Output::Null,
        ..Default::default()
    };
    let task = timed(tally, START, container.start(None, &null, |_| Ok(()))).await?;
    let status = timed(tally, WAIT, task.wait()).await?;
    timed(tally, DELETE, task.delete()).await?;
    if status.code != 0 {
        bail!("container {} exited with {}", container.id(), status.code);
    }
    Ok(())
}

/// The long-running container the exec mode's workers exec in.
pub async fn exec_target(
    client: &Client,
    ctx: &Ctx,
    rootfs: &Path,
    run_id: u32,
) -> Result<(Container, Task)> {
    let name = format!("stress-{run_id}-exec");
    let id = Id::new(name.as_str())?;
    let spec = SpecBuilder::new(rootfs)
        .args(["sleep", "2147483647"])
        .build()?;
    let container = client
        .new_container(&id, &spec, &ctx.runtime(), &Default::default())
        .await?;
    let null = StdioConfig {
        output: Output::Null,
        ..Default::default()
    };
    match container.start(None, &null, |_| Ok(())).await {
        Ok(task) => Ok((container, task)),
        Err(e) => {
            let _ = container.delete().await;
            Err(e.into())
        }
    }
}

/// Exec /bin/true once in `task` and wait for it.
pub async fn one_exec(task: &Task, name: &str, tally: &Tally) -> Result<()> {
    let id = Id::new(name)?;
    let process = libcontainerd::exec_process(task.container().spec(), ["/bin/true"]).build()?;
    let null = StdioConfig {
        output: Output::Null,
        ..Default::default()
    };
    let proc = timed(tally, START, task.exec(&id, process, &null, |_| Ok(()))).await?;
    let status = timed(tally, WAIT, proc.wait()).await?;
    timed(tally, DELETE, proc.delete()).await?;
    if status.code != 0 {
        bail!("exec {name} exited with {}", status.code);
    }
    Ok(())
}
