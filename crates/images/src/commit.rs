//! `docker commit`: a new image made of a container's changes on top of the image it was made
//! from, in three steps an engine can put its own work between (pausing the container around the
//! diff):
//!
//! 1. [`Commit::begin`] finds the base image (the one whose top chain ID is the parent of the
//!    container's snapshot: the image the container was made from, even if its name has moved
//!    since) and takes a lease;
//! 2. [`Commit::diff`] has containerd's Diff service compare a read-only view of that parent with
//!    the container's snapshot (containerd 1.6 `rootfs.CreateDiff`): a gzip layer, with whiteouts
//!    for deleted files, written to the content store under the lease and labelled with its diff
//!    ID (`containerd.io/uncompressed`);
//! 3. [`Commit::finish`] writes the config (the base's, with the container's defaults and the
//!    `--change`s, a history entry, the new diff ID), a manifest of the base's media type family,
//!    the image record (a name given, or the image's ID as its only name, which lists as
//!    `<none>`), and unpacks the new layer onto the base's snapshots so that containers start from
//!    it at once. A name taken from another image leaves that image known by its ID, as docker
//!    keeps a replaced image as a dangling one.
//!
//! Everything made is held by the lease until the record and GC labels hold it; a failure at any
//! step (or [`Commit::abort`]) deletes the lease with a synchronous collection, and undoes the
//! records, so nothing stays.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::snapshots::{StatSnapshotRequest, ViewSnapshotRequest};
use containerd_client::services::v1::DiffRequest;
use libcontainerd::{Client, Error, Result, Snapshot};
use serde_json::{Map, Value};

use crate::change::{self, Change};
use crate::config::ImageConfig;
use crate::content::{info, read_small, set_labels, write_bytes};
use crate::digest::{chain_ids, Hasher};
use crate::gc;
use crate::grpc::Services;
use crate::lease::{unique_name, Lease};
use crate::media;
use crate::oci::{ContainerConfig, Descriptor, Manifest};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::resolve::{resolve, Resolved};
use crate::snapshots::remove;
use crate::store::{self, Record};
use crate::unpack::unpack;

/// How long the commit's lease outlives a client that crashed mid-way.
const COMMIT_LEASE_TTL: Duration = Duration::from_secs(3600);

/// The keys of an image config's `config` object that a commit sets from the container; others
/// (Healthcheck, OnBuild, Shell...) are kept from the base image.
const CONFIG_KEYS: [&str; 9] = [
    "User",
    "Env",
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ExposedPorts",
    "Volumes",
];

/// What `docker commit`'s options give.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPO[:TAG]` (`latest` by default); `None` makes an image known only by its ID.
    pub reference: Option<String>,
    /// `-a`: the author, in the config and its history entry.
    pub author: String,
    /// `-m`: the history entry's comment.
    pub comment: String,
    /// The history entry's CREATED BY (docker: the container's Cmd, joined by spaces).
    pub created_by: String,
    /// The container's defaults as it was created (the base image's, with `run`'s overrides).
    pub config: ContainerConfig,
    /// `-c`: applied to `config` in order.
    pub changes: Vec<Change>,
}

/// The image a commit made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// docker's image ID: `sha256:<config digest>`.
    pub id: String,
    /// Its name: the reference, or the ID for an image without one.
    pub name: String,
    /// The new layer (gzip).
    pub layer: Descriptor,
    /// The new layer's diff ID.
    pub diff_id: String,
    /// The ID of the image the reference named before, if nothing else names it now (it stays,
    /// known by its ID alone).
    pub untagged: Option<String>,
}

/// A commit in progress (see the module's documentation).
#[derive(Debug)]
pub struct Commit {
    client: Client,
    services: Services,
    lease: Option<Lease>,
    snapshotter: String,
    key: String,
    parent: String,
    base_name: String,
    base: Resolved,
    layer: Option<(Descriptor, String)>,
}

impl Commit {
    /// Start committing the container on `snapshot` (its snapshot made from an image).
    /// `snapshot.image` names the image it was made from, which is checked against the
    /// snapshot's parent; when the name has moved to another image, the stored images are
    /// searched for the right one.
    pub async fn begin(client: &Client, snapshot: &Snapshot) -> Result<Commit> {
        let services = Services::new(client)?;
        let key = &snapshot.key;
        let info = services
            .snapshots()
            .stat(services.request(StatSnapshotRequest {
                snapshotter: snapshot.snapshotter.clone(),
                key: key.clone(),
            }))
            .await
            .map_err(|s| libcontainerd::raw::error_from_status(format!("stat snapshot {key}"), s))?
            .into_inner()
            .info
            .ok_or_else(|| Error::internal(format!("stat snapshot {key}: no info")))?;
        if info.parent.is_empty() {
            return Err(Error::invalid(format!(
                "snapshot {key} has no parent: it was not made from an image"
            )));
        }
        let (base_name, base) = find_base(&services, snapshot.image.as_deref(), &info.parent)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "the image the container was made from ({}) is no longer stored: a commit needs its config",
                    snapshot.image.as_deref().unwrap_or("unknown")
                ))
            })?;
        let lease = Lease::create_with(&services, "commit", COMMIT_LEASE_TTL).await?;
        Ok(Commit {
            client: client.clone(),
            services,
            lease: Some(lease),
            snapshotter: snapshot.snapshotter.clone(),
            key: key.clone(),
            parent: info.parent,
            base_name,
            base,
            layer: None,
        })
    }

    /// The name of the image the container was made from (as stored).
    pub fn base_image(&self) -> &str {
        &self.base_name
    }

    /// Its container defaults.
    pub fn base_config(&self) -> ImageConfig {
        ImageConfig::from_file(&self.base.config)
    }

    /// Make the layer: the container's changes against its image, as containerd's Diff service
    /// computes them. On error the caller should [`Commit::abort`].
    pub async fn diff(&mut self) -> Result<()> {
        let leased = self.leased()?;
        let view = unique_name("commit-parent");
        let left = leased
            .snapshots()
            .view(leased.request(ViewSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: view.clone(),
                parent: self.parent.clone(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(|s| libcontainerd::raw::error_from_status("view the image's snapshot", s))?
            .into_inner()
            .mounts;
        let made = async {
            let right = crate::rootfs::mounts(&leased, &self.snapshotter, &self.key).await?;
            let layer = leased
                .diff()
                .diff(leased.request(DiffRequest {
                    left,
                    right,
                    media_type: media::OCI_LAYER_GZIP.to_string(),
                    r#ref: unique_name("lcd-commit"),
                    labels: HashMap::new(),
                    source_date_epoch: None,
                }))
                .await
                .map_err(|s| {
                    libcontainerd::raw::error_from_status(
                        format!("diff snapshot {} against its image", self.key),
                        s,
                    )
                })?
                .into_inner()
                .diff
                .ok_or_else(|| Error::internal("diff: containerd returned no descriptor"))?;
            let layer = Descriptor::from_proto(&layer);
            let diff_id = diff_id(&leased, &layer).await?;
            Ok::<_, Error>((layer, diff_id))
        }
        .await;
        remove(&leased, &self.snapshotter, &view).await;
        self.layer = Some(made?);
        Ok(())
    }

    /// Write the config, manifest and record, and unpack the new layer. The lease goes either
    /// way: on success the image holds what it made, on failure nothing stays.
    pub async fn finish(mut self, options: &CommitOptions) -> Result<Committed> {
        let mut records = Vec::new();
        let result = self.finish_leased(options, &mut records).await;
        let lease = self.lease.take();
        match result {
            Ok(committed) => {
                if let Some(lease) = lease {
                    lease.release().await?;
                }
                Ok(committed)
            }
            Err(e) => {
                store::undo(&self.services.unleased(), records).await;
                if let Some(lease) = lease {
                    lease.discard().await;
                }
                Err(e)
            }
        }
    }

    /// Give up: what was made goes with the lease.
    pub async fn abort(mut self) {
        if let Some(lease) = self.lease.take() {
            lease.discard().await;
        }
    }

    fn leased(&self) -> Result<Services> {
        match &self.lease {
            Some(lease) => lease.services(),
            None => Err(Error::internal("the commit's lease is gone")),
        }
    }

    async fn finish_leased(
        &self,
        options: &CommitOptions,
        records: &mut Vec<Record>,
    ) -> Result<Committed> {
        let leased = self.leased()?;
        let (layer, diff_id) = self
            .layer
            .clone()
            .ok_or_else(|| Error::internal("commit: finish before diff"))?;
        let name = match &options.reference {
            Some(reference) => Some(tag_name(reference)?),
            None => None,
        };
        let base_config = read_small(
            &leased,
            &format!("config of {}", self.base_name),
            &self.base.manifest.config.digest,
        )
        .await?;
        let mut config = options.config.clone();
        change::apply(&mut config, &options.changes);
        let created = libcontainerd::time::rfc3339(SystemTime::now());
        let config = new_config(&base_config, &config, &diff_id, &created, options)?;
        let config_type = self.base.manifest.config.media_type.clone();
        let written = write_bytes(&leased, "image config", &config, HashMap::new()).await?;
        let id = written.digest.clone();
        let docker = self.base.manifest_descriptor.media_type == media::DOCKER_MANIFEST;
        let mut new_layer = layer.clone();
        if docker {
            // The same gzip bytes, under docker's name for them.
            new_layer.media_type = media::DOCKER_LAYER_GZIP.to_string();
        }
        let mut layers = self.base.manifest.layers.clone();
        layers.push(new_layer);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(
                if docker {
                    media::DOCKER_MANIFEST
                } else {
                    media::OCI_MANIFEST
                }
                .to_string(),
            ),
            config: Descriptor::new(&config_type, &id, written.size),
            layers,
            annotations: Default::default(),
        };
        let manifest_type = manifest.media_type.clone().unwrap_or_default();
        let bytes = crate::oci::to_json("manifest", &manifest)?;
        let written =
            write_bytes(&leased, "manifest", &bytes, gc::manifest_labels(&manifest)).await?;
        let target = Descriptor::new(&manifest_type, &written.digest, written.size);
        let name = name.unwrap_or_else(|| store::id_name(&id));
        let untagged = store::name(&self.services.unleased(), &name, &target, records).await?;
        let platform = self.base.config.platform();
        unpack(&self.client, &name, &self.snapshotter, &platform).await?;
        Ok(Committed {
            id,
            name,
            layer,
            diff_id,
            untagged,
        })
    }
}

/// The stored name for a commit's `REPO[:TAG]`: `latest` when no tag is given; a digest is refused
/// (check it before anything is made).
pub fn tag_name(reference: &str) -> Result<String> {
    let parsed = Reference::parse(reference)?;
    if parsed.digest().is_some() {
        return Err(Error::invalid(format!(
            "invalid reference {reference:?}: refusing to create a tag with a digest reference"
        )));
    }
    match parsed.tag() {
        Some(_) => Ok(parsed.to_string()),
        None => Ok(parsed.with_tag(crate::reference::DEFAULT_TAG)?.to_string()),
    }
}

/// The image that was made from: `hint` if its top chain ID is `parent`, else any stored image
/// whose is (the name may have moved to another image since the container was made).
async fn find_base(
    services: &Services,
    hint: Option<&str>,
    parent: &str,
) -> Result<Option<(String, Resolved)>> {
    let platform = Platform::host();
    let tops = |resolved: &Resolved| {
        chain_ids(&resolved.config.rootfs.diff_ids)
            .last()
            .map(String::as_str)
            == Some(parent)
    };
    if let Some(hint) = hint {
        if let Ok(record) = store::get_record(services, hint).await {
            if let Ok(resolved) = resolve(services, &record.target, &platform, hint).await {
                if tops(&resolved) {
                    return Ok(Some((record.name, resolved)));
                }
            }
        }
    }
    let mut records = store::list_records(services).await?;
    // A name before an ID alias.
    records.sort_by_key(|r| store::is_id_name(&r.name));
    for record in records {
        if let Ok(resolved) = resolve(services, &record.target, &platform, &record.name).await {
            if tops(&resolved) {
                return Ok(Some((record.name, resolved)));
            }
        }
    }
    Ok(None)
}

/// The new image config: the base's (unknown fields kept), with the container's defaults, the
/// new layer's diff ID, and a history entry.
fn new_config(
    base: &[u8],
    container: &ContainerConfig,
    diff_id: &str,
    created: &str,
    options: &CommitOptions,
) -> Result<Vec<u8>> {
    let mut root: Map<String, Value> = crate::oci::parse("the base image's config", base)?;
    let mut config = match root.remove("config") {
        Some(Value::Object(config)) => config,
        _ => Map::new(),
    };
    for key in CONFIG_KEYS {
        config.remove(key);
    }
    if let Value::Object(fields) = serde_json::to_value(container)
        .map_err(|e| Error::internal(format!("serialise the container config: {e}")))?
    {
        config.extend(fields);
    }
    root.insert("config".into(), Value::Object(config));
    root.insert("created".into(), created.into());
    // These describe the base's own build, not this image.
    root.remove("container");
    root.remove("container_config");
    if options.author.is_empty() {
        root.remove("author");
    } else {
        root.insert("author".into(), options.author.clone().into());
    }
    let mut diff_ids = match root.remove("rootfs") {
        Some(Value::Object(mut rootfs)) => match rootfs.remove("diff_ids") {
            Some(Value::Array(ids)) => ids,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    diff_ids.push(diff_id.into());
    root.insert(
        "rootfs".into(),
        serde_json::json!({"type": "layers", "diff_ids": diff_ids}),
    );
    let mut entry = Map::new();
    entry.insert("created".into(), created.into());
    if !options.author.is_empty() {
        entry.insert("author".into(), options.author.clone().into());
    }
    entry.insert("created_by".into(), options.created_by.clone().into());
    if !options.comment.is_empty() {
        entry.insert("comment".into(), options.comment.clone().into());
    }
    let mut history = match root.remove("history") {
        Some(Value::Array(history)) => history,
        _ => Vec::new(),
    };
    history.push(Value::Object(entry));
    root.insert("history".into(), Value::Array(history));
    crate::oci::to_json("image config", &root)
}

/// The layer's diff ID: the label containerd's differ sets; computed from the blob when the blob
/// was stored before without it (the differ then keeps the old blob's labels).
async fn diff_id(services: &Services, layer: &Descriptor) -> Result<String> {
    let labels = info(services, &layer.digest)
        .await?
        .map(|i| i.labels)
        .unwrap_or_default();
    if let Some(diff_id) = labels.get(gc::UNCOMPRESSED) {
        return Ok(diff_id.clone());
    }
    let diff_id = uncompressed_digest(services, &layer.digest).await?;
    let label = HashMap::from([(gc::UNCOMPRESSED.to_string(), diff_id.clone())]);
    set_labels(services, &layer.digest, &label).await?;
    Ok(diff_id)
}

/// sha256 of a gzip blob's decompressed bytes, streamed from the content store.
async fn uncompressed_digest(services: &Services, digest: &str) -> Result<String> {
    let context = || format!("read layer {digest} from the content store");
    let mut stream = crate::content::read_stream(services, digest, &context()).await?;
    let mut decoder = flate2::write::GzDecoder::new(HashingSink::default());
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| libcontainerd::raw::error_from_status(context(), s))?
    {
        decoder
            .write_all(&chunk.data)
            .map_err(|e| Error::io(format!("decompress layer {digest}"), e))?;
    }
    let sink = decoder
        .finish()
        .map_err(|e| Error::io(format!("decompress layer {digest}"), e))?;
    Ok(sink.0.digest())
}

/// A writer that only hashes.
#[derive(Default)]
struct HashingSink(Hasher);

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_new_config_keeps_the_base_and_adds_a_layer_and_history() {
        let base = br#"{"architecture":"amd64","os":"linux","created":"2020-01-01T00:00:00Z",
            "author":"old","container":"abc",
            "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Healthcheck":{"Test":["NONE"]}},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},
            "history":[{"created":"2020-01-01T00:00:00Z","comment":"imported"}]}"#;
        let container = ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["echo".into(), "x".into()]),
            ..Default::default()
        };
        let options = CommitOptions {
            author: "me".into(),
            comment: "first".into(),
            created_by: "sh -c touch /f".into(),
            ..Default::default()
        };
        let out = new_config(
            base,
            &container,
            "sha256:bb",
            "2024-05-01T00:00:00Z",
            &options,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["architecture"], "amd64");
        assert_eq!(v["author"], "me");
        assert!(v.get("container").is_none());
        assert_eq!(v["created"], "2024-05-01T00:00:00Z");
        assert_eq!(v["config"]["Env"], serde_json::json!(["PATH=/bin", "A=1"]));
        assert_eq!(v["config"]["Cmd"], serde_json::json!(["echo", "x"]));
        assert_eq!(v["config"]["Healthcheck"]["Test"][0], "NONE");
        assert_eq!(
            v["rootfs"],
            serde_json::json!({"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb"]})
        );
        let history = v["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1]["created_by"], "sh -c touch /f");
        assert_eq!(history[1]["author"], "me");
        assert_eq!(history[1]["comment"], "first");
        assert!(history[1].get("empty_layer").is_none());

        let quiet = CommitOptions::default();
        let out = new_config(base, &ContainerConfig::default(), "sha256:bb", "t", &quiet).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("author").is_none());
        assert!(v["config"].get("Cmd").is_none());
        assert!(v["history"][1].get("comment").is_none());
    }

    #[test]
    fn a_commit_is_named_by_a_tag() {
        assert_eq!(tag_name("app").unwrap(), "docker.io/library/app:latest");
        assert_eq!(tag_name("app:2").unwrap(), "docker.io/library/app:2");
        let digest = format!("app@sha256:{}", "a".repeat(64));
        let e = tag_name(&digest).unwrap_err();
        assert!(e.to_string().contains("digest reference"), "{e}");
        assert!(tag_name("Bad Name").is_err());
    }

    #[test]
    fn gzip_digests_stream() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"layer bytes").unwrap();
        let gz = encoder.finish().unwrap();
        let mut decoder = flate2::write::GzDecoder::new(HashingSink::default());
        for chunk in gz.chunks(3) {
            decoder.write_all(chunk).unwrap();
        }
        let sink = decoder.finish().unwrap();
        assert_eq!(sink.0.digest(), crate::digest::sha256(b"layer bytes"));
    }
}
