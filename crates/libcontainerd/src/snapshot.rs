//! A container's root filesystem as a snapshot (from an image, usually): the record names it, the
//! task mounts it, the container's delete removes it.

use containerd_client::services::v1::snapshots::{MountsRequest, RemoveSnapshotRequest};
use oci_spec::runtime::Spec;

use crate::client::Client;
use crate::error::{Error, Result};

/// A container's root filesystem as a snapshot: an active snapshot the caller prepared (from an
/// image, usually), mounted by the runtime when the task is created and removed with the container
/// (as containerd's Go client does with `WithNewSnapshot` and `WithSnapshotCleanup`). The spec's
/// root path is then relative (`rootfs`, inside the bundle) and the record names the snapshot, so
/// that containerd's garbage collector keeps it while the container exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The snapshotter holding it (`overlayfs`, `native`...).
    pub snapshotter: String,
    /// Its key: by convention the container id.
    pub key: String,
    /// The image it was made from, recorded as the container's image (`docker ps`' IMAGE).
    pub image: Option<String>,
}

/// Remove a container's snapshot; one that is gone already is fine.
pub(crate) async fn remove_snapshot(client: &Client, snapshot: &Snapshot) -> Result<()> {
    let request = RemoveSnapshotRequest {
        snapshotter: snapshot.snapshotter.clone(),
        key: snapshot.key.clone(),
    };
    match client.snapshots().remove(client.request(request)).await {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(Error::from_status(
            format!(
                "remove snapshot {} of {}",
                snapshot.key, snapshot.snapshotter
            ),
            s,
        )),
    }
}

/// The mounts of a container's snapshot, for the runtime to mount as its root.
pub(crate) async fn snapshot_mounts(
    client: &Client,
    snapshot: &Snapshot,
) -> Result<Vec<containerd_client::types::Mount>> {
    let request = MountsRequest {
        snapshotter: snapshot.snapshotter.clone(),
        key: snapshot.key.clone(),
    };
    let response = client
        .snapshots()
        .mounts(client.request(request))
        .await
        .map_err(|s| {
            Error::from_status(
                format!(
                    "mounts of snapshot {} in {}",
                    snapshot.key, snapshot.snapshotter
                ),
                s,
            )
        })?;
    Ok(response.into_inner().mounts)
}

/// A snapshot's root is mounted by the runtime inside the bundle: the spec names it relatively.
pub(crate) fn check_snapshot_rootfs(spec: &Spec, snapshot: &Snapshot) -> Result<()> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::invalid("the spec has no root filesystem"))?;
    if root.path().is_absolute() || root.path().as_os_str().is_empty() {
        return Err(Error::invalid(format!(
            "rootfs {} must be a relative path (rootfs) for a container on snapshot {}",
            root.path().display(),
            snapshot.key
        )));
    }
    if snapshot.snapshotter.is_empty() || snapshot.key.is_empty() {
        return Err(Error::invalid("a snapshot needs a snapshotter and a key"));
    }
    Ok(())
}
