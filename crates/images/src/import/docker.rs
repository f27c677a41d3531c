//! docker-save archives: `manifest.json` lists `{Config, RepoTags, Layers}` by path. We build a
//! docker schema 2 manifest for each (layer media types from the layers' magic numbers), store it
//! with its GC labels, and name it by its RepoTags.

use libcontainerd::{Error, Result};
use serde::Deserialize;

use super::archive::Archive;
use super::Candidate;
use crate::content::{read_small, write_bytes};
use crate::gc::manifest_labels;
use crate::grpc::Services;
use crate::media::{self, Compression};
use crate::oci::{parse, to_json, Descriptor, ImageConfigFile, Manifest};
use crate::platform::Platform;
use crate::reference::Reference;

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Entry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub layers: Vec<String>,
}

/// Parse `manifest.json`.
pub(crate) fn entries(data: &[u8]) -> Result<Vec<Entry>> {
    parse("manifest.json of the archive", data)
}

/// Normalise RepoTags (`busybox:latest` -> `docker.io/library/busybox:latest`).
pub(crate) fn names(entry: &Entry) -> Result<Vec<String>> {
    entry
        .repo_tags
        .iter()
        .flatten()
        .map(|tag| {
            Reference::parse(tag)
                .map(|r| r.to_string())
                .map_err(|e| e.context("import: manifest.json"))
        })
        .collect()
}

/// Build, store and label a manifest for each entry of `manifest.json`.
pub(crate) async fn images(
    services: &Services,
    archive: &Archive,
    manifest_json: &[u8],
    platform: &Platform,
) -> Result<Vec<Candidate>> {
    let mut candidates = Vec::new();
    for entry in entries(manifest_json)? {
        let names = names(&entry)?;
        let image = names
            .first()
            .cloned()
            .unwrap_or_else(|| format!("image with config {}", entry.config));
        let target = store_manifest(services, archive, &entry, platform, &image).await?;
        candidates.push(Candidate { names, target });
    }
    Ok(candidates)
}

async fn store_manifest(
    services: &Services,
    archive: &Archive,
    entry: &Entry,
    platform: &Platform,
    image: &str,
) -> Result<Descriptor> {
    let missing = |path: &str| {
        Error::not_found(format!(
            "import {image}: manifest.json names {path}, which the archive does not have"
        ))
    };
    let config_file = archive
        .file(&entry.config)
        .ok_or_else(|| missing(&entry.config))?;
    let data = read_small(services, &format!("config of {image}"), &config_file.digest).await?;
    let config: ImageConfigFile = parse(&format!("config {} of {image}", entry.config), &data)?;
    if !platform.matches(&config.platform()) {
        return Err(Error::not_found(format!(
            "no manifest for {platform} in {image}; it has {}",
            config.platform()
        )));
    }
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != entry.layers.len() {
        return Err(Error::invalid(format!(
            "import {image}: manifest.json lists {} layers but its config has {} diff IDs",
            entry.layers.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::with_capacity(entry.layers.len());
    for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
        let file = archive.file(path).ok_or_else(|| missing(path))?;
        let compression = Compression::detect(&file.head).ok_or_else(|| {
            Error::invalid(format!(
                "import {image}: layer {path} has an unknown media type: it is neither a tar nor gzip or zstd compressed"
            ))
        })?;
        // An uncompressed layer is its own diff: a wrong diff ID is caught now, not at unpack.
        if compression == Compression::None && file.digest != *diff_id {
            return Err(Error::invalid(format!(
                "import {image}: layer {path}: digest mismatch: the config expects {diff_id}, content is {}",
                file.digest
            )));
        }
        layers.push(Descriptor::new(
            compression.docker_layer_type(),
            &file.digest,
            file.size,
        ));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::DOCKER_MANIFEST.to_string()),
        config: Descriptor::new(media::DOCKER_CONFIG, &config_file.digest, config_file.size),
        layers,
        annotations: Default::default(),
    };
    let json = to_json("manifest", &manifest)?;
    let written = write_bytes(
        services,
        &format!("manifest of {image}"),
        &json,
        manifest_labels(&manifest),
    )
    .await?;
    Ok(Descriptor::new(
        media::DOCKER_MANIFEST,
        &written.digest,
        written.size,
    ))
}
