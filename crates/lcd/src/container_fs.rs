//! A container's filesystem as a host directory, for `cp`, `export` and `diff`: a rootfs-directory
//! container's own directory; a running container's root as its init process sees it
//! (`/proc/PID/root`, so that what the container wrote, and its mounts, are there); a stopped
//! image container's snapshot, mounted in a private temp dir for as long as the handle lives.
//! Also what a snapshot costs on disk and the read-only view of its parent that `diff` compares
//! against.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use libcontainerd::raw::protos::services::v1::snapshots::snapshots_client::SnapshotsClient;
use libcontainerd::raw::protos::services::v1::snapshots::{
    MountsRequest, RemoveSnapshotRequest, StatSnapshotRequest, UsageRequest, ViewSnapshotRequest,
};
use libcontainerd::raw::protos::types::Mount;
use libcontainerd::{Client, Container, Snapshot, TaskStatus};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::state::{self, LABEL_ROOTFS};

/// containerd's collector keeps a snapshot with this label (our parent view, while it exists).
const GC_ROOT: &str = "containerd.io/gc.root";

/// A container's root directory on the host, and whatever keeps it there.
#[derive(Debug)]
pub struct ContainerRoot {
    path: PathBuf,
    _mounted: Option<Mounted>,
}

impl ContainerRoot {
    /// Where the container's `/` is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root as the container's processes see it, writable: a running container's through
    /// its init process (its mounts included), else its directory or its snapshot mounted. For
    /// `cp`.
    pub async fn live(client: &Client, container: &Container) -> Result<Self> {
        let pid = match state::task_with_status(container).await? {
            Some((task, TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing)) => {
                Some(task.pid())
            }
            _ => None,
        };
        match pid {
            Some(pid) => Ok(ContainerRoot {
                path: PathBuf::from(format!("/proc/{pid}/root")),
                _mounted: None,
            }),
            None => Self::layer(client, container, true).await,
        }
    }

    /// The container's own filesystem without what is mounted on it (no /proc, no volumes),
    /// running or not: its rootfs directory, or its snapshot mounted (`writable` only when the
    /// container is not running). For `export` and `diff`.
    pub async fn layer(client: &Client, container: &Container, writable: bool) -> Result<Self> {
        if let Some(dir) = container.labels().get(LABEL_ROOTFS) {
            return Ok(ContainerRoot {
                path: PathBuf::from(dir),
                _mounted: None,
            });
        }
        let Some(snapshot) = container.snapshot() else {
            bail!(
                "container {} has neither a rootfs directory nor a snapshot",
                container.id()
            );
        };
        let mounts = snapshot_mounts(client, snapshot).await?;
        let mounted = Mounted::new(&mounts, writable)
            .with_context(|| format!("mount the filesystem of container {}", container.id()))?;
        Ok(ContainerRoot {
            path: mounted.target().to_path_buf(),
            _mounted: Some(mounted),
        })
    }
}

/// The mounts of a snapshot, as its snapshotter gives them.
async fn snapshot_mounts(client: &Client, snapshot: &Snapshot) -> Result<Vec<Mount>> {
    let request = MountsRequest {
        snapshotter: snapshot.snapshotter.clone(),
        key: snapshot.key.clone(),
    };
    let reply = snapshots(client)
        .mounts(libcontainerd::raw::request(client, request))
        .await
        .map_err(|s| {
            libcontainerd::raw::error_from_status(format!("mounts of snapshot {}", snapshot.key), s)
        })?;
    Ok(reply.into_inner().mounts)
}

fn snapshots(client: &Client) -> SnapshotsClient<libcontainerd::raw::Channel> {
    SnapshotsClient::new(libcontainerd::raw::channel(client)).max_decoding_message_size(16 << 20)
}

/// Bytes a snapshot takes of its own (what removing it frees), or None if its snapshotter cannot
/// say.
pub async fn snapshot_usage(client: &Client, snapshot: &Snapshot) -> Option<u64> {
    let request = UsageRequest {
        snapshotter: snapshot.snapshotter.clone(),
        key: snapshot.key.clone(),
    };
    let reply = snapshots(client)
        .usage(libcontainerd::raw::request(client, request))
        .await
        .ok()?;
    u64::try_from(reply.into_inner().size).ok()
}

/// The snapshot a container's snapshot was prepared from (the top layer of its image), if it
/// has one and can be read.
pub async fn snapshot_parent(client: &Client, snapshot: &Snapshot) -> Option<String> {
    let request = StatSnapshotRequest {
        snapshotter: snapshot.snapshotter.clone(),
        key: snapshot.key.clone(),
    };
    let info = snapshots(client)
        .stat(libcontainerd::raw::request(client, request))
        .await
        .ok()?
        .into_inner()
        .info?;
    (!info.parent.is_empty()).then_some(info.parent)
}

/// A read-only view of the snapshot a container's snapshot was prepared from (the image's top
/// layer), mounted for as long as it lives; `close` removes the view.
pub struct ParentView {
    client: Client,
    snapshotter: String,
    key: String,
    mounted: Option<Mounted>,
}

impl ParentView {
    /// Mount the parent of `snapshot`; None when it has no parent (an image of no layers).
    pub async fn open(client: &Client, snapshot: &Snapshot) -> Result<Option<ParentView>> {
        let stat = StatSnapshotRequest {
            snapshotter: snapshot.snapshotter.clone(),
            key: snapshot.key.clone(),
        };
        let info = snapshots(client)
            .stat(libcontainerd::raw::request(client, stat))
            .await
            .map_err(|s| {
                libcontainerd::raw::error_from_status(format!("stat snapshot {}", snapshot.key), s)
            })?
            .into_inner()
            .info
            .context("containerd sent no snapshot info")?;
        if info.parent.is_empty() {
            return Ok(None);
        }
        let key = format!("lcd-diff-{}-{}", snapshot.key, state::generate_id()?);
        let request = ViewSnapshotRequest {
            snapshotter: snapshot.snapshotter.clone(),
            key: key.clone(),
            parent: info.parent,
            labels: HashMap::from([(GC_ROOT.to_string(), "1".to_string())]),
        };
        let mounts = snapshots(client)
            .view(libcontainerd::raw::request(client, request))
            .await
            .map_err(|s| libcontainerd::raw::error_from_status("view the image's snapshot", s))?
            .into_inner()
            .mounts;
        let mut view = ParentView {
            client: client.clone(),
            snapshotter: snapshot.snapshotter.clone(),
            key,
            mounted: None,
        };
        match Mounted::new(&mounts, false) {
            Ok(mounted) => {
                view.mounted = Some(mounted);
                Ok(Some(view))
            }
            Err(e) => {
                view.close().await;
                Err(e.context("mount the image's snapshot"))
            }
        }
    }

    /// Where the view is mounted.
    pub fn path(&self) -> &Path {
        self.mounted
            .as_ref()
            .map_or(Path::new("/nonexistent"), Mounted::target)
    }

    /// Unmount and remove the view.
    pub async fn close(mut self) {
        drop(self.mounted.take());
        let request = RemoveSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: self.key.clone(),
        };
        if let Err(e) = snapshots(&self.client)
            .remove(libcontainerd::raw::request(&self.client, request))
            .await
        {
            tracing::warn!(key = %self.key, error = %e, "removing a snapshot view");
        }
    }
}

/// An overlay mount's options for a read-only view: the upper dir becomes the top lower dir and
/// no work dir is used, so that the view never touches the directories a running container's own
/// mount writes to. Other mounts' options are kept.
fn read_only_overlay(fstype: &str, options: &[String]) -> Vec<String> {
    let upper = options.iter().find_map(|o| o.strip_prefix("upperdir="));
    let (Some(upper), "overlay") = (upper, fstype) else {
        return options.to_vec();
    };
    options
        .iter()
        .filter(|o| !o.starts_with("upperdir=") && !o.starts_with("workdir="))
        .map(|o| match o.strip_prefix("lowerdir=") {
            Some(lower) => format!("lowerdir={upper}:{lower}"),
            None => o.clone(),
        })
        .chain(std::iter::once("ro".to_string()))
        .collect()
}

/// A snapshot mounted in a temp dir of ours, unmounted (lazily, so a busy mount never outlives
/// us) and the dir removed on drop.
#[derive(Debug)]
struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    fn new(mounts: &[Mount], writable: bool) -> Result<Mounted> {
        let [m] = mounts else {
            bail!(
                "expected one mount for a snapshot, the snapshotter gave {}",
                mounts.len()
            );
        };
        let dir = tempfile::Builder::new()
            .prefix("lcd-rootfs-")
            .tempdir()
            .context("make a mount point")?;
        let target = dir.path().to_path_buf();
        let target = target.as_path();
        let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        if !writable {
            flags |= MsFlags::MS_RDONLY;
        }
        let options = if writable {
            m.options.clone()
        } else {
            read_only_overlay(&m.r#type, &m.options)
        };
        let mut data = Vec::new();
        for option in &options {
            match option.as_str() {
                "ro" => flags |= MsFlags::MS_RDONLY,
                "rw" => {}
                "bind" => flags |= MsFlags::MS_BIND,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                other => data.push(other),
            }
        }
        let fstype = (m.r#type != "bind").then_some(m.r#type.as_str());
        if fstype.is_none() {
            flags |= MsFlags::MS_BIND;
        }
        let data = data.join(",");
        let data = (!data.is_empty() && fstype.is_some()).then_some(data.as_str());
        mount(Some(m.source.as_str()), target, fstype, flags, data).with_context(|| {
            format!("mount {} ({}) at {}", m.source, m.r#type, target.display())
        })?;
        let mounted = Mounted { dir };
        if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
            // A bind mount ignores MS_RDONLY until remounted.
            let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
            mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
                .context("remount read-only")?;
        }
        Ok(mounted)
    }

    fn target(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = umount2(self.dir.path(), MntFlags::MNT_DETACH) {
            tracing::warn!(target = %self.dir.path().display(), error = %e, "unmounting a container's snapshot");
        }
    }
}
