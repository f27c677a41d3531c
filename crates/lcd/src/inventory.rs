//! What lcd holds and what it costs on disk, for `info`, `system df` and the prune commands: every
//! container with its state, the size of its own writes (its snapshot, less the image) and of its
//! log; every image with its size and the containers made from it; log files left by containers
//! that are gone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use anyhow::Result;
use libcontainerd::{Client, ContainerInfo, TaskInfo};
use libcontainerd_images::Platform;

use crate::container_fs::{snapshot_parent, snapshot_usage};
use crate::context::Ctx;
use crate::state::State;

/// A container and what it takes.
#[derive(Debug)]
pub struct ContainerUsage {
    pub info: ContainerInfo,
    pub state: State,
    /// Bytes of its snapshot of its own (0 for a rootfs directory: the directory is the user's).
    pub size: u64,
    /// Bytes of its log file.
    pub log_size: u64,
}

/// An image (one id, however many names) and what it takes.
#[derive(Debug)]
pub struct ImageUsage {
    /// Its names, full form.
    pub names: Vec<String>,
    /// docker's image id.
    pub id: String,
    pub size: u64,
    /// How many containers were made from one of its names.
    pub containers: usize,
    /// Whether it has no name but its ID (docker's dangling image).
    pub dangling: bool,
    /// Its layers (digest and size), which other images may share.
    pub layers: Vec<(String, u64)>,
}

/// The namespace's containers with their states (no sizes: cheap).
pub async fn containers(client: &Client) -> Result<Vec<(ContainerInfo, State)>> {
    let (containers, tasks) = tokio::try_join!(client.list_containers(), client.list_tasks())?;
    let tasks: HashMap<String, TaskInfo> = tasks
        .into_iter()
        .map(|t| (t.container_id.clone(), t))
        .collect();
    Ok(containers
        .into_iter()
        .map(|info| {
            let state = State::of(&info.labels, tasks.get(info.id.as_str()));
            (info, state)
        })
        .collect())
}

/// Every container with its sizes.
pub async fn container_usage(ctx: &Ctx, client: &Client) -> Result<Vec<ContainerUsage>> {
    let mut out = Vec::new();
    for (info, state) in containers(client).await? {
        let size = match &info.snapshot {
            Some(snapshot) => snapshot_usage(client, snapshot).await.unwrap_or(0),
            None => 0,
        };
        let log_size = file_size(&ctx.log_path(&info.id));
        out.push(ContainerUsage {
            info,
            state,
            size,
            log_size,
        });
    }
    Ok(out)
}

/// Every image, grouped by id, with the containers using each.
pub async fn image_usage(client: &Client, containers: &[ContainerInfo]) -> Result<Vec<ImageUsage>> {
    let summaries = libcontainerd_images::store::summaries(client, &Platform::host()).await?;
    let mut by_id: BTreeMap<String, ImageUsage> = BTreeMap::new();
    for summary in summaries {
        let id = summary.id.clone().unwrap_or_else(|| summary.digest.clone());
        let users = containers
            .iter()
            .filter(|c| {
                c.snapshot
                    .as_ref()
                    .and_then(|s| s.image.as_deref())
                    .is_some_and(|image| image == summary.name)
            })
            .count();
        let entry = by_id.entry(id.clone()).or_insert_with(|| ImageUsage {
            names: Vec::new(),
            id,
            size: summary.size.unwrap_or(0),
            containers: 0,
            dangling: true,
            layers: summary.layers.clone(),
        });
        entry.dangling &= libcontainerd_images::store::is_id_name(&summary.name);
        entry.names.push(summary.name);
        entry.containers += users;
    }
    Ok(by_id.into_values().collect())
}

/// The chain ID of an image's top layer (the parent of its containers' snapshots), if it can be
/// read.
pub async fn top_layer(client: &Client, image: &ImageUsage) -> Option<String> {
    top_layer_of(client, image.names.first()?).await
}

async fn top_layer_of(client: &Client, name: &str) -> Option<String> {
    let details = libcontainerd_images::store::inspect(client, name, &Platform::host())
        .await
        .ok()?;
    libcontainerd_images::digest::chain_ids(&details.config.diff_ids).pop()
}

/// The top layers that containers run on whose image's name has since moved to another image
/// (a commit or a load took it) or is gone: their images no longer count them by name, yet
/// must stay.
pub async fn layers_of_renamed_images(
    client: &Client,
    containers: &[ContainerInfo],
) -> HashSet<String> {
    let mut layers = HashSet::new();
    for snapshot in containers.iter().filter_map(|c| c.snapshot.as_ref()) {
        let Some(parent) = snapshot_parent(client, snapshot).await else {
            continue;
        };
        let named = match &snapshot.image {
            Some(name) => top_layer_of(client, name).await,
            None => None,
        };
        if named.as_ref() != Some(&parent) {
            layers.insert(parent);
        }
    }
    layers
}

/// What removing `gone` frees while `kept` stay: each image's own blobs (manifest, config), and
/// the layers none of `kept` shares, each counted once.
pub fn freed_by(gone: &[&ImageUsage], kept: &[&ImageUsage]) -> u64 {
    let shared: HashSet<&str> = kept
        .iter()
        .flat_map(|i| i.layers.iter().map(|(d, _)| d.as_str()))
        .collect();
    let mut counted = HashSet::new();
    let mut freed = 0;
    for image in gone {
        let layers: u64 = image.layers.iter().map(|(_, size)| size).sum();
        freed += image.size.saturating_sub(layers);
        for (digest, size) in &image.layers {
            if !shared.contains(digest.as_str()) && counted.insert(digest.as_str()) {
                freed += size;
            }
        }
    }
    freed
}

/// Log files of containers that no longer exist (left by a crash, or by an earlier lcd).
pub fn orphan_logs(ctx: &Ctx, containers: &[ContainerInfo]) -> Result<Vec<PathBuf>> {
    // The directory every container's log is in: that of any id.
    let any = ctx.log_path(&libcontainerd::Id::new("x")?);
    let Some(Ok(entries)) = any.parent().map(std::fs::read_dir) else {
        return Ok(Vec::new());
    };
    let live: std::collections::HashSet<PathBuf> =
        containers.iter().map(|c| ctx.log_path(&c.id)).collect();
    Ok(entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log") && !live.contains(p))
        .collect())
}

/// A file's size, 0 if it is missing.
pub fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, own: u64, layers: &[(&str, u64)]) -> ImageUsage {
        ImageUsage {
            names: vec![],
            id: id.to_string(),
            size: own + layers.iter().map(|(_, s)| s).sum::<u64>(),
            containers: 0,
            dangling: true,
            layers: layers.iter().map(|(d, s)| (d.to_string(), *s)).collect(),
        }
    }

    #[test]
    fn shared_layers_are_freed_once_and_only_when_nothing_kept_has_them() {
        let base = image("a", 10, &[("base", 1000)]);
        let child = image("b", 20, &[("base", 1000), ("top", 100)]);
        let other = image("c", 30, &[("base", 1000), ("own", 5)]);
        // Both go: their own blobs, the shared base once, the top.
        assert_eq!(freed_by(&[&base, &child], &[]), 10 + 20 + 1000 + 100);
        // Something kept still has the base.
        assert_eq!(freed_by(&[&child], &[&other]), 20 + 100);
    }
}
