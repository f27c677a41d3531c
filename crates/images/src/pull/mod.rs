//! Pull an image from a registry (OCI distribution v2 API) into containerd, as `docker pull`.
//!
//! Resolve the reference (a tag or digest) to a manifest or index; from an index take the manifest
//! for the platform; fetch the config, then the layers (a few at a time), each streamed into the
//! content store with its digest checked, blobs already there skipped. Meanwhile store the config
//! (with the label that will hold its unpacked layers), the manifest and the indexes with the GC
//! labels import sets. Unpacking overlaps the downloads, as containerd's Go client does: layer N
//! is unpacked as soon as its blob is stored and layers 0..N are unpacked, while later layers still
//! download (see `layers`). Once every blob is stored, the image is named (`Images.Create/Update`)
//! while the last layers unpack. Everything is written under one lease; a failure undoes the image
//! record and deletes the lease with a synchronous GC, so nothing half-pulled remains.

mod blob;
mod layers;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libcontainerd::{Client, Error, Result};

pub use crate::registry::auth::{docker_config_dir, Credentials};

use crate::content::{info, read_small, write_bytes};
use crate::gc::{index_labels, manifest_labels};
use crate::grpc::Services;
use crate::lease::Lease;
use crate::media;
use crate::oci::{parse, Descriptor, ImageConfigFile, Index, Manifest};
use crate::platform::Platform;
use crate::reference::{Reference, DEFAULT_TAG};
use crate::registry::auth::credentials_for;
use crate::registry::http::Registry;
use crate::resolve::{choose, unknown_type};
use crate::store;
use crate::unpack::{Unpacked, Unpacker};
use layers::{Downloads, Unpacking};

/// How long a pull's lease outlives a client that crashed during the pull.
const PULL_LEASE_TTL: Duration = Duration::from_secs(3600);

/// Layers downloaded at once by default (docker's `max-concurrent-downloads` is 3).
pub const DEFAULT_CONCURRENCY: usize = 3;

/// Where a blob's download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// Waiting for a download slot.
    Waiting,
    /// Bytes are arriving; `done` counts those stored.
    Downloading,
    /// The transfer broke; it goes on from `done`.
    Resuming,
    /// The content store had it already.
    Present,
    /// Stored and its digest checked.
    Done,
}

/// One report about one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The layer's digest.
    pub digest: String,
    /// Its position in the manifest, base first.
    pub layer: usize,
    /// Bytes stored so far.
    pub done: u64,
    /// Its size.
    pub total: u64,
    /// Where it is.
    pub state: ProgressState,
}

/// Called with each [`Progress`] report, from several tasks at once.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How to pull.
#[derive(Clone)]
pub struct PullOptions {
    /// The platform taken from a multi-platform image (default: this host's).
    pub platform: Platform,
    /// Speak plain HTTP to the registry. Registries on loopback get HTTP anyway when HTTPS fails.
    pub plain_http: bool,
    /// Credentials to use instead of docker's `config.json`.
    pub credentials: Option<Credentials>,
    /// The directory of docker's `config.json` (default: `$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
    /// Unpack the image after the pull.
    pub unpack: bool,
    /// The snapshotter to unpack into (default: overlayfs where it works, else native).
    pub snapshotter: Option<String>,
    /// Layers downloaded at once (at least 1).
    pub concurrency: usize,
    /// Per-layer progress reports.
    pub progress: Option<ProgressFn>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            plain_http: false,
            credentials: None,
            docker_config: None,
            unpack: true,
            snapshotter: None,
            concurrency: DEFAULT_CONCURRENCY,
            progress: None,
        }
    }
}

impl fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullOptions")
            .field("platform", &self.platform)
            .field("plain_http", &self.plain_http)
            .field("credentials", &self.credentials)
            .field("docker_config", &self.docker_config)
            .field("unpack", &self.unpack)
            .field("snapshotter", &self.snapshotter)
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .finish()
    }
}

/// A pulled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The name it is stored under (full, normalised: `docker.io/library/busybox:latest`).
    pub name: String,
    /// Its target: the index or manifest the reference resolved to.
    pub target: Descriptor,
    /// The manifest for the platform.
    pub manifest: Descriptor,
    /// The config's digest (docker's image ID).
    pub id: String,
    /// Layer bytes downloaded (layers already stored do not count).
    pub downloaded: u64,
    /// The unpacked snapshots, if unpacked.
    pub unpacked: Option<Unpacked>,
}

/// Pull `reference` (`busybox`, `127.0.0.1:5000/app:1`, `name@sha256:...`).
pub async fn pull(client: &Client, reference: &str, options: &PullOptions) -> Result<PulledImage> {
    let parsed = Reference::parse(reference).map_err(|e| e.context("pull"))?;
    let name = parsed.to_string();
    let context = format!("pull {name}");
    let credentials = credentials_for(
        options.credentials.as_ref(),
        options.docker_config.as_deref(),
        parsed.domain(),
    )
    .await
    .map_err(|e| e.context(&context))?;
    let services = Services::new(client)?;
    let snapshotter = async {
        match (options.unpack, &options.snapshotter) {
            (false, _) => Ok(None),
            (true, Some(s)) => Ok(Some(s.clone())),
            (true, None) => crate::snapshotter::choose(client).await.map(Some),
        }
    };
    // containerd's part (a lease is a database transaction) while the registry answers its ping.
    let (registry, lease, snapshotter) = tokio::join!(
        Registry::connect(&parsed, options.plain_http, credentials),
        Lease::create_with(&services, "pull", PULL_LEASE_TTL),
        snapshotter,
    );
    let lease = lease.map_err(|e| e.context(&context))?;
    let (registry, snapshotter) = match (registry, snapshotter) {
        (Ok(registry), Ok(snapshotter)) => (registry, snapshotter),
        (Err(e), _) | (_, Err(e)) => {
            // Nothing was written under the lease yet.
            if let Err(e) = lease.release().await {
                tracing::warn!(error = %e, "deleting an unused lease");
            }
            return Err(e.context(&context));
        }
    };
    let mut made = Vec::new();
    let result = async {
        let leased = lease.services()?;
        let (mut pulled, unpacking) = fetch(
            &leased,
            Arc::new(registry),
            &parsed,
            options,
            snapshotter.as_deref(),
        )
        .await?;
        // Every blob is stored: name the image while the last layers unpack (the lease holds
        // what the unpack makes until the config's label does).
        let (named, unpacked) = tokio::join!(
            store::name(&services, &name, &pulled.target, &mut made),
            unpacking
        );
        named?;
        pulled.unpacked = unpacked?;
        Ok::<_, Error>(pulled)
    }
    .await;
    match result {
        Ok(pulled) => {
            lease.release().await?;
            Ok(pulled)
        }
        Err(e) => {
            store::undo(&services, made).await;
            lease.discard().await;
            Err(e.context(&context))
        }
    }
}

/// Fetch everything the image needs for the platform into the content store, unpacking it into
/// `snapshotter` (if given) on the way; returns once everything is stored, with what is left of
/// the unpack.
async fn fetch(
    services: &Services,
    registry: Arc<Registry>,
    reference: &Reference,
    options: &PullOptions,
    snapshotter: Option<&str>,
) -> Result<(PulledImage, Unpacking)> {
    let image = reference.to_string();
    let wanted = reference
        .digest()
        .or(reference.tag())
        .unwrap_or(DEFAULT_TAG)
        .to_string();
    let (target, mut data) = registry.manifest(&wanted, reference.digest()).await?;
    let mut descriptor = target.clone();
    // Indexes on the way down, stored (with their labels) while the layers download.
    let mut indexes = Vec::new();
    for _ in 0..4 {
        if !media::is_index(&descriptor.media_type) {
            break;
        }
        let index: Index = parse(&format!("index {} of {image}", descriptor.digest), &data)?;
        let chosen = choose(&index, &options.platform, &image)?.clone();
        indexes.push((descriptor, std::mem::take(&mut data), index));
        let (fetched, bytes) = registry
            .manifest(&chosen.digest, Some(&chosen.digest))
            .await?;
        descriptor = Descriptor {
            media_type: fetched.media_type,
            ..chosen
        };
        data = bytes;
    }
    if !media::is_manifest(&descriptor.media_type) {
        return Err(unknown_type(&image, "manifest", &descriptor));
    }
    let manifest: Manifest = parse(&format!("manifest {} of {image}", descriptor.digest), &data)?;
    if !media::is_config(&manifest.config.media_type) {
        return Err(unknown_type(&image, "config", &manifest.config));
    }
    for layer in &manifest.layers {
        crate::digest::check(&layer.digest, &format!("layer of {image}"))?;
        if !media::is_layer(&layer.media_type) {
            return Err(unknown_type(&image, "layer", layer));
        }
    }
    let (config, config_bytes) =
        config(services, &registry, &manifest.config, &image, options).await?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(Error::invalid(format!(
            "{image}: its manifest has {} layers but its config {} diff IDs",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let unpacker = match snapshotter {
        Some(snapshotter) => {
            let mut unpacker = Unpacker::new(services, &image, snapshotter, &manifest, &config)?;
            // Unpacked before: its layers are still fetched if missing (the image needs them).
            unpacker.unpacked_before().await?;
            Some(unpacker)
        }
        None => None,
    };
    let downloads = Downloads::start(services, &registry, &manifest, &image, options);
    // While the layers download: the config, if it came from the registry, then the manifest and
    // indexes with their GC labels (the lease holds all until the image is named).
    let stored = async {
        if let Some(bytes) = &config_bytes {
            // With the label that holds the unpacked layers (GC ignores it until the top
            // snapshot exists): no transaction for it once they are.
            let labels = unpacker
                .as_ref()
                .map(Unpacker::config_label)
                .unwrap_or_default();
            let what = format!("config {} of {image}", manifest.config.digest);
            write_bytes(services, &what, bytes, labels).await?;
        }
        let what = format!("manifest of {image}");
        write_bytes(services, &what, &data, manifest_labels(&manifest)).await?;
        for (index_descriptor, bytes, index) in indexes.iter().rev() {
            let what = format!("index {} of {image}", index_descriptor.digest);
            write_bytes(services, &what, bytes, index_labels(index)).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = stored {
        downloads.stop().await;
        return Err(e);
    }
    let (downloaded, unpacking) = downloads.finish(unpacker).await?;
    let pulled = PulledImage {
        name: image,
        target: Descriptor {
            platform: None,
            annotations: Default::default(),
            ..target
        },
        manifest: Descriptor {
            platform: None,
            annotations: Default::default(),
            ..descriptor
        },
        id: manifest.config.digest.clone(),
        downloaded,
        unpacked: None,
    };
    Ok((pulled, unpacking))
}

/// The image config, from the content store if there, else from the registry (then also its
/// bytes, still to be stored); its platform must be the one asked for (an index may have named
/// none, or the wrong one).
async fn config(
    services: &Services,
    registry: &Registry,
    descriptor: &Descriptor,
    image: &str,
    options: &PullOptions,
) -> Result<(ImageConfigFile, Option<Vec<u8>>)> {
    let what = format!("config {} of {image}", descriptor.digest);
    crate::digest::check(&descriptor.digest, &what)?;
    let (data, fetched) = if info(services, &descriptor.digest).await?.is_some() {
        let data = read_small(services, &format!("config of {image}"), &descriptor.digest).await?;
        (data, false)
    } else {
        let data = registry
            .small_blob(descriptor, &format!("fetch {what}"))
            .await?;
        (data, true)
    };
    let config: ImageConfigFile = parse(&what, &data)?;
    if !options.platform.matches(&config.platform()) {
        return Err(Error::not_found(format!(
            "no manifest for {} in {image}; it has {}",
            options.platform,
            config.platform()
        )));
    }
    Ok((config, fetched.then_some(data)))
}
