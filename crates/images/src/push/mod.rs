//! Push a stored image to a registry (OCI distribution v2 API), as `docker push`.
//!
//! What is pushed is the image's target as containerd stores it, byte for byte, so its digest is
//! the one `lcd images --digests` and a later pull show. For an index: the whole index when the
//! content store has every manifest it lists with their blobs; otherwise (an image pulled for one
//! platform from a multi-platform index) only the manifest for the platform, under the tag, as
//! docker and nerdctl push such an image. A manifest names its blobs with their digests and media
//! types, so blobs go as stored: an uncompressed layer (`lcd import`, `lcd commit`) is pushed
//! uncompressed under the uncompressed type its manifest gives it, and the manifest pushed refers
//! exactly to the blobs pushed. Non-distributable ("foreign") layers are not pushed, as docker.
//!
//! Order: the blobs (configs and layers, a few at a time, each skipped when a `HEAD` finds it in
//! the repository), then an index's manifests by digest, then the top document by tag: a
//! registry accepts a manifest only when what it references is there. Nothing is written to
//! containerd, so a failure leaves nothing behind here (the registry drops unfinished uploads).

mod upload;

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use libcontainerd::{Client, Error, Result};
use tokio::sync::Semaphore;

use crate::content::{info, read_small};
use crate::grpc::Services;
use crate::media;
use crate::oci::{parse, Descriptor, Index, Manifest};
use crate::platform::Platform;
use crate::reference::{Reference, DEFAULT_TAG};
use crate::registry::auth::credentials_for;
use crate::registry::http::{Access, Registry};
use crate::registry::Credentials;
use crate::resolve::{resolve, unknown_type};
use crate::store::{find_name, get_record};

/// Blobs uploaded at once by default (docker's `max-concurrent-uploads` is 5).
pub const DEFAULT_CONCURRENCY: usize = 5;

/// Where a layer's upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// Waiting for an upload slot.
    Waiting,
    /// Bytes are going out; `done` counts those sent.
    Pushing,
    /// The repository had it already.
    Exists,
    /// Uploaded, and the registry accepted its digest.
    Done,
}

/// One report about one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushProgress {
    /// The layer's digest.
    pub digest: String,
    /// Its position among the layers pushed, base first.
    pub layer: usize,
    /// Bytes sent so far.
    pub done: u64,
    /// Its size.
    pub total: u64,
    /// Where it is.
    pub state: PushState,
}

/// Called with each [`PushProgress`] report, from several tasks at once.
pub type PushProgressFn = Arc<dyn Fn(&PushProgress) + Send + Sync>;

/// How to push.
#[derive(Clone)]
pub struct PushOptions {
    /// The platform whose manifest is pushed when the store lacks some of an index's manifests
    /// (default: this host's).
    pub platform: Platform,
    /// Speak plain HTTP to the registry. Registries on loopback get HTTP anyway when HTTPS fails.
    pub plain_http: bool,
    /// Credentials to use instead of docker's `config.json`.
    pub credentials: Option<Credentials>,
    /// The directory of docker's `config.json` (default: `$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
    /// Blobs uploaded at once (at least 1).
    pub concurrency: usize,
    /// Per-layer progress reports.
    pub progress: Option<PushProgressFn>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            platform: Platform::host(),
            plain_http: false,
            credentials: None,
            docker_config: None,
            concurrency: DEFAULT_CONCURRENCY,
            progress: None,
        }
    }
}

impl fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushOptions")
            .field("platform", &self.platform)
            .field("plain_http", &self.plain_http)
            .field("credentials", &self.credentials)
            .field("docker_config", &self.docker_config)
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .finish()
    }
}

/// A pushed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// The stored name pushed (`127.0.0.1:5000/app:1`).
    pub name: String,
    /// The tag (or digest) it was pushed under.
    pub reference: String,
    /// The manifest or index pushed under that tag: its media type, digest and size.
    pub pushed: Descriptor,
    /// Blob bytes uploaded (blobs the repository had do not count).
    pub uploaded: u64,
}

/// What a push sends, planned (and every blob checked to be in the content store) before the
/// registry is contacted.
struct Plan {
    /// Configs and layers, each once, in upload order; layers carry their number for progress.
    blobs: Vec<(Descriptor, Option<usize>)>,
    /// An index's manifests, pushed by digest before it.
    children: Vec<(Descriptor, Vec<u8>)>,
    /// What the tag names.
    top: (Descriptor, Vec<u8>),
}

/// Push image `image` (a stored name or a reference: `127.0.0.1:5000/app:1`) to the registry its
/// name names.
pub async fn push(client: &Client, image: &str, options: &PushOptions) -> Result<PushedImage> {
    let services = Services::new(client)?;
    let name = find_name(&services, image)
        .await
        .map_err(|e| e.context("push"))?;
    let context = format!("push {name}");
    let reference = Reference::parse(&name).map_err(|e| e.context(&context))?;
    let record = get_record(&services, &name).await?;
    let plan = plan(&services, &record.target, &options.platform, &name)
        .await
        .map_err(|e| e.context(&context))?;
    let tag = reference
        .digest()
        .or(reference.tag())
        .unwrap_or(DEFAULT_TAG)
        .to_string();
    if reference.digest().is_some_and(|d| d != plan.top.0.digest) {
        return Err(Error::invalid(format!(
            "{context}: the store lacks some of the index's manifests, so only the one for {} could be pushed, which has another digest; push it by tag",
            options.platform
        )));
    }
    let result = async {
        let credentials = credentials_for(
            options.credentials.as_ref(),
            options.docker_config.as_deref(),
            reference.domain(),
        )
        .await?;
        let registry = Registry::connect(&reference, options.plain_http, credentials)
            .await?
            .with_access(Access::Push);
        let registry = Arc::new(registry);
        let uploaded = blobs(&services, &registry, &plan, options).await?;
        for (descriptor, data) in &plan.children {
            upload::manifest(&registry, descriptor, data, &descriptor.digest).await?;
        }
        let (top, data) = &plan.top;
        upload::manifest(&registry, top, data, &tag).await?;
        Ok::<_, Error>(uploaded)
    }
    .await;
    let uploaded = result.map_err(|e| e.context(&context))?;
    let (top, _) = plan.top;
    Ok(PushedImage {
        name,
        reference: tag,
        pushed: Descriptor::new(&top.media_type, &top.digest, top.size.max(0) as u64),
        uploaded,
    })
}

/// What to send for `target`: see the module's documentation.
async fn plan(
    services: &Services,
    target: &Descriptor,
    platform: &Platform,
    image: &str,
) -> Result<Plan> {
    let mut plan = Plan {
        blobs: vec![],
        children: vec![],
        top: (target.clone(), vec![]),
    };
    if media::is_manifest(&target.media_type) {
        plan.top.1 = read_small(services, "manifest", &target.digest).await?;
        let manifest = parse_manifest(&plan.top.1, target, image)?;
        add_blobs(services, &mut plan.blobs, &manifest, image, true).await?;
        return Ok(plan);
    }
    if !media::is_index(&target.media_type) {
        return Err(unknown_type(image, "manifest", target));
    }
    let data = read_small(services, "index", &target.digest).await?;
    let index: Index = parse(&format!("index {} of {image}", target.digest), &data)?;
    if let Some(children) = whole_index(services, &index, image).await? {
        for (descriptor, bytes, manifest) in children {
            add_blobs(services, &mut plan.blobs, &manifest, image, true).await?;
            plan.children.push((descriptor, bytes));
        }
        plan.top.1 = data;
        return Ok(plan);
    }
    // Some platforms are missing: the platform's manifest alone, as docker pushes it.
    let resolved = resolve(services, target, platform, image).await?;
    let descriptor = resolved.manifest_descriptor;
    let bytes = read_small(services, "manifest", &descriptor.digest).await?;
    add_blobs(services, &mut plan.blobs, &resolved.manifest, image, true).await?;
    plan.top = (
        Descriptor::new(
            &descriptor.media_type,
            &descriptor.digest,
            bytes.len() as u64,
        ),
        bytes,
    );
    Ok(plan)
}

/// Every manifest of `index` with its bytes, if the content store has them all and their blobs;
/// `None` as soon as something is missing (or an index nests another, which we do not push).
async fn whole_index(
    services: &Services,
    index: &Index,
    image: &str,
) -> Result<Option<Vec<(Descriptor, Vec<u8>, Manifest)>>> {
    let mut children = vec![];
    for descriptor in &index.manifests {
        if !media::is_manifest(&descriptor.media_type) || !stored(services, descriptor).await? {
            return Ok(None);
        }
        let bytes = read_small(services, "manifest", &descriptor.digest).await?;
        let manifest = parse_manifest(&bytes, descriptor, image)?;
        let mut blobs = vec![];
        if add_blobs(services, &mut blobs, &manifest, image, false)
            .await
            .is_err()
        {
            return Ok(None);
        }
        children.push((descriptor.clone(), bytes, manifest));
    }
    Ok(Some(children))
}

fn parse_manifest(data: &[u8], descriptor: &Descriptor, image: &str) -> Result<Manifest> {
    let manifest: Manifest = parse(&format!("manifest {} of {image}", descriptor.digest), data)?;
    if !media::is_config(&manifest.config.media_type) {
        return Err(unknown_type(image, "config", &manifest.config));
    }
    Ok(manifest)
}

/// Whether the content store has all of `descriptor`'s bytes.
async fn stored(services: &Services, descriptor: &Descriptor) -> Result<bool> {
    crate::digest::check(&descriptor.digest, "push")?;
    Ok(info(services, &descriptor.digest)
        .await?
        .is_some_and(|i| i.size == descriptor.size))
}

/// A layer the registry must not be sent (docker's "foreign" layers, OCI's non-distributable).
fn non_distributable(media_type: &str) -> bool {
    media_type.contains("foreign") || media_type.contains("nondistributable")
}

/// Add `manifest`'s config and layers to `blobs` (each once), failing on one the content store
/// lacks. `number` layers for progress reports.
async fn add_blobs(
    services: &Services,
    blobs: &mut Vec<(Descriptor, Option<usize>)>,
    manifest: &Manifest,
    image: &str,
    number: bool,
) -> Result<()> {
    let mut seen: HashSet<String> = blobs.iter().map(|(d, _)| d.digest.clone()).collect();
    let mut layer_number = blobs.iter().filter(|(_, n)| n.is_some()).count();
    for layer in &manifest.layers {
        if !media::is_layer(&layer.media_type) && !non_distributable(&layer.media_type) {
            return Err(unknown_type(image, "layer", layer));
        }
        if non_distributable(&layer.media_type) || !seen.insert(layer.digest.clone()) {
            continue;
        }
        if !stored(services, layer).await? {
            return Err(Error::not_found(format!(
                "layer {} is not in the content store (or not whole)",
                layer.digest
            )));
        }
        blobs.push((layer.clone(), number.then_some(layer_number)));
        layer_number += 1;
    }
    let config = &manifest.config;
    if seen.insert(config.digest.clone()) {
        if !stored(services, config).await? {
            return Err(Error::not_found(format!(
                "config {} is not in the content store",
                config.digest
            )));
        }
        blobs.push((config.clone(), None));
    }
    Ok(())
}

/// Upload the plan's blobs, `options.concurrency` at a time. Returns the bytes uploaded.
async fn blobs(
    services: &Services,
    registry: &Arc<Registry>,
    plan: &Plan,
    options: &PushOptions,
) -> Result<u64> {
    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (descriptor, layer) in &plan.blobs {
        let reporter = upload::Reporter {
            progress: layer.and(options.progress.clone()),
            digest: descriptor.digest.clone(),
            layer: layer.unwrap_or(0),
            total: descriptor.size.max(0) as u64,
        };
        reporter.report(PushState::Waiting, 0);
        let (services, registry, slots) = (services.clone(), registry.clone(), slots.clone());
        let descriptor = descriptor.clone();
        tasks.spawn(async move {
            // The semaphore lives as long as this function: acquiring cannot fail.
            let _slot = slots.acquire_owned().await;
            upload::blob(&services, &registry, &descriptor, &reporter).await
        });
    }
    let mut uploaded = 0;
    while let Some(joined) = tasks.join_next().await {
        // The first failure ends the push; dropping the set aborts the other uploads.
        uploaded += joined.map_err(|e| Error::internal(format!("a blob upload failed: {e}")))??;
    }
    Ok(uploaded)
}
