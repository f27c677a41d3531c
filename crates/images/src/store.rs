//! containerd's image records: create or retarget, list, inspect, tag and remove.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImagesRequest,
    UpdateImageRequest,
};
use libcontainerd::{Client, Error, ErrorKind, Result};

use crate::grpc::Services;
use crate::oci::Descriptor;

/// A record an operation created or changed, to undo it after a later failure.
#[derive(Debug)]
pub(crate) struct Record {
    name: String,
    /// The target it had before, if it existed.
    previous: Option<Descriptor>,
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
            _ => Error::from_status(format!("get image {name}"), s),
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
        .map_err(|s| Error::from_status("list images", s))?
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
        Err(s) => Err(Error::from_status(format!("create image {name}"), s)),
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
        .map_err(|s| Error::from_status(format!("update image {name}"), s))?;
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
            _ => Error::from_status(format!("delete image {name}"), s),
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

/// Every image of the client's namespace, sorted by name.
pub async fn list(client: &Client) -> Result<Vec<ImageRecord>> {
    list_records(&Services::new(client)?).await
}
