//! Unpack an image's layers into a snapshotter: one committed snapshot per layer, named by its
//! chain ID, so images sharing a base share its snapshots.
//!
//! Per layer (containerd 1.6 `rootfs/apply.go`): a snapshot that exists is reused; otherwise
//! Prepare `extract-<nonce> <chainID>` on the parent, Diff.Apply the layer blob into its mounts
//! (containerd decompresses), check the result against the config's diff ID, Commit as the chain
//! ID; Remove the extract snapshot on failure. All under a lease until the config carries
//! `containerd.io/gc.ref.snapshot.<snapshotter>` = top chain ID.
//!
//! `Unpacker` takes these steps one layer at a time, so that a pull can unpack layer N as soon
//! as its blob is stored (and the layers below it are unpacked) while later layers still download.

use std::collections::HashMap;
use std::time::Duration;

use containerd_client::services::v1::snapshots::CommitSnapshotRequest;
use containerd_client::services::v1::ApplyRequest;
use containerd_client::types::Mount;
use libcontainerd::{Client, Error, Result};
use tokio::task::JoinSet;

use crate::content::ensure_labels;
use crate::digest::chain_ids;
use crate::gc;
use crate::grpc::Services;
use crate::lease::{unique_name, Lease};
use crate::oci::{Descriptor, ImageConfigFile, Manifest};
use crate::platform::Platform;
use crate::resolve::{resolve, Resolved};
use crate::snapshots::{self, remove, stat, Kind};
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
    unpack_resolved(&services, name, snapshotter, &resolved).await
}

/// [`unpack`] for an image whose manifest and config the caller has read already.
pub(crate) async fn unpack_resolved(
    services: &Services,
    name: &str,
    snapshotter: &str,
    resolved: &Resolved,
) -> Result<Unpacked> {
    let mut unpacker = Unpacker::new(
        services,
        name,
        snapshotter,
        &resolved.manifest,
        &resolved.config,
    )?;
    // Unpacked before: no lease (two database transactions, each an fdatasync in containerd).
    if unpacker.unpacked_before().await? {
        return unpacker.finish().await;
    }
    let lease = Lease::create_with(services, "unpack", UNPACK_LEASE_TTL).await?;
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
    /// What [`Unpacker::prepare_next`] found or made for the next layer.
    prepared: Option<Prepared>,
    /// Unpacked layers whose blobs still need their `containerd.io/uncompressed` label.
    unlabelled: Vec<usize>,
    /// Those labels being written, while the next layer unpacks.
    labelling: JoinSet<Result<()>>,
    /// Whether the image was found unpacked before anything was done.
    before: bool,
}

/// The next layer's snapshot, before its blob is applied.
#[derive(Debug)]
enum Prepared {
    /// Committed already (another image shares the layers up to here): nothing to apply.
    Exists,
    /// An active `extract-*` snapshot on the parent, and its mounts.
    Extract { key: String, mounts: Vec<Mount> },
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
            prepared: None,
            unlabelled: Vec::new(),
            labelling: JoinSet::new(),
            before: false,
        })
    }

    /// Whether the image is unpacked already (its top snapshot exists); then no layer is left to
    /// unpack, and [`Unpacker::finish`] only makes sure the config holds the chain.
    pub(crate) async fn unpacked_before(&mut self) -> Result<bool> {
        let top = self.chain.last().map_or("", String::as_str);
        if stat(&self.services, &self.snapshotter, top)
            .await?
            .is_some()
        {
            self.before = true;
            self.next = self.layers.len();
        }
        Ok(self.before)
    }

    /// The layer [`Unpacker::apply_next`] unpacks next, `None` once all are.
    pub(crate) fn next_layer(&self) -> Option<&Descriptor> {
        self.layers.get(self.next)
    }

    /// Get the next layer's snapshot ready, which needs the layers below it unpacked but not its
    /// blob: find it committed already, or prepare the snapshot its blob will be applied into.
    pub(crate) async fn prepare_next(&mut self) -> Result<()> {
        let i = self.next;
        if self.prepared.is_some() || i >= self.layers.len() {
            return Ok(());
        }
        let chain_id = &self.chain[i];
        if stat(&self.services, &self.snapshotter, chain_id)
            .await?
            .is_some()
        {
            self.prepared = Some(Prepared::Exists);
        } else {
            let parent = if i == 0 {
                ""
            } else {
                self.chain[i - 1].as_str()
            };
            let (key, mounts) = prepare(&self.services, &self.snapshotter, parent, chain_id)
                .await
                .map_err(|e| self.layer_context(e))?;
            self.prepared = Some(Prepared::Extract { key, mounts });
        }
        // Now, not before: the labels' transactions would delay this prepare, while the apply
        // that comes next writes nothing to containerd's database.
        self.start_labels();
        Ok(())
    }

    /// Start writing the `containerd.io/uncompressed` labels of the layers unpacked so far.
    fn start_labels(&mut self) {
        for i in self.unlabelled.drain(..) {
            let services = self.services.clone();
            let digest = self.layers[i].digest.clone();
            let uncompressed =
                HashMap::from([(gc::UNCOMPRESSED.to_string(), self.diff_ids[i].clone())]);
            self.labelling
                .spawn(async move { ensure_labels(&services, &digest, &uncompressed).await });
        }
    }

    /// Unpack the next layer (its blob must be stored), unless its snapshot exists. Its blob gets
    /// its diff ID as label while the next layer unpacks, or in [`Unpacker::finish`].
    pub(crate) async fn apply_next(&mut self) -> Result<()> {
        let i = self.next;
        if i >= self.layers.len() {
            return Err(Error::internal(format!(
                "unpack {}: no layer left to unpack",
                self.image
            )));
        }
        self.prepare_next().await?;
        let layer = &self.layers[i];
        if let Some(Prepared::Extract { key, mounts }) = self.prepared.take() {
            let (chain_id, diff_id) = (&self.chain[i], &self.diff_ids[i]);
            let applied = apply_and_commit(
                &self.services,
                &self.snapshotter,
                layer,
                mounts,
                &key,
                chain_id,
                diff_id,
            )
            .await;
            if let Err(e) = applied {
                remove(&self.services, &self.snapshotter, &key).await;
                return Err(self.layer_context(e));
            }
        }
        self.unlabelled.push(i);
        self.next += 1;
        Ok(())
    }

    /// Remove the snapshot prepared for a layer that will not be applied (the pull stopped).
    pub(crate) async fn abandon(&mut self) {
        if let Some(Prepared::Extract { key, .. }) = self.prepared.take() {
            remove(&self.services, &self.snapshotter, &key).await;
        }
    }

    /// Once every layer is unpacked: finish the layers' labels, and make sure the config holds
    /// the top snapshot, which from then on holds the chain (the caller's lease may go). The
    /// config must be stored.
    pub(crate) async fn finish(mut self) -> Result<Unpacked> {
        if self.next_layer().is_some() {
            return Err(Error::internal(format!(
                "unpack {}: finished with layer {} of {} not unpacked",
                self.image,
                self.next,
                self.layers.len()
            )));
        }
        self.start_labels();
        while let Some(labelled) = self.labelling.join_next().await {
            labelled.map_err(|e| Error::internal(format!("labelling a layer failed: {e}")))??;
        }
        // Written only when missing (a transaction, an fdatasync in containerd): a pull stores
        // the config with it.
        ensure_labels(&self.services, &self.config, &self.config_label()).await?;
        Ok(Unpacked {
            snapshotter: self.snapshotter,
            chain_ids: self.chain,
            already: self.before,
        })
    }

    /// The config's label that holds the unpacked layers: the top snapshot.
    pub(crate) fn config_label(&self) -> HashMap<String, String> {
        let top = self.chain.last().cloned().unwrap_or_default();
        HashMap::from([(gc::snapshot_label(&self.snapshotter), top)])
    }

    fn layer_context(&self, e: Error) -> Error {
        let digest = self.layers.get(self.next).map_or("", |l| l.digest.as_str());
        e.context(format!(
            "unpack {}: layer {} ({digest})",
            self.image, self.next
        ))
    }
}

/// Prepare `extract-<nonce> <chainID>` on `parent`: the snapshot a layer is applied into. Returns
/// its key and mounts.
async fn prepare(
    services: &Services,
    snapshotter: &str,
    parent: &str,
    chain_id: &str,
) -> Result<(String, Vec<Mount>)> {
    let key = format!("{} {chain_id}", unique_name("extract"));
    let mounts = snapshots::create(services, snapshotter, Kind::Active, &key, parent)
        .await
        .map_err(|s| {
            libcontainerd::raw::error_from_status(format!("prepare snapshot in {snapshotter}"), s)
        })?;
    Ok((key, mounts))
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
