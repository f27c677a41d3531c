//! Unpack an image's layers into a snapshotter: one committed snapshot per layer, named by its
//! chain ID, so images sharing a base share its snapshots.
//!
//! Per layer (containerd 1.6 `rootfs/apply.go`): a snapshot that exists is reused; otherwise
//! Prepare `extract-<nonce> <chainID>` on the parent, Diff.Apply the layer blob into its mounts
//! (containerd decompresses), check the result against the config's diff ID, Commit as the chain
//! ID; Remove the extract snapshot on failure. All under a lease until the config carries
//! `containerd.io/gc.ref.snapshot.<snapshotter>` = top chain ID.
//!
//! [`Unpacker`] takes these steps one layer at a time, so that a pull can unpack layer N as soon
//! as its blob is stored (and the layers below it are unpacked) while later layers still download.

use std::collections::HashMap;
use std::time::Duration;

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::ApplyRequest;
use containerd_client::types::Mount;
use libcontainerd::{Client, Error, ErrorKind, Result};

use crate::content::{ensure_labels, set_labels};
use crate::digest::chain_ids;
use crate::gc;
use crate::grpc::Services;
use crate::lease::{unique_name, Lease};
use crate::oci::{Descriptor, ImageConfigFile, Manifest};
use crate::platform::Platform;
use crate::resolve::resolve;
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
    let mut unpacker = Unpacker::new(
        &services,
        name,
        snapshotter,
        &resolved.manifest,
        &resolved.config,
    )?;
    // Unpacked before: no lease (two database transactions, each an fdatasync in containerd).
    if unpacker.unpacked_before().await? {
        return unpacker.finish().await;
    }
    let lease = Lease::create_with(&services, "unpack", UNPACK_LEASE_TTL).await?;
    let result = async {
        unpacker.services = lease.services()?;
        while unpacker.next_layer().is_some() {
            unpacker.apply_next().await?;
        }
        unpacker.finish().await
    }
    .await;
    match result {
        Ok(unpacked) => {
            lease.release().await?;
            Ok(unpacked)
        }
        Err(e) => {
            // The synchronous GC takes the snapshots this unpack committed: nothing half-done stays.
            lease.discard().await;
            Err(e)
        }
    }
}

/// The unpack of one image into one snapshotter, a layer at a time, base first: layer N needs its
/// blob in the content store and layers 0..N unpacked, nothing more. What it creates is held by
/// the lease its services carry (the caller's), until [`Unpacker::finish`] labels the config.
#[derive(Debug)]
pub(crate) struct Unpacker {
    services: Services,
    image: String,
    snapshotter: String,
    layers: Vec<Descriptor>,
    diff_ids: Vec<String>,
    chain: Vec<String>,
    config: String,
    /// The next layer to unpack.
    next: usize,
    /// Whether the image was found unpacked before anything was done.
    before: bool,
}

impl Unpacker {
    /// The unpack of `image` (named in errors), whose manifest and config these are, into
    /// `snapshotter`, with requests made through `services` (under the caller's lease).
    pub(crate) fn new(
        services: &Services,
        image: &str,
        snapshotter: &str,
        manifest: &Manifest,
        config: &ImageConfigFile,
    ) -> Result<Unpacker> {
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::invalid(format!(
                "unpack {image}: its manifest has {} layers but its config {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        if diff_ids.is_empty() {
            return Err(Error::invalid(format!(
                "unpack {image}: the image has no layers"
            )));
        }
        Ok(Unpacker {
            services: services.clone(),
            image: image.to_string(),
            snapshotter: snapshotter.to_string(),
            layers: manifest.layers.clone(),
            diff_ids: diff_ids.clone(),
            chain: chain_ids(diff_ids),
            config: manifest.config.digest.clone(),
            next: 0,
            before: false,
        })
    }

    /// Whether the image is unpacked already (its top snapshot exists). If so, the config is made
    /// to hold it (written only when its label is missing) and no layer is left to unpack.
    pub(crate) async fn unpacked_before(&mut self) -> Result<bool> {
        let top = self.chain.last().map_or("", String::as_str);
        if stat(&self.services, &self.snapshotter, top)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        ensure_labels(&self.services, &self.config, &self.config_label()).await?;
        self.before = true;
        self.next = self.layers.len();
        Ok(true)
    }

    /// The layer [`Unpacker::apply_next`] unpacks next, `None` once all are.
    pub(crate) fn next_layer(&self) -> Option<&Descriptor> {
        self.layers.get(self.next)
    }

    /// Unpack the next layer (its blob must be stored), unless its snapshot exists; label its
    /// blob with its diff ID.
    pub(crate) async fn apply_next(&mut self) -> Result<()> {
        let i = self.next;
        let Some(layer) = self.layers.get(i) else {
            return Err(Error::internal(format!(
                "unpack {}: no layer left to unpack",
                self.image
            )));
        };
        let (chain_id, diff_id) = (&self.chain[i], &self.diff_ids[i]);
        let parent = if i == 0 {
            ""
        } else {
            self.chain[i - 1].as_str()
        };
        if stat(&self.services, &self.snapshotter, chain_id)
            .await?
            .is_none()
        {
            apply_layer(
                &self.services,
                &self.snapshotter,
                layer,
                parent,
                chain_id,
                diff_id,
            )
            .await
            .map_err(|e| {
                e.context(format!(
                    "unpack {}: layer {i} ({})",
                    self.image, layer.digest
                ))
            })?;
        }
        let uncompressed = HashMap::from([(gc::UNCOMPRESSED.to_string(), diff_id.clone())]);
        ensure_labels(&self.services, &layer.digest, &uncompressed).await?;
        self.next += 1;
        Ok(())
    }

    /// Once every layer is unpacked: label the config with the top snapshot, which from then on
    /// holds the chain (the caller's lease may go).
    pub(crate) async fn finish(self) -> Result<Unpacked> {
        if self.next_layer().is_some() {
            return Err(Error::internal(format!(
                "unpack {}: finished with layer {} of {} not unpacked",
                self.image,
                self.next,
                self.layers.len()
            )));
        }
        if !self.before {
            set_labels(&self.services, &self.config, &self.config_label()).await?;
        }
        Ok(Unpacked {
            snapshotter: self.snapshotter,
            chain_ids: self.chain,
            already: self.before,
        })
    }

    fn config_label(&self) -> HashMap<String, String> {
        let top = self.chain.last().cloned().unwrap_or_default();
        HashMap::from([(gc::snapshot_label(&self.snapshotter), top)])
    }
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
