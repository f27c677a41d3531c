//! Import images from a tar archive (a file or stdin): docker-save or OCI image layout, detected
//! by their files, several images per archive.
//!
//! Order matters for the garbage collector: everything is written under a lease; GC labels are set
//! before the image records are created; only then is the lease deleted. On any failure the
//! records this import made are undone and the lease is deleted with a synchronous GC, so nothing
//! half-stored remains.

mod archive;
mod docker;
mod layout;

use std::io::Read;
use std::time::Duration;

use libcontainerd::{Client, Error, Result};

use crate::grpc::Services;
use crate::lease::Lease;
use crate::oci::Descriptor;
use crate::platform::Platform;
use crate::store::{self, Record};

/// How long an import's lease outlives a client that crashed during the import.
const IMPORT_LEASE_TTL: Duration = Duration::from_secs(3600);

/// Prefix of the name an image without a name in the archive is kept under:
/// `dangling@sha256:<manifest>` (moby's containerd store does the same with `moby-dangling`).
pub const DANGLING_PREFIX: &str = "dangling";

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The platform whose manifest must be in the archive (default: this host's).
    pub platform: Platform,
    /// Repository for OCI layouts whose `ref.name` is only a tag, e.g. `docker.io/library/app`.
    pub base_name: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            platform: Platform::host(),
            base_name: None,
        }
    }
}

/// An image the archive held, now in containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The names it was stored under (full, normalised); a `dangling@...` name if it had none.
    pub names: Vec<String>,
    /// Its manifest (or index).
    pub target: Descriptor,
    /// Names that were taken from another image, each with that image's ID: it stays, known by
    /// its ID alone (docker's "renaming the old one ... to empty string").
    pub replaced: Vec<(String, String)>,
}

/// An image found in the archive, before its records exist.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub names: Vec<String>,
    pub target: Descriptor,
}

/// Import every image of the tar archive `reader`.
pub async fn import<R: Read + Send + 'static>(
    client: &Client,
    reader: R,
    options: &ImportOptions,
) -> Result<Vec<ImportedImage>> {
    let services = Services::new(client)?;
    let lease = Lease::create_with(&services, "import", IMPORT_LEASE_TTL).await?;
    let mut made = Vec::new();
    let result = async {
        let candidates = store_archive(&lease.services()?, reader, options).await?;
        name_images(&services, candidates, &mut made).await
    }
    .await;
    match result {
        Ok(imported) => {
            lease.release().await?;
            Ok(imported)
        }
        Err(e) => {
            store::undo(&services, made).await;
            lease.discard().await;
            Err(e)
        }
    }
}

async fn store_archive<R: Read + Send + 'static>(
    services: &Services,
    reader: R,
    options: &ImportOptions,
) -> Result<Vec<Candidate>> {
    let archive = archive::store(services, reader).await?;
    let platform = &options.platform;
    if archive.metadata.contains_key("index.json") {
        layout::images(services, &archive, platform, options.base_name.as_deref()).await
    } else if let Some(manifest_json) = archive.metadata.get("manifest.json") {
        docker::images(services, &archive, manifest_json, platform).await
    } else {
        Err(Error::invalid(
            "import: the archive has neither manifest.json (docker save) nor index.json (OCI image layout)",
        ))
    }
}

/// Create (or point at the new target) a record for each name; records made are kept in `made`
/// so that a failure can undo them.
async fn name_images(
    services: &Services,
    candidates: Vec<Candidate>,
    made: &mut Vec<Record>,
) -> Result<Vec<ImportedImage>> {
    let mut imported = Vec::new();
    for candidate in candidates {
        let names = if candidate.names.is_empty() {
            vec![format!("{DANGLING_PREFIX}@{}", candidate.target.digest)]
        } else {
            candidate.names
        };
        let mut replaced = Vec::new();
        for name in &names {
            if let Some(old) = store::name(services, name, &candidate.target, made).await? {
                replaced.push((name.clone(), old));
            }
        }
        imported.push(ImportedImage {
            names,
            target: candidate.target,
            replaced,
        });
    }
    Ok(imported)
}
