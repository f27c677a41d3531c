//! containerd's Snapshots service as unpacks and containers use it: create (prepare or view), stat,
//! remove; and the recovery from a containerd killed while it was creating a snapshot.
//!
//! The overlayfs snapshotter (containerd 1.6 and 1.7) makes a new snapshot's directory, takes the
//! next id and renames the directory to it inside one transaction of its own database. Killed
//! between the rename and the commit, it leaves a directory no record names, and hands the same id
//! out again: every later Prepare or View then fails ("failed to rename ...: file exists") until
//! the snapshotter's Cleanup removes such directories, which containerd's GC runs only after it
//! removed a snapshot. So a create that fails for a reason containerd does not classify (gRPC
//! Unknown) is tried once more after a Cleanup (which only removes what no record names).

use std::collections::HashMap;

use containerd_client::services::v1::snapshots::{
    CleanupRequest, Info, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
    ViewSnapshotRequest,
};
use containerd_client::types::Mount;
use libcontainerd::{ErrorKind, Result};

use crate::grpc::Services;

/// What kind of snapshot to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Writable (Prepare): an unpack's extract snapshot, a container's root.
    Active,
    /// Read-only (View).
    View,
}

/// Create snapshot `key` on `parent` (committed; empty for none) and return its mounts. The error
/// is containerd's, for the caller to put in its words.
pub(crate) async fn create(
    services: &Services,
    snapshotter: &str,
    kind: Kind,
    key: &str,
    parent: &str,
) -> std::result::Result<Vec<Mount>, tonic::Status> {
    match create_once(services, snapshotter, kind, key, parent).await {
        Err(s) if s.code() == tonic::Code::Unknown => {
            tracing::info!(snapshotter, key, error = %s.message(),
                "creating a snapshot failed; cleaning up the snapshotter and trying again");
            let cleanup = services
                .snapshots()
                .cleanup(services.request(CleanupRequest {
                    snapshotter: snapshotter.to_string(),
                }))
                .await;
            if let Err(e) = cleanup {
                tracing::warn!(snapshotter, error = %e, "cleaning up a snapshotter");
            }
            create_once(services, snapshotter, kind, key, parent).await
        }
        other => other,
    }
}

async fn create_once(
    services: &Services,
    snapshotter: &str,
    kind: Kind,
    key: &str,
    parent: &str,
) -> std::result::Result<Vec<Mount>, tonic::Status> {
    let (snapshotter, key, parent) = (snapshotter.to_string(), key.to_string(), parent.to_string());
    let mounts = match kind {
        Kind::Active => {
            services
                .snapshots()
                .prepare(services.request(PrepareSnapshotRequest {
                    snapshotter,
                    key,
                    parent,
                    labels: HashMap::new(),
                }))
                .await?
                .into_inner()
                .mounts
        }
        Kind::View => {
            services
                .snapshots()
                .view(services.request(ViewSnapshotRequest {
                    snapshotter,
                    key,
                    parent,
                    labels: HashMap::new(),
                }))
                .await?
                .into_inner()
                .mounts
        }
    };
    Ok(mounts)
}

/// A snapshot's info, or `None` if `snapshotter` does not have `key`.
pub(crate) async fn stat(
    services: &Services,
    snapshotter: &str,
    key: &str,
) -> Result<Option<Info>> {
    let result = services
        .snapshots()
        .stat(services.request(StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        }))
        .await;
    match result {
        Ok(r) => Ok(r.into_inner().info),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(libcontainerd::raw::error_from_status(
            format!("stat snapshot {key} in {snapshotter}"),
            s,
        )),
    }
}

/// Remove a snapshot; a missing one is fine. Errors are logged (this runs after a failure).
pub(crate) async fn remove(services: &Services, snapshotter: &str, key: &str) {
    if let Err(e) = try_remove(services, snapshotter, key).await {
        if e.kind() != ErrorKind::NotFound {
            tracing::warn!(key, snapshotter, error = %e, "removing a snapshot");
        }
    }
}

/// Remove a snapshot.
pub(crate) async fn try_remove(services: &Services, snapshotter: &str, key: &str) -> Result<()> {
    services
        .snapshots()
        .remove(services.request(RemoveSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        }))
        .await
        .map_err(|s| {
            libcontainerd::raw::error_from_status(
                format!("remove snapshot {key} from {snapshotter}"),
                s,
            )
        })?;
    Ok(())
}
