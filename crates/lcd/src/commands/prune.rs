//! `lcd container prune [-f]`, `lcd image prune [-f] [-a]` and `lcd system prune [-f] [-a]`, as
//! docker's: after a `[y/N]` question (unless `-f`), `container prune` removes every stopped
//! container (exited or never started) with its snapshot and log; `image prune` the dangling
//! images (known by their ID alone) or, with `-a`, every image no container uses; `system prune`
//! both, and log files whose container is gone. Prints what went and the space reclaimed.

use std::io::{BufRead, Write};

use anyhow::{Context as _, Result};
use std::collections::HashSet;

use libcontainerd::{Client, ContainerInfo, TaskStatus};
use libcontainerd_images::{reference, store};

use super::pull::human;
use crate::cli::{ImagePruneArgs, PruneArgs, SystemPruneArgs};
use crate::container_lock::ContainerLock;
use crate::context::Ctx;
use crate::exit;
use crate::inventory::{self, file_size};

/// `lcd container prune`.
pub async fn container_prune(ctx: &Ctx, args: PruneArgs) -> Result<i32> {
    if !args.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let client = ctx.client().await?;
    let (removed, reclaimed) = prune_containers(ctx, &client).await?;
    let mut out = String::new();
    section(&mut out, "Deleted Containers:", &removed);
    out.push_str(&format!("Total reclaimed space: {}\n", human(reclaimed)));
    print!("{out}");
    Ok(0)
}

/// `lcd system prune`.
pub async fn system_prune(ctx: &Ctx, args: SystemPruneArgs) -> Result<i32> {
    let images = if args.all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    };
    let warning = format!(
        "WARNING! This will remove:\n  - all stopped containers\n  - all log files of containers that are gone\n{images}\n"
    );
    if !args.force && !confirm(&warning)? {
        return Ok(0);
    }
    let client = ctx.client().await?;
    let (containers, mut reclaimed) = prune_containers(ctx, &client).await?;
    let remaining: Vec<_> = inventory::containers(&client)
        .await?
        .into_iter()
        .map(|(info, _)| info)
        .collect();
    for log in inventory::orphan_logs(ctx, &remaining)? {
        reclaimed += file_size(&log);
        if let Err(e) = std::fs::remove_file(&log) {
            tracing::warn!(log = %log.display(), error = %e, "removing a log file");
        }
    }
    let (images, freed) = prune_images(&client, &remaining, args.all).await?;
    reclaimed += freed;
    let mut out = String::new();
    section(&mut out, "Deleted Containers:", &containers);
    section(&mut out, "Deleted Images:", &images);
    out.push_str(&format!("Total reclaimed space: {}\n", human(reclaimed)));
    print!("{out}");
    Ok(0)
}

/// `lcd image prune`.
pub async fn image_prune(ctx: &Ctx, args: ImagePruneArgs) -> Result<i32> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !confirm(warning)? {
        return Ok(0);
    }
    let client = ctx.client().await?;
    let containers: Vec<_> = inventory::containers(&client)
        .await?
        .into_iter()
        .map(|(info, _)| info)
        .collect();
    let (images, reclaimed) = prune_images(&client, &containers, args.all).await?;
    let mut out = String::new();
    section(&mut out, "Deleted Images:", &images);
    out.push_str(&format!("Total reclaimed space: {}\n", human(reclaimed)));
    print!("{out}");
    Ok(0)
}

/// Remove the dangling images (known only by their ID, e.g. a commit without a name or an image
/// whose name a commit took), or with `all` every image, that no container of `containers` uses:
/// made from one of its names, or running on its layers. Returns docker's `untagged:` and
/// `deleted:` lines and the bytes freed.
async fn prune_images(
    client: &Client,
    containers: &[ContainerInfo],
    all: bool,
) -> Result<(Vec<String>, u64)> {
    let mut lines = Vec::new();
    let images = inventory::image_usage(client, containers).await?;
    let mut parents: Option<HashSet<String>> = None;
    let (mut gone, mut kept) = (Vec::new(), Vec::new());
    for image in &images {
        if image.containers > 0 || !(all || image.dangling) {
            kept.push(image);
            continue;
        }
        // A container made from a name that has since moved to another image may run on this one.
        let parents = match &mut parents {
            Some(parents) => parents,
            None => parents.insert(inventory::layers_of_renamed_images(client, containers).await),
        };
        if inventory::top_layer(client, image)
            .await
            .is_some_and(|top| parents.contains(&top))
        {
            kept.push(image);
            continue;
        }
        let mut removed = true;
        for name in &image.names {
            match libcontainerd_images::store::remove(client, name, true).await {
                Ok(name) if store::is_id_name(&name) => {}
                Ok(name) => lines.push(format!("untagged: {}", reference::familiar(&name))),
                Err(e) => {
                    removed = false;
                    exit::print(&anyhow::Error::new(e).context(format!("remove image {name}")))
                }
            }
        }
        if removed {
            lines.push(format!("deleted: {}", image.id));
            gone.push(image);
        } else {
            kept.push(image);
        }
    }
    Ok((lines, inventory::freed_by(&gone, &kept)))
}

/// Remove every container that is not running or paused; returns their ids and the bytes freed.
/// A container that starts or goes meanwhile is left alone.
async fn prune_containers(ctx: &Ctx, client: &Client) -> Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for usage in inventory::container_usage(ctx, client).await? {
        if usage.state.is_up() {
            continue;
        }
        let id = usage.info.id.clone();
        // Under its lock: a racing `start` or the agent's reaping finishes first.
        let lock = match ContainerLock::acquire(ctx, id.as_str()).await {
            Ok(lock) => lock,
            Err(e) => {
                exit::print(&e);
                continue;
            }
        };
        let gone = async {
            let container = client.load_container(&id).await?;
            if let Ok(task) = container.task().await {
                // Only a task that has stopped; one that started meanwhile stays.
                if task.status().await? != TaskStatus::Stopped {
                    return Ok::<bool, anyhow::Error>(false);
                }
                task.delete().await?;
            }
            container.delete().await?;
            Ok(true)
        };
        match gone.await {
            Ok(true) => {
                if let Err(e) = crate::network::forget(ctx, &id) {
                    tracing::warn!(container = %id, error = %e, "releasing a container's network");
                }
                let log = ctx.log_path(&id);
                if let Err(e) = std::fs::remove_file(&log) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(log = %log.display(), error = %e, "removing a log file");
                    }
                }
                lock.remove();
                reclaimed += usage.size + usage.log_size;
                removed.push(id.to_string());
            }
            Ok(false) => {}
            Err(e) => exit::print(&e.context(format!("remove container {id}"))),
        }
    }
    Ok((removed, reclaimed))
}

/// docker's list: a title, one item a line, a blank line; nothing when empty.
fn section(out: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str(title);
    out.push('\n');
    for item in items {
        out.push_str(item);
        out.push('\n');
    }
    out.push('\n');
}

/// docker's question: print the warning and `[y/N]`, read one line; only y or yes goes on.
fn confirm(warning: &str) -> Result<bool> {
    let mut stdout = std::io::stdout().lock();
    write!(
        stdout,
        "{warning}\nAre you sure you want to continue? [y/N] "
    )?;
    stdout.flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("read the answer")?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}
