//! A container's root filesystem from an unpacked image: the container's active snapshot
//! (prepared on the image's top chain ID), its removal, and reading files of the image (its
//! /etc/passwd and /etc/group for user names) through a temporary read-only view.

use std::path::Path;
use std::time::Duration;

use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::types::Mount;
use libcontainerd::{Client, Error, ErrorKind, Result};

use crate::digest::chain_ids;
use crate::grpc::Services;
use crate::lease::{unique_name, Lease};
use crate::mount::{resolve_in_root, Mounted};
use crate::platform::Platform;
use crate::resolve::resolve;
use crate::snapshots::{self, remove, stat, try_remove, Kind};
use crate::store::get_record;
use crate::user::{self, User};

const VIEW_LEASE_TTL: Duration = Duration::from_secs(600);

/// The image's top chain ID, checked to be unpacked in `snapshotter`.
async fn top_snapshot(
    services: &Services,
    image: &str,
    snapshotter: &str,
    platform: &Platform,
) -> Result<String> {
    let record = get_record(services, image).await?;
    let resolved = resolve(services, &record.target, platform, image).await?;
    let top = chain_ids(&resolved.config.rootfs.diff_ids)
        .pop()
        .ok_or_else(|| Error::invalid(format!("image {image} has no layers")))?;
    if stat(services, snapshotter, &top).await?.is_none() {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("image {image} is not unpacked in snapshotter {snapshotter}; unpack it first"),
        ));
    }
    Ok(top)
}

/// Prepare container `id`'s writable snapshot (key = `id`) on image `image`, under `lease` (the
/// caller creates the container record, which then protects the snapshot, before releasing it).
/// Returns the mounts for `Tasks.Create`'s rootfs.
pub async fn prepare_snapshot(
    lease: &Lease,
    snapshotter: &str,
    id: &str,
    image: &str,
    platform: &Platform,
) -> Result<Vec<Mount>> {
    let services = lease.services()?;
    let top = top_snapshot(&services, image, snapshotter, platform).await?;
    prepare_on(&services, snapshotter, id, &top).await
}

/// Prepare snapshot `id` on `top` (committed) with `services` (under the caller's lease); returns
/// its mounts.
pub(crate) async fn prepare_on(
    services: &Services,
    snapshotter: &str,
    id: &str,
    top: &str,
) -> Result<Vec<Mount>> {
    snapshots::create(services, snapshotter, Kind::Active, id, top)
        .await
        .map_err(|s| match s.code() {
            tonic::Code::AlreadyExists => Error::new(
                ErrorKind::Conflict,
                format!("prepare snapshot {id} in {snapshotter}: it already exists"),
            )
            .with_source(s),
            _ => libcontainerd::raw::error_from_status(
                format!("prepare snapshot {id} in {snapshotter}"),
                s,
            ),
        })
}

/// The mounts of snapshot `key`.
pub async fn snapshot_mounts(client: &Client, snapshotter: &str, key: &str) -> Result<Vec<Mount>> {
    mounts(&Services::new(client)?, snapshotter, key).await
}

pub(crate) async fn mounts(
    services: &Services,
    snapshotter: &str,
    key: &str,
) -> Result<Vec<Mount>> {
    Ok(services
        .snapshots()
        .mounts(services.request(MountsRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        }))
        .await
        .map_err(|s| {
            libcontainerd::raw::error_from_status(
                format!("get mounts of snapshot {key} in {snapshotter}"),
                s,
            )
        })?
        .into_inner()
        .mounts)
}

/// Remove container `id`'s snapshot; one already gone is fine.
pub async fn remove_snapshot(client: &Client, snapshotter: &str, id: &str) -> Result<()> {
    match try_remove(&Services::new(client)?, snapshotter, id).await {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Read files of an unpacked image (absolute paths inside it; `None` for a missing file) through
/// a read-only view mounted in a temporary directory. Symlinks are resolved inside the image.
pub async fn read_files(
    client: &Client,
    image: &str,
    snapshotter: &str,
    platform: &Platform,
    paths: &[&str],
) -> Result<Vec<Option<Vec<u8>>>> {
    let services = Services::new(client)?;
    let lease = Lease::create_with(&services, "view", VIEW_LEASE_TTL).await?;
    let leased = lease.services()?;
    let key = unique_name("view");
    let result = async {
        let top = top_snapshot(&leased, image, snapshotter, platform).await?;
        let mounts = snapshots::create(&leased, snapshotter, Kind::View, &key, &top)
            .await
            .map_err(|s| {
                libcontainerd::raw::error_from_status(
                    format!("view image {image} in {snapshotter}"),
                    s,
                )
            })?;
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        tokio::task::spawn_blocking(move || read_mounted(&mounts, &paths))
            .await
            .map_err(|e| Error::internal(format!("read files of image {image}: {e}")))?
            .map_err(|e| e.context(format!("read files of image {image}")))
    }
    .await;
    remove(&leased, snapshotter, &key).await;
    match result {
        Ok(files) => {
            lease.release().await?;
            Ok(files)
        }
        Err(e) => {
            lease.discard().await;
            Err(e)
        }
    }
}

fn read_mounted(mounts: &[Mount], paths: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
    let dir = tempfile_dir()?;
    let mounted = Mounted::read_only(mounts, dir.path())?;
    let files = paths
        .iter()
        .map(|p| read_inside(dir.path(), p))
        .collect::<Result<Vec<_>>>();
    drop(mounted);
    files
}

fn read_inside(root: &Path, path: &str) -> Result<Option<Vec<u8>>> {
    let Some(resolved) = resolve_in_root(root, path) else {
        return Ok(None);
    };
    match std::fs::read(&resolved) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {path}"), e)),
    }
}

/// A private temporary directory to mount a view on (removed when dropped, after the unmount).
pub(crate) fn tempfile_dir() -> Result<TempDir> {
    let path = std::env::temp_dir().join(unique_name("lcd-view"));
    std::fs::create_dir(&path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    Ok(TempDir(path))
}

pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // rmdir, never a recursive delete: if the unmount failed, the image's files stay untouched.
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Resolve a user spec against the /etc/passwd and /etc/group of a snapshot the caller holds
/// (`mounts`, e.g. the container's own snapshot from [`prepare_snapshot`]): no view, no lease, no
/// write to containerd's database, which a per-container lookup through [`image_user`] costs.
pub async fn snapshot_user(mounts: Vec<Mount>, spec: &str, what: &str) -> Result<User> {
    let paths = vec!["/etc/passwd".to_string(), "/etc/group".to_string()];
    let files = tokio::task::spawn_blocking(move || read_mounted(&mounts, &paths))
        .await
        .map_err(|e| Error::internal(format!("read the users of {what}: {e}")))?
        .map_err(|e| e.context(format!("read the users of {what}")))?;
    let text = |i: usize| {
        files
            .get(i)
            .cloned()
            .flatten()
            .map(|d| String::from_utf8_lossy(&d).into_owned())
    };
    user::resolve(text(0).as_deref(), text(1).as_deref(), spec)
        .map_err(|e| e.context(format!("user {spec:?} of {what}")))
}

/// Resolve a user spec (`docker run -u`, or the image's User) against the image's own
/// /etc/passwd and /etc/group.
pub async fn image_user(
    client: &Client,
    image: &str,
    snapshotter: &str,
    platform: &Platform,
    spec: &str,
) -> Result<User> {
    let files = read_files(
        client,
        image,
        snapshotter,
        platform,
        &["/etc/passwd", "/etc/group"],
    )
    .await?;
    let text = |i: usize| {
        files
            .get(i)
            .cloned()
            .flatten()
            .map(|d| String::from_utf8_lossy(&d).into_owned())
    };
    user::resolve(text(0).as_deref(), text(1).as_deref(), spec)
        .map_err(|e| e.context(format!("user {spec:?} of image {image}")))
}
