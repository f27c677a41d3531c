//! One blob or one manifest to the registry.
//!
//! A blob: `HEAD` it in the repository (there: done); else `POST` for an upload session and `PUT`
//! the bytes to the session's `Location` with `?digest=`, in one request whose body streams from
//! containerd's `Content.Read` (a monolithic upload, which every v2 registry takes; the bytes never
//! sit in memory whole). The registry hashes what it receives and refuses a digest mismatch.
//! A manifest: `PUT` its exact bytes with its media type as `Content-Type`; the digest the registry
//! answers must be ours.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libcontainerd::{Error, Result};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use tokio_stream::StreamExt as _;

use super::{PushProgress, PushProgressFn, PushState};
use crate::grpc::Services;
use crate::oci::Descriptor;
use crate::registry::http::Registry;

/// Reports one blob's progress (a config has no callback).
pub(super) struct Reporter {
    pub progress: Option<PushProgressFn>,
    pub digest: String,
    pub layer: usize,
    pub total: u64,
}

impl Reporter {
    pub(super) fn report(&self, state: PushState, done: u64) {
        if let Some(progress) = &self.progress {
            progress(&PushProgress {
                digest: self.digest.clone(),
                layer: self.layer,
                done,
                total: self.total,
                state,
            });
        }
    }
}

/// Upload blob `descriptor` unless the repository has it. Returns the bytes uploaded.
pub(super) async fn blob(
    services: &Services,
    registry: &Registry,
    descriptor: &Descriptor,
    reporter: &Reporter,
) -> Result<u64> {
    let digest = &descriptor.digest;
    let total = descriptor.size.max(0) as u64;
    let url = registry.url("blobs", digest);
    let what = format!("check blob {digest} in {}", registry.domain);
    let response = registry.send(&what, || registry.http().head(&url)).await?;
    match response.status() {
        StatusCode::OK => {
            reporter.report(PushState::Exists, total);
            return Ok(0);
        }
        StatusCode::NOT_FOUND => {}
        _ => return Err(registry.refused(response, &what).await),
    }

    let what = format!("start the upload of blob {digest} to {}", registry.domain);
    let sessions = registry.url("blobs", "uploads/");
    let response = registry
        .send(&what, || {
            registry.http().post(&sessions).header(CONTENT_LENGTH, "0")
        })
        .await?;
    if response.status() != StatusCode::ACCEPTED {
        return Err(registry.refused(response, &what).await);
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::invalid(format!("{what}: the answer has no Location")))?;
    let location = registry.absolute(location);
    let separator = if location.contains('?') { '&' } else { '?' };
    let target = format!("{location}{separator}digest={digest}");

    let what = format!("upload blob {digest} to {}", registry.domain);
    let context = format!("read blob {digest} from the content store");
    let stream = crate::content::read_stream(services, digest, &context).await?;
    reporter.report(PushState::Pushing, 0);
    let sent = Arc::new(AtomicU64::new(0));
    let progress = Reporter {
        progress: reporter.progress.clone(),
        digest: digest.clone(),
        layer: reporter.layer,
        total,
    };
    let counted = sent.clone();
    // Each chunk is reported as it is handed to the connection.
    let body = stream.map(move |chunk| {
        let chunk = chunk?;
        let done =
            counted.fetch_add(chunk.data.len() as u64, Ordering::Relaxed) + chunk.data.len() as u64;
        progress.report(PushState::Pushing, done);
        Ok::<_, tonic::Status>(chunk.data)
    });
    let request = registry
        .http()
        .put(&target)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, total)
        .body(reqwest::Body::wrap_stream(body));
    let (response, _) = registry.send_once(&what, request).await?;
    if response.status() != StatusCode::CREATED {
        return Err(registry.refused(response, &what).await);
    }
    let sent = sent.load(Ordering::Relaxed);
    if sent != total {
        return Err(Error::internal(format!(
            "{context}: it has {sent} bytes, its descriptor says {total}"
        )));
    }
    reporter.report(PushState::Done, total);
    Ok(total)
}

/// PUT a manifest or index under `reference` (a tag, or its digest).
pub(super) async fn manifest(
    registry: &Registry,
    descriptor: &Descriptor,
    data: &[u8],
    reference: &str,
) -> Result<()> {
    let what = format!(
        "put manifest {} as {reference} to {}",
        descriptor.digest, registry.domain
    );
    let url = registry.url("manifests", reference);
    let response = registry
        .send(&what, || {
            registry
                .http()
                .put(&url)
                .header(CONTENT_TYPE, &descriptor.media_type)
                .body(data.to_vec())
        })
        .await?;
    if !response.status().is_success() {
        return Err(registry.refused(response, &what).await);
    }
    let answered = response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok());
    if let Some(answered) = answered.filter(|d| *d != descriptor.digest) {
        return Err(Error::invalid(format!(
            "{what}: digest mismatch: the registry stored it as {answered}"
        )));
    }
    Ok(())
}
