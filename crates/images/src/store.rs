//! containerd's image records: create or retarget, list, inspect, tag and remove.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImagesRequest,
    UpdateImageRequest,
};
use libcontainerd::{Client, Error, ErrorKind, Result};

use crate::config::ImageConfig;
use crate::grpc::Services;
use crate::oci::Descriptor;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::resolve::resolve;

/// A record an operation created or changed, to undo it after a later failure.
#[derive(Debug)]
pub(crate) struct Record {
    name: String,
    /// The target it had before, if it existed.
    previous: Option<Descriptor>,
}

/// The name of an image that has no other: its ID, `sha256:<config digest>` (as containerd's CRI
/// plugin names every image it knows). `docker images` shows it as `<none>:<none>`; `lcd run`,
/// `rmi`, `history`... take it as they take any name.
pub fn id_name(id: &str) -> String {
    id.to_string()
}

/// Whether `name` is an image ID used as a name (see [`id_name`]), not a repository and tag.
pub fn is_id_name(name: &str) -> bool {
    name.strip_prefix(crate::digest::SHA256_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An image record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Full name, e.g. `docker.io/library/busybox:latest`.
    pub name: String,
    /// Its manifest or index.
    pub target: Descriptor,
    /// When the record was created.
    pub created: Option<SystemTime>,
    /// When it was last updated.
    pub updated: Option<SystemTime>,
}

impl ImageRecord {
    fn from_proto(image: Image) -> Result<ImageRecord> {
        let target = image.target.as_ref().ok_or_else(|| {
            Error::internal(format!("image {} has no target in containerd", image.name))
        })?;
        Ok(ImageRecord {
            target: Descriptor::from_proto(target),
            created: image.created_at.map(time),
            updated: image.updated_at.map(time),
            name: image.name,
        })
    }
}

fn time(t: prost_types::Timestamp) -> SystemTime {
    let offset = Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32);
    UNIX_EPOCH + offset
}

/// The record of image `name`.
pub(crate) async fn get_record(services: &Services, name: &str) -> Result<ImageRecord> {
    let response = services
        .images()
        .get(services.request(GetImageRequest {
            name: name.to_string(),
        }))
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => Error::not_found(format!("no such image: {name}")),
            _ => libcontainerd::raw::error_from_status(format!("get image {name}"), s),
        })?;
    let image = response
        .into_inner()
        .image
        .ok_or_else(|| Error::not_found(format!("no such image: {name}")))?;
    ImageRecord::from_proto(image)
}

/// Every image record of the namespace, sorted by name.
pub(crate) async fn list_records(services: &Services) -> Result<Vec<ImageRecord>> {
    let images = services
        .images()
        .list(services.request(ListImagesRequest { filters: vec![] }))
        .await
        .map_err(|s| libcontainerd::raw::error_from_status("list images", s))?
        .into_inner()
        .images;
    let mut records = images
        .into_iter()
        .map(ImageRecord::from_proto)
        .collect::<Result<Vec<_>>>()?;
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

/// Make `name` point at `target`: create the record, or retarget an existing one.
pub(crate) async fn put(services: &Services, name: &str, target: &Descriptor) -> Result<Record> {
    let image = Image {
        name: name.to_string(),
        target: Some(target.to_proto()),
        ..Default::default()
    };
    let created = services
        .images()
        .create(services.request(CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await;
    match created {
        Ok(_) => Ok(Record {
            name: name.to_string(),
            previous: None,
        }),
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            let previous = get_record(services, name).await?.target;
            retarget(services, image).await?;
            Ok(Record {
                name: name.to_string(),
                previous: Some(previous),
            })
        }
        Err(s) => Err(libcontainerd::raw::error_from_status(
            format!("create image {name}"),
            s,
        )),
    }
}

async fn retarget(services: &Services, image: Image) -> Result<()> {
    let name = image.name.clone();
    services
        .images()
        .update(services.request(UpdateImageRequest {
            image: Some(image),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["target".to_string()],
            }),
            source_date_epoch: None,
        }))
        .await
        .map_err(|s| libcontainerd::raw::error_from_status(format!("update image {name}"), s))?;
    Ok(())
}

/// Delete image `name`. With `sync`, containerd collects what only it held (blobs, snapshots)
/// before answering.
pub(crate) async fn delete_record(services: &Services, name: &str, sync: bool) -> Result<()> {
    services
        .images()
        .delete(services.request(DeleteImageRequest {
            name: name.to_string(),
            sync,
            target: None,
        }))
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => Error::not_found(format!("no such image: {name}")),
            _ => libcontainerd::raw::error_from_status(format!("delete image {name}"), s),
        })?;
    Ok(())
}

/// Undo records after a failure: delete the new ones, point the others back. Errors are logged.
pub(crate) async fn undo(services: &Services, records: Vec<Record>) {
    for record in records.into_iter().rev() {
        let result = match &record.previous {
            None => delete_record(services, &record.name, false).await,
            Some(previous) => {
                retarget(
                    services,
                    Image {
                        name: record.name.clone(),
                        target: Some(previous.to_proto()),
                        ..Default::default()
                    },
                )
                .await
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(image = %record.name, error = %e, "undoing an image record"),
        }
    }
}

/// Name `target` `name`, recording what was made in `made` (for [`undo`]). When the name leaves
/// another image that no other name keeps, that image keeps its ID as a name (docker's dangling
/// `<none>:<none>`, which `image prune` removes), named before the name moves so that
/// containerd's collector never sees it unnamed. Returns that image's ID.
pub(crate) async fn name(
    services: &Services,
    name: &str,
    target: &Descriptor,
    made: &mut Vec<Record>,
) -> Result<Option<String>> {
    let untagged = if is_id_name(name) {
        None
    } else {
        match get_record(services, name).await {
            Ok(old) if old.target.digest != target.digest => {
                keep_by_id(services, name, &old.target, made).await?
            }
            Ok(_) => None,
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        }
    };
    made.push(put(services, name, target).await?);
    Ok(untagged)
}

/// Keep the image that name `leaving` is about to be taken from: when no other record names its
/// target, it gets its ID as a name (docker's dangling image), so its content is not collected.
/// Returns that ID.
async fn keep_by_id(
    services: &Services,
    leaving: &str,
    previous: &Descriptor,
    records: &mut Vec<Record>,
) -> Result<Option<String>> {
    let named_elsewhere = list_records(services)
        .await?
        .iter()
        .any(|r| r.name != leaving && r.target.digest == previous.digest);
    if named_elsewhere {
        return Ok(None);
    }
    let id = match resolve(services, previous, &Platform::host(), "the replaced image").await {
        Ok(resolved) => resolved.manifest.config.digest,
        // No manifest for this platform: its target's digest names it instead.
        Err(_) => previous.digest.clone(),
    };
    records.push(put(services, &id_name(&id), previous).await?);
    Ok(Some(id))
}

/// Every image of the client's namespace, sorted by name.
pub async fn list(client: &Client) -> Result<Vec<ImageRecord>> {
    list_records(&Services::new(client)?).await
}

/// The stored name for user input: the name as given if an image has it, else its normalised
/// reference (`busybox` -> `docker.io/library/busybox:latest`).
pub(crate) async fn find_name(services: &Services, input: &str) -> Result<String> {
    find_record(services, input).await.map(|r| r.name)
}

/// The record for user input, found as [`find_name`] finds its name.
pub(crate) async fn find_record(services: &Services, input: &str) -> Result<ImageRecord> {
    match get_record(services, input).await {
        Ok(record) => return Ok(record),
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Ok(reference) = Reference::parse(input) {
        match get_record(services, &reference.to_string()).await {
            Ok(record) => return Ok(record),
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
    }
    match find_by_id(services, input).await? {
        Some(name) => get_record(services, &name).await,
        None => Err(Error::not_found(format!("no such image: {input}"))),
    }
}

/// The name of the image whose ID (`sha256:<hex>`, or the hex alone) starts with `input`, as
/// docker takes an image ID or a unique prefix of one; a name without a tag is preferred. Reads
/// every image's config: only for input that is no stored name.
async fn find_by_id(services: &Services, input: &str) -> Result<Option<String>> {
    Ok(image_by_id(services, input)
        .await?
        .and_then(|(_, names)| names.into_iter().next()))
}

/// The image whose ID starts with `input` (see [`find_by_id`]): its ID and every name it has,
/// repository names first, the ID alias last.
async fn image_by_id(services: &Services, input: &str) -> Result<Option<(String, Vec<String>)>> {
    let prefix = input
        .strip_prefix(crate::digest::SHA256_PREFIX)
        .unwrap_or(input);
    let is_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if prefix.is_empty() || prefix.len() > 64 || !is_hex(prefix) {
        return Ok(None);
    }
    let mut matches: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for record in list_records(services).await? {
        let id = if is_id_name(&record.name) {
            record.name.clone()
        } else {
            match resolve(services, &record.target, &Platform::host(), &record.name).await {
                Ok(resolved) => resolved.manifest.config.digest,
                Err(_) => continue,
            }
        };
        if id[crate::digest::SHA256_PREFIX.len()..].starts_with(prefix) {
            matches.entry(id).or_default().push(record.name);
        }
    }
    let mut found = matches.into_iter();
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some((id, mut names)), None) => {
            // A repository name before the ID alias, for `ps`' IMAGE column and the like.
            names.sort_by_key(|n| (is_id_name(n), n.clone()));
            Ok(Some((id, names)))
        }
        (Some(_), Some(_)) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("image ID prefix {input} is ambiguous: more than one image matches"),
        )),
    }
}

/// When `input` is an image ID or a unique prefix of one, and no stored name or reference: the
/// image's ID and all its names (repository names first), as `docker rmi ID` removes them all.
/// `None` when `input` names an image record itself.
pub async fn names_of_id(client: &Client, input: &str) -> Result<Option<(String, Vec<String>)>> {
    let services = Services::new(client)?;
    for candidate in [
        Some(input.to_string()),
        Reference::parse(input).ok().map(|r| r.to_string()),
    ]
    .into_iter()
    .flatten()
    {
        match get_record(&services, &candidate).await {
            Ok(_) => return Ok(None),
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
    }
    image_by_id(&services, input).await
}

/// An image as `docker images` and `docker inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetails {
    /// The record (name, target, times).
    pub record: ImageRecord,
    /// The manifest for the platform.
    pub manifest_descriptor: Descriptor,
    /// Its config's digest: docker's image ID.
    pub id: String,
    /// The parsed config.
    pub config: ImageConfig,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// Bytes in the content store: index (if any), manifest, config and layers.
    pub size: u64,
}

/// Inspect image `name` (a stored name or a reference) for `platform`.
pub async fn inspect(client: &Client, name: &str, platform: &Platform) -> Result<ImageDetails> {
    let services = Services::new(client)?;
    let record = find_record(&services, name).await?;
    details(&services, record, platform).await
}

async fn details(
    services: &Services,
    record: ImageRecord,
    platform: &Platform,
) -> Result<ImageDetails> {
    let resolved = resolve(services, &record.target, platform, &record.name).await?;
    let mut size = resolved.manifest_descriptor.size + resolved.manifest.config.size;
    size += resolved.manifest.layers.iter().map(|l| l.size).sum::<i64>();
    if record.target.digest != resolved.manifest_descriptor.digest {
        size += record.target.size;
    }
    Ok(ImageDetails {
        id: resolved.manifest.config.digest.clone(),
        config: ImageConfig::from_file(&resolved.config),
        layers: resolved.manifest.layers.clone(),
        manifest_descriptor: resolved.manifest_descriptor,
        size: size.max(0) as u64,
        record,
    })
}

/// One line of `docker images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Full name.
    pub name: String,
    /// Docker's REPOSITORY column (`busybox`), `<none>` for a dangling image.
    pub repository: String,
    /// Docker's TAG column, `<none>` without one.
    pub tag: String,
    /// The target's digest.
    pub digest: String,
    /// Docker's image ID (config digest), if the image has a manifest for the platform.
    pub id: Option<String>,
    /// When the record was created.
    pub created: Option<SystemTime>,
    /// Bytes in the content store, if the image has a manifest for the platform.
    pub size: Option<u64>,
    /// Its layers (digest and size), which other images may share.
    pub layers: Vec<(String, u64)>,
}

/// Every image with its size for `platform`, sorted by name.
pub async fn summaries(client: &Client, platform: &Platform) -> Result<Vec<ImageSummary>> {
    let services = Services::new(client)?;
    let mut out = vec![];
    for record in list_records(&services).await? {
        let (repository, tag) = match Reference::parse(&record.name) {
            Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()),
            Err(_) => ("<none>".to_string(), "<none>".to_string()),
        };
        let details = details(&services, record.clone(), platform).await.ok();
        out.push(ImageSummary {
            repository,
            tag,
            digest: record.target.digest.clone(),
            id: details.as_ref().map(|d| d.id.clone()),
            layers: details
                .as_ref()
                .map(|d| {
                    d.layers
                        .iter()
                        .map(|l| (l.digest.clone(), l.size.max(0) as u64))
                        .collect()
                })
                .unwrap_or_default(),
            size: details.map(|d| d.size),
            created: record.created,
            name: record.name,
        });
    }
    Ok(out)
}

/// Name `source`'s target also `target` (a reference, normalised), like `docker tag`.
pub async fn tag(client: &Client, source: &str, target: &str) -> Result<String> {
    let services = Services::new(client)?;
    let source = find_name(&services, source).await?;
    let record = get_record(&services, &source).await?;
    let target = Reference::parse(target)?.to_string();
    name(&services, &target, &record.target, &mut Vec::new()).await?;
    Ok(target)
}

/// Remove the name `name` (a stored name or a reference). When it was the image's last name,
/// containerd's GC frees its blobs and snapshots; with `sync` before this returns.
pub async fn remove(client: &Client, name: &str, sync: bool) -> Result<String> {
    let services = Services::new(client)?;
    let name = find_name(&services, name).await?;
    delete_record(&services, &name, sync).await?;
    Ok(name)
}

/// The container defaults of image `name` for `platform`.
pub async fn image_config(client: &Client, name: &str, platform: &Platform) -> Result<ImageConfig> {
    Ok(inspect(client, name, platform).await?.config)
}
