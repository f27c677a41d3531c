//! `lcd commit [-m MSG] [-a AUTHOR] [-c CHANGE]... [-p/--pause=BOOL] CONTAINER [REPO[:TAG]]`:
//! docker's commit. The container's changes against its image become one new layer on that image
//! (containerd's Diff service, whiteouts for deleted files), its defaults (the image's, with what
//! `run` overrode, its labels and stop signal, see [`crate::run_config`]) and the `-c` Dockerfile
//! instructions the new image's config; prints the new image's ID. A running container is paused
//! while its changes are read (`--pause=false` leaves it running), under its lock so that nothing
//! else acts on it meanwhile. Bad `-c` instructions and names are refused before anything is made.
//!
//! Ctrl-C (SIGINT) cancels the commit: a container it paused is resumed, its lease deleted with a
//! synchronous collection, and lcd exits 130, as docker's CLI.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use libcontainerd::{Client, Id, TaskStatus};
use libcontainerd_images::change::{self, Change};
use libcontainerd_images::commit::{tag_name, Commit, CommitOptions};
use libcontainerd_images::lease;

use crate::cli::CommitArgs;
use crate::context::Ctx;
use crate::run_config;
use crate::state::{self, LABEL_ROOTFS};

/// Exit status after Ctrl-C: 128 + SIGINT, as docker's.
const INTERRUPTED: i32 = 130;
/// How long an interrupted commit waits to resume the container and delete its lease.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// `lcd commit`.
pub async fn commit(ctx: &Ctx, args: CommitArgs) -> Result<i32> {
    let changes = change::parse_all(&args.change)?;
    if let Some(reference) = &args.reference {
        tag_name(reference)?;
    }
    let client = ctx.client().await?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("listen for SIGINT")?;
    // The container this commit paused, until it runs again.
    let paused = Mutex::new(None::<Id>);
    tokio::select! {
        id = commit_container(ctx, &client, args, changes, &paused) => {
            println!("{}", id?);
            Ok(0)
        }
        _ = interrupt.recv() => {
            // The commit's future is dropped here: resume what it paused, delete its lease.
            let cleanup = async {
                let id = paused.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(id) = id {
                    if let Err(e) = resume(&client, &id).await {
                        eprintln!("lcd: commit interrupted: resume container {id}: {e:#}");
                    }
                }
                if let Err(e) = lease::flush(&client).await {
                    eprintln!("lcd: commit interrupted: {e}");
                }
            };
            let _ = tokio::time::timeout(CLEANUP_TIMEOUT, cleanup).await;
            std::process::exit(INTERRUPTED);
        }
    }
}

async fn resume(client: &Client, id: &Id) -> Result<()> {
    let task = state::running_task(client, id.as_str()).await?;
    task.resume().await?;
    Ok(())
}

/// The commit itself; the new image's ID. `paused` holds the container's id while this has it
/// paused, for an interruption to resume it.
async fn commit_container(
    ctx: &Ctx,
    client: &Client,
    args: CommitArgs,
    changes: Vec<Change>,
    paused: &Mutex<Option<Id>>,
) -> Result<String> {
    let (lock, container, task) =
        state::locked_load_with_task(ctx, client, &args.container).await?;
    let id = container.id().clone();
    if let Some(dir) = container.labels().get(LABEL_ROOTFS) {
        bail!(
            "lcd commit needs a container made from an image: {id} runs on the directory {dir} in place (`lcd import {dir} NAME` makes an image of that directory)"
        );
    }
    let Some(snapshot) = container.snapshot().cloned() else {
        bail!("container {id} has no snapshot to commit");
    };
    let mut commit = Commit::begin(client, &snapshot).await?;
    let config = run_config::effective(&commit.base_config(), container.labels(), container.spec());
    // docker's CREATED BY for a commit: the container's command.
    let created_by = config.cmd.clone().unwrap_or_default().join(" ");
    let pause = match &task {
        Some((task, TaskStatus::Running)) if args.pause => Some(task),
        _ => None,
    };
    if let Some(task) = pause {
        *paused.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());
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
    if resumed.is_ok() {
        paused.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
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
    Ok(commit.finish(&options).await?.id)
}
