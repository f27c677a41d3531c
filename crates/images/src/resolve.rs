//! From an image's target to the manifest and config for one platform.

use libcontainerd::{Error, Result};

use crate::content::read_small;
use crate::grpc::Services;
use crate::media;
use crate::oci::{parse, Descriptor, ImageConfigFile, Index, Manifest};
use crate::platform::Platform;

/// An image's manifest for a platform, with its config.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub manifest_descriptor: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfigFile,
}

/// Pick the descriptor for `platform` among an index's manifests. A manifest without a platform
/// in the index is taken (its config decides later). `image` names the image in the error.
pub(crate) fn choose<'a>(
    index: &'a Index,
    platform: &Platform,
    image: &str,
) -> Result<&'a Descriptor> {
    let found = index.manifests.iter().find(|d| match &d.platform {
        Some(p) => platform.matches(p),
        None => true,
    });
    found.ok_or_else(|| {
        let has: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
            .collect();
        let has = if has.is_empty() {
            "no manifests".to_string()
        } else {
            has.join(", ")
        };
        Error::not_found(format!(
            "no manifest for {platform} in {image}; it has {has}"
        ))
    })
}

/// Follow `target` (an index or a manifest) to the manifest for `platform` and read its config.
pub(crate) async fn resolve(
    services: &Services,
    target: &Descriptor,
    platform: &Platform,
    image: &str,
) -> Result<Resolved> {
    let mut descriptor = target.clone();
    // Indexes may nest; a bound keeps a malicious loop from spinning.
    for _ in 0..4 {
        if media::is_index(&descriptor.media_type) {
            let data =
                read_small(services, &format!("index of {image}"), &descriptor.digest).await?;
            let index: Index = parse(&format!("index {} of {image}", descriptor.digest), &data)?;
            descriptor = choose(&index, platform, image)?.clone();
            continue;
        }
        if !media::is_manifest(&descriptor.media_type) {
            return Err(unknown_type(image, "manifest", &descriptor));
        }
        let what = format!("manifest of {image}");
        let data = read_small(services, &what, &descriptor.digest).await?;
        let manifest: Manifest =
            parse(&format!("manifest {} of {image}", descriptor.digest), &data)?;
        if !media::is_config(&manifest.config.media_type) {
            return Err(unknown_type(image, "config", &manifest.config));
        }
        let data = read_small(
            services,
            &format!("config of {image}"),
            &manifest.config.digest,
        )
        .await?;
        let config: ImageConfigFile = parse(
            &format!("config {} of {image}", manifest.config.digest),
            &data,
        )?;
        if !platform.matches(&config.platform()) {
            return Err(Error::not_found(format!(
                "no manifest for {platform} in {image}; it has {}",
                config.platform()
            )));
        }
        return Ok(Resolved {
            manifest_descriptor: descriptor,
            manifest,
            config,
        });
    }
    Err(Error::invalid(format!(
        "{image}: indexes nest too deeply to find a manifest"
    )))
}

/// The error for a descriptor of a type we cannot use.
pub(crate) fn unknown_type(image: &str, role: &str, descriptor: &Descriptor) -> Error {
    Error::invalid(format!(
        "{image}: unknown media type {:?} for the {role} {}",
        descriptor.media_type, descriptor.digest
    ))
}
