//! Download one blob into the content store: streamed in pieces to `Content.Write`, hashed on the
//! way (commit refuses a blob whose digest is not the descriptor's), and resumed after a cut.
//!
//! When the transfer breaks mid-way, what arrived is a correct prefix (TCP keeps order): it is
//! written, and the download goes on with `Range: bytes=<offset>-` from the offset the open content
//! writer reached (the ingest stays open meanwhile, so nothing is fetched twice). A registry that
//! ignores the range sends the whole blob again, and the part we have is skipped.

use std::collections::HashMap;
use std::time::Duration;

use libcontainerd::{Error, ErrorKind, Result};

use super::ProgressState;
use crate::content::{BlobWriter, Open};
use crate::grpc::Services;
use crate::oci::Descriptor;
use crate::registry::http::{transport, Registry};

/// Tries per blob: the first and two resumptions.
const ATTEMPTS: u32 = 3;
/// Bytes gathered before one `Content.Write` message (HTTP chunks are a few KiB).
const WRITE_SIZE: usize = 256 << 10;
/// Pause before the n-th resumption: n times this.
const BACKOFF: Duration = Duration::from_millis(200);

/// Progress of one blob: its state and the bytes stored so far.
pub(crate) type Report<'a> = &'a (dyn Fn(ProgressState, u64) + Send + Sync);

/// Why an attempt stopped.
enum Stop {
    /// The transfer broke: try again from where it got.
    Cut(Error),
    /// Trying again cannot help.
    Fatal(Error),
}

/// Store the blob `descriptor` from the registry unless the content store has it; `what` names it
/// in errors. It gets no labels: the manifest's GC labels reference it. Returns the bytes
/// downloaded (0 for a blob already stored).
pub(crate) async fn fetch(
    services: &Services,
    registry: &Registry,
    descriptor: &Descriptor,
    what: &str,
    report: Report<'_>,
) -> Result<u64> {
    let total = descriptor.size.max(0) as u64;
    let opened = BlobWriter::open(services, what, Some(&descriptor.digest), Some(total)).await?;
    let mut writer = match opened {
        Open::Present => {
            report(ProgressState::Present, total);
            return Ok(0);
        }
        Open::Writer(writer) => writer,
    };
    if let Err(e) = download(registry, &mut writer, descriptor, what, report).await {
        writer.abort().await;
        return Err(e);
    }
    writer.commit(HashMap::new()).await?;
    report(ProgressState::Done, total);
    Ok(total)
}

async fn download(
    registry: &Registry,
    writer: &mut BlobWriter,
    descriptor: &Descriptor,
    what: &str,
    report: Report<'_>,
) -> Result<()> {
    let mut failures = 0;
    loop {
        match attempt(registry, writer, descriptor, what, report).await {
            Ok(()) => return Ok(()),
            Err(Stop::Fatal(e)) => return Err(e),
            Err(Stop::Cut(e)) => {
                failures += 1;
                if failures >= ATTEMPTS {
                    let message = format!("{} (gave up after {ATTEMPTS} tries)", e.message());
                    return Err(Error::new(e.kind(), message).with_source(e));
                }
                tracing::info!(blob = %descriptor.digest, offset = writer.offset(), error = %e,
                    "blob download cut; resuming");
                report(ProgressState::Resuming, writer.offset());
                tokio::time::sleep(BACKOFF * failures).await;
            }
        }
    }
}

/// Server trouble and broken connections are worth another try; anything else is not.
fn classify(e: Error) -> Stop {
    match e.kind() {
        ErrorKind::Unavailable => Stop::Cut(e),
        _ => Stop::Fatal(e),
    }
}

async fn attempt(
    registry: &Registry,
    writer: &mut BlobWriter,
    descriptor: &Descriptor,
    what: &str,
    report: Report<'_>,
) -> std::result::Result<(), Stop> {
    let total = descriptor.size.max(0) as u64;
    let from = writer.offset();
    let mut response = registry
        .blob(&descriptor.digest, from, what)
        .await
        .map_err(classify)?;
    // A 200 to a range request is the whole blob: skip the part already stored.
    let mut skip = if response.status() == reqwest::StatusCode::OK {
        from
    } else {
        0
    };
    report(ProgressState::Downloading, from);
    let mut buffer = Vec::with_capacity(WRITE_SIZE);
    let broken = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let skipped = (skip.min(chunk.len() as u64)) as usize;
                skip -= skipped as u64;
                let data = &chunk[skipped..];
                if writer.offset() + (buffer.len() + data.len()) as u64 > total {
                    return Err(Stop::Fatal(Error::invalid(format!(
                        "{what}: the registry sent more than the {total} bytes of its descriptor"
                    ))));
                }
                buffer.extend_from_slice(data);
                if buffer.len() >= WRITE_SIZE {
                    let full = std::mem::replace(&mut buffer, Vec::with_capacity(WRITE_SIZE));
                    writer.write(full).await.map_err(Stop::Fatal)?;
                    report(ProgressState::Downloading, writer.offset());
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(transport(what, e)),
        }
    };
    // What arrived before a break is good: keep it, the next attempt starts after it.
    writer.write(buffer).await.map_err(Stop::Fatal)?;
    report(ProgressState::Downloading, writer.offset());
    if let Some(e) = broken {
        return Err(Stop::Cut(e));
    }
    if writer.offset() < total {
        return Err(Stop::Cut(Error::new(
            ErrorKind::Unavailable,
            format!(
                "{what}: the registry ended the blob at {} of its {total} bytes",
                writer.offset()
            ),
        )));
    }
    Ok(())
}
