//! OCI image layouts (`oci-layout` + `index.json`, also what docker 25+ saves): the index names
//! the images; we check that every blob the chosen platform needs is there and of a known type,
//! and label manifests and indexes for the garbage collector.

use std::collections::HashMap;

use libcontainerd::{Error, Result};
use serde::Deserialize;

use super::archive::Archive;
use super::{docker, Candidate};
use crate::content::{info, read_small, set_labels};
use crate::gc::{index_labels, manifest_labels};
use crate::grpc::Services;
use crate::media;
use crate::oci::{
    parse, Descriptor, Index, Manifest, CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION,
};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::resolve::{choose, unknown_type};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayout {
    image_layout_version: String,
}

/// The images of an OCI layout, checked and labelled.
pub(crate) async fn images(
    services: &Services,
    archive: &Archive,
    platform: &Platform,
    base_name: Option<&str>,
) -> Result<Vec<Candidate>> {
    let layout = archive.metadata.get("oci-layout").ok_or_else(|| {
        Error::invalid("import: the archive has index.json but no oci-layout file")
    })?;
    let layout: OciLayout = parse("oci-layout of the archive", layout)?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(Error::invalid(format!(
            "import: unsupported OCI layout version {:?}",
            layout.image_layout_version
        )));
    }
    let index: Index = parse(
        "index.json of the archive",
        archive.metadata.get("index.json").map_or(&[][..], |d| d),
    )?;
    // docker 25+ also writes manifest.json: its RepoTags name images the index leaves unnamed.
    let tags_by_config = match archive.metadata.get("manifest.json") {
        Some(data) => tags_by_config(archive, data)?,
        None => HashMap::new(),
    };
    let mut candidates = Vec::new();
    for descriptor in &index.manifests {
        let mut names = names(descriptor, base_name)?;
        let image = names
            .first()
            .cloned()
            .unwrap_or_else(|| format!("image {}", descriptor.digest));
        let config_digest = check(services, descriptor, platform, &image).await?;
        if names.is_empty() {
            names = tags_by_config
                .get(&config_digest)
                .cloned()
                .unwrap_or_default();
        }
        candidates.push(Candidate {
            names,
            target: descriptor.clone(),
        });
    }
    if candidates.is_empty() {
        return Err(Error::invalid(
            "import: index.json of the archive lists no images",
        ));
    }
    Ok(candidates)
}

/// An index entry's names: containerd's full-name annotation, else `ref.name` when it is a full
/// reference, or a tag for `base_name`.
fn names(descriptor: &Descriptor, base_name: Option<&str>) -> Result<Vec<String>> {
    let annotation = |key| descriptor.annotations.get(key).filter(|v| !v.is_empty());
    let name = match (
        annotation(CONTAINERD_NAME_ANNOTATION),
        annotation(REF_NAME_ANNOTATION),
    ) {
        (Some(full), _) => Some(full.clone()),
        (None, Some(name)) if name.contains(['/', ':', '@']) => Some(name.clone()),
        (None, Some(tag)) => base_name.map(|base| format!("{base}:{tag}")),
        (None, None) => None,
    };
    name.map(|n| {
        Reference::parse(&n)
            .map(|r| vec![r.to_string()])
            .map_err(|e| e.context("import: index.json"))
    })
    .unwrap_or(Ok(vec![]))
}

fn tags_by_config(archive: &Archive, data: &[u8]) -> Result<HashMap<String, Vec<String>>> {
    let mut tags = HashMap::new();
    for entry in docker::entries(data)? {
        if let Some(file) = archive.file(&entry.config) {
            tags.insert(file.digest.clone(), docker::names(&entry)?);
        }
    }
    Ok(tags)
}

/// Check the tree under `descriptor` for `platform`: known types, every blob present, GC labels
/// set. Returns the chosen manifest's config digest.
async fn check(
    services: &Services,
    descriptor: &Descriptor,
    platform: &Platform,
    image: &str,
) -> Result<String> {
    let mut descriptor = descriptor.clone();
    for _ in 0..4 {
        if media::is_index(&descriptor.media_type) {
            present(services, &descriptor, image).await?;
            let data =
                read_small(services, &format!("index of {image}"), &descriptor.digest).await?;
            let index: Index = parse(&format!("index {} of {image}", descriptor.digest), &data)?;
            set_labels(services, &descriptor.digest, &index_labels(&index)).await?;
            descriptor = choose(&index, platform, image)?.clone();
            continue;
        }
        if !media::is_manifest(&descriptor.media_type) {
            return Err(unknown_type(image, "manifest", &descriptor).context("import"));
        }
        present(services, &descriptor, image).await?;
        let data = read_small(
            services,
            &format!("manifest of {image}"),
            &descriptor.digest,
        )
        .await?;
        let manifest: Manifest =
            parse(&format!("manifest {} of {image}", descriptor.digest), &data)?;
        if !media::is_config(&manifest.config.media_type) {
            return Err(unknown_type(image, "config", &manifest.config).context("import"));
        }
        present(services, &manifest.config, image).await?;
        for layer in &manifest.layers {
            if !media::is_layer(&layer.media_type) {
                return Err(unknown_type(image, "layer", layer).context("import"));
            }
            present(services, layer, image).await?;
        }
        // The config's platform is the last word (a manifest may have been taken for lack of one).
        crate::resolve::resolve(services, &descriptor, platform, image).await?;
        set_labels(services, &descriptor.digest, &manifest_labels(&manifest)).await?;
        return Ok(manifest.config.digest);
    }
    Err(Error::invalid(format!(
        "import {image}: indexes nest too deeply to find a manifest"
    )))
}

/// The blob must be in the content store (from this archive or stored before), with its size.
async fn present(services: &Services, descriptor: &Descriptor, image: &str) -> Result<()> {
    crate::digest::check(&descriptor.digest, &format!("import {image}"))?;
    match info(services, &descriptor.digest).await? {
        Some(info) if info.size == descriptor.size => Ok(()),
        Some(info) => Err(Error::invalid(format!(
            "import {image}: blob {} is {} bytes, its descriptor says {}",
            descriptor.digest, info.size, descriptor.size
        ))),
        None => Err(Error::not_found(format!(
            "import {image}: missing blob {} ({}): the archive does not have it",
            descriptor.digest, descriptor.media_type
        ))),
    }
}
