//! `lcd commit [-m MSG] [-a AUTHOR] [-c CHANGE]... [-p/--pause=BOOL] CONTAINER [REPO[:TAG]]`:
//! docker's commit. The container's changes against its image become one new layer on that image
//! (containerd's Diff service, whiteouts for deleted files), its defaults (the image's, with what
//! `run` overrode, its labels and stop signal, see [`crate::run_config`]) and the `-c` Dockerfile
//! instructions the new image's config; prints the new image's ID. A running container is paused
//! while its changes are read (`--pause=false` leaves it running), under its lock so that nothing
//! else acts on it meanwhile. Bad `-c` instructions and names are refused before anything is made.

use anyhow::{bail, Result};
use libcontainerd::TaskStatus;
use libcontainerd_images::change;
use libcontainerd_images::commit::{tag_name, Commit, CommitOptions};

use crate::cli::CommitArgs;
use crate::context::Ctx;
use crate::run_config;
use crate::state::{self, LABEL_ROOTFS};

/// `lcd commit`.
pub async fn commit(ctx: &Ctx, args: CommitArgs) -> Result<i32> {
    let changes = change::parse_all(&args.change)?;
    if let Some(reference) = &args.reference {
        tag_name(reference)?;
    }
    let client = ctx.client().await?;
    let (lock, container, task) =
        state::locked_load_with_task(ctx, &client, &args.container).await?;
    let id = container.id().clone();
    if let Some(dir) = container.labels().get(LABEL_ROOTFS) {
        bail!(
            "lcd commit needs a container made from an image: {id} runs on the directory {dir} in place (`lcd import {dir} NAME` makes an image of that directory)"
        );
    }
    let Some(snapshot) = container.snapshot().cloned() else {
        bail!("container {id} has no snapshot to commit");
    };
    let mut commit = Commit::begin(&client, &snapshot).await?;
    let config = run_config::effective(&commit.base_config(), container.labels(), container.spec());
    // docker's CREATED BY for a commit: the container's command.
    let created_by = config.cmd.clone().unwrap_or_default().join(" ");
    let pause = match &task {
        Some((task, TaskStatus::Running)) if args.pause => Some(task),
        _ => None,
    };
    if let Some(task) = pause {
        if let Err(e) = task.pause().await {
            commit.abort().await;
            return Err(anyhow::Error::new(e).context(format!("pause container {id}")));
        }
    }
    let diffed = commit.diff().await;
    let resumed = match pause {
        Some(task) => task.resume().await,
        None => Ok(()),
    };
    drop(lock);
    if let Err(e) = diffed {
        commit.abort().await;
        return Err(anyhow::Error::new(e).context(format!("commit container {id}")));
    }
    if let Err(e) = resumed {
        commit.abort().await;
        return Err(anyhow::Error::new(e).context(format!("resume container {id}")));
    }
    let options = CommitOptions {
        reference: args.reference,
        author: args.author,
        comment: args.message,
        created_by,
        config,
        changes,
    };
    let committed = commit.finish(&options).await?;
    println!("{}", committed.id);
    Ok(0)
}
