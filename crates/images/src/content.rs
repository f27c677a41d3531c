//! containerd's content store: streaming writes with digest checks, reads, and labels.
//!
//! `Content.Write` is a bidirectional stream: a STAT opens the ingest (`ref`) and, given the
//! expected digest, answers AlreadyExists when the blob is there; WRITEs append; COMMIT checks size
//! and digest on containerd's side and stores the blob. containerd hashes what it writes and
//! answers every STAT and WRITE with the digest so far: a blob that does not match the digest it
//! was announced with fails before commit, naming the blob, without hashing every byte twice
//! (containerd's hash is the one that counts, and it is computed anyway).

use std::collections::HashMap;

use containerd_client::services::v1::{
    AbortRequest, Info, InfoRequest, ReadContentRequest, ReadContentResponse, UpdateRequest,
    WriteAction, WriteContentRequest, WriteContentResponse,
};
use libcontainerd::{Error, ErrorKind, Result};
use tokio::sync::mpsc;

use crate::grpc::Services;
use crate::lease::unique_name;

/// Bytes per `Content.Write` message: well under the 16 MiB gRPC limit, big enough to be cheap.
pub(crate) const CHUNK: usize = 1 << 20;

/// WRITE messages sent ahead of containerd's answers: the next piece travels while containerd
/// writes the last one, instead of one round trip per piece.
const WRITES_IN_FLIGHT: usize = 2;

/// The largest manifest, index or config we read into memory (containerd's own limit is similar).
pub(crate) const MAX_METADATA: u64 = 8 << 20;

/// What a finished write stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub digest: String,
    pub size: u64,
}

/// An open `Content.Write` stream for one blob.
pub(crate) struct BlobWriter {
    services: Services,
    what: String,
    reference: String,
    sender: mpsc::Sender<WriteContentRequest>,
    responses: tonic::Streaming<WriteContentResponse>,
    /// containerd's digest of what it wrote so far (from its last answer).
    digest: String,
    /// WRITEs sent whose answers were not read yet.
    in_flight: usize,
    offset: u64,
    expected: Option<String>,
}

/// Bytes of a blob kept to recognise its format by magic numbers.
pub(crate) const HEAD_LEN: usize = 512;

/// The result of opening a write.
pub(crate) enum Open {
    Writer(Box<BlobWriter>),
    /// A blob with the expected digest is already stored.
    Present,
}

impl BlobWriter {
    /// Open a write of the blob `what` (named in errors). With `expected`, containerd answers at
    /// once when the blob is already there, and commit refuses other content.
    pub(crate) async fn open(
        services: &Services,
        what: &str,
        expected: Option<&str>,
        total: Option<u64>,
    ) -> Result<Open> {
        let reference = unique_name("lcd-ingest");
        let (sender, receiver) = mpsc::channel(2);
        let stat = WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.clone(),
            total: total.map_or(0, |t| t as i64),
            expected: expected.unwrap_or_default().to_string(),
            ..Default::default()
        };
        let context = || format!("write {what} to the content store");
        // The receiver is alive: this cannot fail.
        let _ = sender.send(stat).await;
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let mut responses = match services.content().write(services.request(stream)).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::AlreadyExists => return Ok(Open::Present),
            Err(s) => return Err(libcontainerd::raw::error_from_status(context(), s)),
        };
        let digest = match responses.message().await {
            Ok(Some(answer)) => answer.digest,
            Ok(None) => return Err(Error::internal(format!("{}: no answer", context()))),
            Err(s) if s.code() == tonic::Code::AlreadyExists => return Ok(Open::Present),
            Err(s) => return Err(libcontainerd::raw::error_from_status(context(), s)),
        };
        Ok(Open::Writer(Box::new(BlobWriter {
            services: services.clone(),
            what: what.to_string(),
            reference,
            sender,
            responses,
            digest,
            in_flight: 0,
            offset: 0,
            expected: expected.map(str::to_string),
        })))
    }

    /// Append `data` (at most [`CHUNK`] bytes is best). Answers are read a few writes behind: a
    /// failure shows in a later write or in [`BlobWriter::commit`].
    pub(crate) async fn write(&mut self, data: Vec<u8>) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let length = data.len() as u64;
        let message = WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: self.reference.clone(),
            offset: self.offset as i64,
            data,
            ..Default::default()
        };
        self.offset += length;
        self.send(message).await?;
        self.in_flight += 1;
        while self.in_flight > WRITES_IN_FLIGHT {
            self.answer().await?;
        }
        Ok(())
    }

    /// Read the answers to every WRITE sent.
    async fn settle(&mut self) -> Result<()> {
        while self.in_flight > 0 {
            self.answer().await?;
        }
        Ok(())
    }

    /// Read the answer to the oldest WRITE in flight.
    async fn answer(&mut self) -> Result<()> {
        let answer = self.receive().await?;
        self.in_flight -= 1;
        self.digest = answer.digest;
        Ok(())
    }

    /// How many bytes were written so far (where a resumed download continues).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Store the blob with `labels`. Fails, and aborts the ingest, if the content does not match
    /// the expected digest. A blob that turns out to be stored already is success.
    pub(crate) async fn commit(mut self, labels: HashMap<String, String>) -> Result<Written> {
        if let Err(e) = self.settle().await {
            self.abort().await;
            return Err(e);
        }
        // containerd sends the digest with every answer; should one not carry it, its commit
        // still checks the expected digest.
        if let Some(expected) = self.expected.clone() {
            if !self.digest.is_empty() && self.digest != expected {
                let e = self.mismatch(&expected, &format!(", content is {}", self.digest));
                self.abort().await;
                return Err(e);
            }
        }
        let message = WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: self.reference.clone(),
            total: self.offset as i64,
            expected: self.expected.clone().unwrap_or_default(),
            labels,
            // containerd truncates the ingest when a WRITE or COMMIT says offset 0 after data.
            offset: self.offset as i64,
            data: Vec::new(),
        };
        let size = self.offset;
        match self.exchange(message).await {
            Ok(answer) => {
                let digest = if answer.digest.is_empty() {
                    self.expected.clone().unwrap_or(self.digest)
                } else {
                    answer.digest
                };
                Ok(Written { digest, size })
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // Stored meanwhile by someone else: the expected digest, or the one we wrote.
                let digest = self.expected.clone().unwrap_or_else(|| self.digest.clone());
                self.abort().await;
                Ok(Written { digest, size })
            }
            Err(e) => {
                let e = match (&self.expected, e.kind()) {
                    // containerd's own check refused it: `unexpected commit digest ...`.
                    (Some(expected), ErrorKind::FailedPrecondition) => {
                        self.mismatch(expected, &format!(" ({})", e.message()))
                    }
                    _ => e,
                };
                self.abort().await;
                Err(e)
            }
        }
    }

    /// The error for content that is not what `expected` promised; `detail` says what it is.
    fn mismatch(&self, expected: &str, detail: &str) -> Error {
        Error::invalid(format!(
            "{}: digest mismatch: expected {expected}{detail}",
            self.what
        ))
    }

    /// Send `message` and read its answer (nothing else in flight).
    async fn exchange(&mut self, message: WriteContentRequest) -> Result<WriteContentResponse> {
        self.send(message).await?;
        self.receive().await
    }

    async fn send(&mut self, message: WriteContentRequest) -> Result<()> {
        if self.sender.send(message).await.is_ok() {
            return Ok(());
        }
        // containerd ended the stream: its status says why.
        Err(match self.responses.message().await {
            Err(s) => libcontainerd::raw::error_from_status(self.context(), s),
            Ok(_) => Error::internal(format!("{}: containerd closed the stream", self.context())),
        })
    }

    async fn receive(&mut self) -> Result<WriteContentResponse> {
        match self.responses.message().await {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err(Error::internal(format!(
                "{}: containerd closed the stream",
                self.context()
            ))),
            Err(s) => Err(libcontainerd::raw::error_from_status(self.context(), s)),
        }
    }

    fn context(&self) -> String {
        format!("write {} to the content store", self.what)
    }

    /// Drop the ingest so that nothing half-written lingers (the lease would free it too).
    pub(crate) async fn abort(self) {
        let BlobWriter {
            services,
            reference,
            sender,
            ..
        } = self;
        drop(sender);
        let result = services
            .content()
            .abort(services.request(AbortRequest {
                r#ref: reference.clone(),
            }))
            .await;
        match result {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => tracing::warn!(reference, error = %s, "aborting a content write"),
        }
    }
}

/// Write a small in-memory blob (a manifest or an index we built) with `labels`.
pub(crate) async fn write_bytes(
    services: &Services,
    what: &str,
    data: &[u8],
    labels: HashMap<String, String>,
) -> Result<Written> {
    let digest = crate::digest::sha256(data);
    let written = Written {
        digest: digest.clone(),
        size: data.len() as u64,
    };
    match BlobWriter::open(services, what, Some(&digest), Some(data.len() as u64)).await? {
        Open::Present => {
            set_labels(services, &digest, &labels).await?;
            Ok(written)
        }
        Open::Writer(mut writer) => {
            for chunk in data.chunks(CHUNK) {
                if let Err(e) = writer.write(chunk.to_vec()).await {
                    writer.abort().await;
                    return Err(e);
                }
            }
            writer.commit(labels).await
        }
    }
}

/// The bytes of blob `digest`, whole, as the content store streams them; `context` says what
/// the read is for in errors.
pub(crate) async fn read_stream(
    services: &Services,
    digest: &str,
    context: &str,
) -> Result<tonic::Streaming<ReadContentResponse>> {
    Ok(services
        .content()
        .read(services.request(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        }))
        .await
        .map_err(|s| libcontainerd::raw::error_from_status(context, s))?
        .into_inner())
}

/// Read a whole blob of at most [`MAX_METADATA`] bytes (a manifest, an index, a config) and check
/// its digest.
pub(crate) async fn read_small(services: &Services, what: &str, digest: &str) -> Result<Vec<u8>> {
    let context = || format!("read {what} {digest} from the content store");
    let info = info(services, digest)
        .await?
        .ok_or_else(|| Error::not_found(format!("{}: content digest not found", context())))?;
    if info.size as u64 > MAX_METADATA {
        return Err(Error::invalid(format!(
            "{}: {} bytes is too large for a {what} (limit {MAX_METADATA})",
            context(),
            info.size
        )));
    }
    let mut stream = read_stream(services, digest, &context()).await?;
    let mut data = Vec::with_capacity(info.size as usize);
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| libcontainerd::raw::error_from_status(context(), s))?
    {
        data.extend_from_slice(&chunk.data);
        if data.len() as u64 > MAX_METADATA {
            return Err(Error::invalid(format!("{}: too large", context())));
        }
    }
    let actual = crate::digest::sha256(&data);
    if actual != digest {
        return Err(Error::internal(format!(
            "{}: the content store returned content with digest {actual}",
            context()
        )));
    }
    Ok(data)
}

/// A blob's size and labels, or `None` if the content store does not have it.
pub(crate) async fn info(services: &Services, digest: &str) -> Result<Option<Info>> {
    let result = services
        .content()
        .info(services.request(InfoRequest {
            digest: digest.to_string(),
        }))
        .await;
    match result {
        Ok(r) => Ok(r.into_inner().info),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(libcontainerd::raw::error_from_status(
            format!("get info of blob {digest} from the content store"),
            s,
        )),
    }
}

/// Set `labels` on a stored blob, leaving its other labels alone.
pub(crate) async fn set_labels(
    services: &Services,
    digest: &str,
    labels: &HashMap<String, String>,
) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    services
        .content()
        .update(services.request(UpdateRequest {
            info: Some(Info {
                digest: digest.to_string(),
                labels: labels.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await
        .map_err(|s| {
            libcontainerd::raw::error_from_status(
                format!("label blob {digest} in the content store"),
                s,
            )
        })?;
    Ok(())
}

/// Set `labels` on a stored blob unless it has them all already: a read instead of a database
/// transaction (an fdatasync in containerd) when nothing changes.
pub(crate) async fn ensure_labels(
    services: &Services,
    digest: &str,
    labels: &HashMap<String, String>,
) -> Result<()> {
    let held = info(services, digest)
        .await?
        .is_some_and(|i| labels.iter().all(|(k, v)| i.labels.get(k) == Some(v)));
    if held {
        return Ok(());
    }
    set_labels(services, digest, labels).await
}
