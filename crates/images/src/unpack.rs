//! Unpack an image's layers into a snapshotter: one committed snapshot per layer, named by its
//! chain ID, so images sharing a base share its snapshots.
//!
//! Per layer (containerd 1.6 `rootfs/apply.go`): a snapshot that exists is reused; otherwise
//! Prepare `extract-<nonce> <chainID>` on the parent, Diff.Apply the layer blob into its mounts
//! (containerd decompresses), check the result against the config's diff ID, Commit as the chain
//! ID; Remove the extract snapshot on failure. All under a lease until the config carries
//! `containerd.io/gc.ref.snapshot.<snapshotter>` = top chain ID.

use std::collections::HashMap;
use std::time::Duration;

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::ApplyRequest;
use containerd_client::types::Mount;
use libcontainerd::{Client, Error, ErrorKind, Result};

use crate::content::{info, set_labels};
use crate::digest::chain_ids;
use crate::gc;
use crate::grpc::Services;
use crate::lease::{unique_name, Lease};
use crate::oci::Descriptor;
use crate::platform::Platform;
use crate::resolve::{resolve, Resolved};
use crate::store::get_record;

const UNPACK_LEASE_TTL: Duration = Duration::from_secs(3600);

/// An unpacked image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The snapshotter it is unpacked in.
    pub snapshotter: String,
    /// Chain ID of each layer, base first; the last is the parent for containers.
    pub chain_ids: Vec<String>,
    /// Whether it was unpacked before (nothing was applied).
    pub already: bool,
}

impl Unpacked {
    /// The snapshot a container's rootfs starts from.
    pub fn top(&self) -> &str {
        self.chain_ids.last().map_or("", String::as_str)
    }
}

/// Unpack image `name` (its manifest for `platform`) into `snapshotter`.
pub async fn unpack(
    client: &Client,
    name: &str,
    snapshotter: &str,
    platform: &Platform,
) -> Result<Unpacked> {
    let services = Services::new(client)?;
    let record = get_record(&services, name).await?;
    let resolved = resolve(&services, &record.target, platform, name).await?;
    let diff_ids = &resolved.config.rootfs.diff_ids;
    if diff_ids.len() != resolved.manifest.layers.len() {
        return Err(Error::invalid(format!(
            "unpack {name}: its manifest has {} layers but its config {} diff IDs",
            resolved.manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let chain = chain_ids(diff_ids);
    let mut unpacked = Unpacked {
        snapshotter: snapshotter.to_string(),
        chain_ids: chain.clone(),
        already: true,
    };
    let Some(top) = chain.last() else {
        return Err(Error::invalid(format!(
            "unpack {name}: the image has no layers"
        )));
    };
    let label = HashMap::from([(gc::snapshot_label(snapshotter), top.clone())]);
    if stat(&services, snapshotter, top).await?.is_some() {
        // Unpacked before: only make sure the config still holds the chain, writing (a database
        // transaction, an fdatasync in containerd) only when it does not.
        let config = &resolved.manifest.config.digest;
        let held = info(&services, config)
            .await?
            .is_some_and(|i| i.labels.get(&gc::snapshot_label(snapshotter)) == Some(top));
        if !held {
            set_labels(&services, config, &label).await?;
        }
        return Ok(unpacked);
    }
    let lease = Lease::create_with(&services, "unpack", UNPACK_LEASE_TTL).await?;
    let result = async {
        let leased = lease.services()?;
        apply_layers(&leased, name, snapshotter, &resolved, &chain).await?;
        set_labels(&leased, &resolved.manifest.config.digest, &label).await
    }
    .await;
    match result {
        Ok(()) => {
            lease.release().await?;
            unpacked.already = false;
            Ok(unpacked)
        }
        Err(e) => {
            // The synchronous GC takes the snapshots this unpack committed: nothing half-done stays.
            lease.discard().await;
            Err(e)
        }
    }
}

async fn apply_layers(
    services: &Services,
    name: &str,
    snapshotter: &str,
    resolved: &Resolved,
    chain: &[String],
) -> Result<()> {
    let diff_ids = &resolved.config.rootfs.diff_ids;
    for (i, layer) in resolved.manifest.layers.iter().enumerate() {
        let parent = if i == 0 { "" } else { chain[i - 1].as_str() };
        if stat(services, snapshotter, &chain[i]).await?.is_none() {
            apply_layer(
                services,
                snapshotter,
                layer,
                parent,
                &chain[i],
                &diff_ids[i],
            )
            .await
            .map_err(|e| e.context(format!("unpack {name}: layer {i} ({})", layer.digest)))?;
        }
        let uncompressed = HashMap::from([(gc::UNCOMPRESSED.to_string(), diff_ids[i].clone())]);
        set_labels(services, &layer.digest, &uncompressed).await?;
    }
    Ok(())
}

async fn apply_layer(
    services: &Services,
    snapshotter: &str,
    layer: &Descriptor,
    parent: &str,
    chain_id: &str,
    diff_id: &str,
) -> Result<()> {
    let key = format!("{} {chain_id}", unique_name("extract"));
    let mounts = services
        .snapshots()
        .prepare(services.request(PrepareSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.clone(),
            parent: parent.to_string(),
            labels: HashMap::new(),
        }))
        .await
        .map_err(|s| {
            libcontainerd::raw::error_from_status(format!("prepare snapshot in {snapshotter}"), s)
        })?
        .into_inner()
        .mounts;
    let result = apply_and_commit(
        services,
        snapshotter,
        layer,
        mounts,
        &key,
        chain_id,
        diff_id,
    )
    .await;
    if result.is_err() {
        remove(services, snapshotter, &key).await;
    }
    result
}

async fn apply_and_commit(
    services: &Services,
    snapshotter: &str,
    layer: &Descriptor,
    mounts: Vec<Mount>,
    key: &str,
    chain_id: &str,
    diff_id: &str,
) -> Result<()> {
    let applied = services
        .diff()
        .apply(services.request(ApplyRequest {
            diff: Some(layer.to_proto()),
            mounts,
            payloads: HashMap::new(),
            sync_fs: false,
        }))
        .await
        .map_err(|s| libcontainerd::raw::error_from_status("apply", s))?
        .into_inner()
        .applied
        .ok_or_else(|| Error::internal("apply: containerd returned no descriptor"))?;
    if applied.digest != diff_id {
        return Err(Error::invalid(format!(
            "digest mismatch: it unpacks to {}, the config expects {diff_id}",
            applied.digest
        )));
    }
    let committed = services
        .snapshots()
        .commit(services.request(CommitSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            name: chain_id.to_string(),
            key: key.to_string(),
            labels: HashMap::new(),
        }))
        .await;
    match committed {
        Ok(_) => Ok(()),
        // Another unpack of the same layers won the race: its snapshot is as good as ours.
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            remove(services, snapshotter, key).await;
            Ok(())
        }
        Err(s) => Err(libcontainerd::raw::error_from_status(
            format!("commit snapshot {chain_id}"),
            s,
        )),
    }
}

/// A snapshot's info, or `None` if `snapshotter` does not have `key`.
pub(crate) async fn stat(
    services: &Services,
    snapshotter: &str,
    key: &str,
) -> Result<Option<containerd_client::services::v1::snapshots::Info>> {
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
