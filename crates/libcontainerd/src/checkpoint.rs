//! Checkpoints (CRIU images) and their round trip through containerd's content store.
//!
//! Create: `Tasks.Checkpoint` has runc dump the task; containerd tars the images into its content
//! store and answers with their descriptors. We find the one of type [`CRIU_CHECKPOINT_MEDIA_TYPE`],
//! stream it out with `Content.Read`, untar it into the caller's directory and delete the blobs. The
//! blobs are held by a short-lived lease meanwhile, so containerd's garbage collector cannot take them
//! before we read them, and collects them if we crash.
//!
//! Restore: [`restore_descriptor`] tars a checkpoint directory into the content store (labelled as a
//! GC root) and gives the descriptor to pass as `CreateTaskRequest.checkpoint`; the blob is deleted
//! once the task exists.
//!
//! Directories come from users: paths with `..` components are refused (moby#28769), and archive
//! entries that would land outside the directory are skipped.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{
    AbortRequest, CheckpointTaskRequest, DeleteContentRequest, ReadContentRequest, WriteAction,
    WriteContentRequest,
};
use containerd_client::types::Descriptor;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

use crate::client::{Client, MAX_MESSAGE_SIZE};
use crate::error::{Error, ErrorKind, Result};
use crate::task::Task;

/// The media type of the tarred CRIU images in a containerd checkpoint.
pub const CRIU_CHECKPOINT_MEDIA_TYPE: &str =
    "application/vnd.containerd.container.criu.checkpoint.criu.tar";

/// The file every CRIU image directory has; a directory without it is not a checkpoint.
pub const CRIU_INVENTORY: &str = "inventory.img";

/// The type URL of [`CheckpointOptions`] in containerd's `typeurl` registry.
const CHECKPOINT_OPTIONS_TYPE_URL: &str = "containerd.runc.v1.CheckpointOptions";

/// Label that keeps a blob from containerd's garbage collector.
const GC_ROOT_LABEL: &str = "containerd.io/gc.root";

/// Label after which containerd's garbage collector drops a lease.
const GC_EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// How long a checkpoint lease may outlive a client that crashed while holding it.
const LEASE_TTL: Duration = Duration::from_secs(3600);

/// Bytes per `Content.Write` message: well under the 16 MiB gRPC limit, big enough to be cheap.
const CHUNK: usize = 1 << 20;

/// How many chunks may wait between the network and the (blocking) tar code.
const PIPE_DEPTH: usize = 4;

/// The runc shim's checkpoint options (`containerd.runc.v1.CheckpointOptions`, same field numbers;
/// the proto is not part of containerd's API crate).
#[derive(Clone, PartialEq, Message)]
pub struct CheckpointOptions {
    /// Stop the container after the dump.
    #[prost(bool, tag = "1")]
    pub exit: bool,
    /// Checkpoint established TCP connections.
    #[prost(bool, tag = "2")]
    pub open_tcp: bool,
    /// Checkpoint external unix sockets.
    #[prost(bool, tag = "3")]
    pub external_unix_sockets: bool,
    /// Checkpoint a terminal.
    #[prost(bool, tag = "4")]
    pub terminal: bool,
    /// Checkpoint file locks.
    #[prost(bool, tag = "5")]
    pub file_locks: bool,
    /// Namespaces to leave empty in the dump.
    #[prost(string, repeated, tag = "6")]
    pub empty_namespaces: Vec<String>,
    /// criu's cgroups mode (`soft`, `full`, `strict`).
    #[prost(string, tag = "7")]
    pub cgroups_mode: String,
    /// Where criu writes the images (containerd chooses when empty).
    #[prost(string, tag = "8")]
    pub image_path: String,
    /// Where criu writes its work files and logs.
    #[prost(string, tag = "9")]
    pub work_path: String,
}

impl Task {
    /// Checkpoint the task with CRIU into `dir`, a new or empty directory (made if missing); with
    /// `exit` the container stops afterwards. A `dir` with `..` components is
    /// [`ErrorKind::InvalidArgument`], an existing non-empty one [`ErrorKind::AlreadyExists`]; a
    /// checkpoint without CRIU images is an error, never an empty success.
    pub async fn create_checkpoint(&self, dir: &Path, exit: bool) -> Result<()> {
        let target = CheckpointTarget::prepare(dir)?;
        let client = self.container().client();
        let lease = Lease::create(client, "checkpoint").await?;
        let result = self.checkpoint_to_dir(&lease, &target, exit).await;
        lease.release().await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                target.discard();
                Err(e)
            }
        }
    }

    async fn checkpoint_to_dir(
        &self,
        lease: &Lease,
        target: &CheckpointTarget,
        exit: bool,
    ) -> Result<()> {
        let client = self.container().client();
        let options = CheckpointOptions {
            exit,
            ..Default::default()
        };
        let mut request = client.request(CheckpointTaskRequest {
            container_id: self.id().to_string(),
            parent_checkpoint: String::new(),
            options: Some(prost_types::Any {
                type_url: CHECKPOINT_OPTIONS_TYPE_URL.to_string(),
                value: options.encode_to_vec(),
            }),
        });
        lease.attach(&mut request);
        let descriptors = client
            .tasks()
            .checkpoint(request)
            .await
            .map_err(|s| self.checkpoint_rpc_error(s))?
            .into_inner()
            .descriptors;
        let extracted = match find_checkpoint(&descriptors) {
            Ok(criu) => extract_checkpoint(client, criu, &target.dir).await,
            Err(e) => Err(e.context(format!("checkpoint container {}", self.id()))),
        };
        // The blobs served their purpose either way; the lease would free them too, but only later.
        for descriptor in &descriptors {
            if let Err(e) = delete_blob(client, &descriptor.digest).await {
                tracing::warn!(container = %self.id(), digest = %descriptor.digest, error = %e, "deleting checkpoint blob");
            }
        }
        extracted
    }

    fn checkpoint_rpc_error(&self, status: tonic::Status) -> Error {
        let context = format!("checkpoint container {}", self.id());
        match status.code() {
            tonic::Code::NotFound => {
                Error::not_found(format!("{context}: it has no task (start it first)"))
                    .with_source(status)
            }
            // containerd 1.6's shim: "cannot checkpoint a stopped container" (Unknown).
            _ if status.message().contains("stopped container") => Error::new(
                ErrorKind::FailedPrecondition,
                format!("{context}: it is stopped, not running"),
            )
            .with_source(status),
            _ if status.message().contains("criu") => {
                let detail = criu_log_error(status.message()).unwrap_or_else(|| {
                    status
                        .message()
                        .trim()
                        .trim_end_matches(": unknown")
                        .to_string()
                });
                Error::new(
                    ErrorKind::FailedPrecondition,
                    format!(
                        "{context}: criu failed: {detail}; `criu check` tells whether this kernel supports checkpoints"
                    ),
                )
                .with_source(status)
            }
            _ => Error::from_status(context, status),
        }
    }
}

/// The first error criu logged, from the log file runc names in its message ("... path= <log>"):
/// more telling than runc's "criu failed: type DUMP errno 0".
fn criu_log_error(message: &str) -> Option<String> {
    let path = message.split("path=").nth(1)?.trim();
    let path = path.split([')', ':', ' ']).next()?;
    let log = std::fs::read_to_string(path).ok()?;
    // "exited, status=1" lines report helper processes criu ran, not why it failed.
    let line = log
        .lines()
        .find(|l| l.contains("Error") && !l.contains("exited, status="))?;
    // Drop criu's "(00.016523) " timestamp.
    let line = line.trim();
    let text = match line.strip_prefix('(').and_then(|l| l.split_once(") ")) {
        Some((_, rest)) => rest,
        None => line,
    };
    Some(text.to_string())
}

/// The descriptor of the CRIU images among those a checkpoint produced. Its absence is an error:
/// moby took it for success and left an empty checkpoint directory behind.
pub fn find_checkpoint(descriptors: &[Descriptor]) -> Result<&Descriptor> {
    descriptors
        .iter()
        .find(|d| d.media_type == CRIU_CHECKPOINT_MEDIA_TYPE)
        .ok_or_else(|| {
            let found: Vec<&str> = descriptors.iter().map(|d| d.media_type.as_str()).collect();
            Error::internal(format!(
                "containerd returned no checkpoint of type {CRIU_CHECKPOINT_MEDIA_TYPE} (got {found:?})"
            ))
        })
}

/// Refuse a user-given directory that could escape where the user meant (`..` components).
pub fn check_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Err(Error::invalid("checkpoint directory must not be empty"));
    }
    if dir.components().any(|c| c == Component::ParentDir) {
        return Err(Error::invalid(format!(
            "checkpoint directory {} must not contain '..'; give a path without it",
            dir.display()
        )));
    }
    Ok(())
}

/// The directory a checkpoint is extracted into, and whether we made it (to undo on failure).
struct CheckpointTarget {
    dir: PathBuf,
    created: bool,
}

impl CheckpointTarget {
    /// Validate `dir` and make it if missing; an existing directory must be empty.
    fn prepare(dir: &Path) -> Result<CheckpointTarget> {
        check_dir(dir)?;
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!(
                            "checkpoint directory {} is not empty; choose a new directory",
                            dir.display()
                        ),
                    ));
                }
                Ok(CheckpointTarget {
                    dir: dir.to_path_buf(),
                    created: false,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::io(format!("create checkpoint directory {}", dir.display()), e)
                })?;
                Ok(CheckpointTarget {
                    dir: dir.to_path_buf(),
                    created: true,
                })
            }
            Err(e) => Err(Error::io(
                format!("checkpoint directory {}", dir.display()),
                e,
            )),
        }
    }

    /// Remove whatever a failed checkpoint left: the directory if we made it, else its contents.
    fn discard(&self) {
        let result = if self.created {
            std::fs::remove_dir_all(&self.dir)
        } else {
            remove_contents(&self.dir)
        };
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cleaning up a failed checkpoint");
        }
    }
}

fn remove_contents(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// A checkpoint uploaded for a restore; delete it once the task is created.
#[derive(Debug)]
pub struct RestoreBlob {
    client: Client,
    descriptor: Descriptor,
}

impl RestoreBlob {
    /// What to pass as `CreateTaskRequest.checkpoint`.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The blob's digest (`sha256:<hex>`).
    pub fn digest(&self) -> &str {
        &self.descriptor.digest
    }

    /// Delete the blob from the content store (already gone is fine).
    pub async fn delete(self) -> Result<()> {
        delete_blob(&self.client, &self.descriptor.digest).await
    }
}

/// Tar the checkpoint in `dir` into containerd's content store for a restore. `dir` must be a CRIU
/// image directory (with [`CRIU_INVENTORY`]) and have no `..` components. The blob is a GC root until
/// [`RestoreBlob::delete`].
pub async fn restore_descriptor(client: &Client, dir: &Path) -> Result<RestoreBlob> {
    check_restore_dir(dir)?;
    let (messages, receiver) = mpsc::channel(PIPE_DEPTH);
    let reference = unique_name("restore");
    let source = dir.to_path_buf();
    let writer_ref = reference.clone();
    // Tarring is blocking file IO; it feeds the gRPC stream through a small channel, so a large
    // checkpoint is never held in memory whole.
    let producer = tokio::task::spawn_blocking(move || {
        let mut sink = WriteSink::new(writer_ref, messages);
        let result = write_tar(&source, &mut sink).and_then(|()| sink.commit());
        result.map(|()| (sink.digest(), sink.offset))
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let uploaded = upload(client, stream).await;
    let produced = producer
        .await
        .map_err(|e| Error::internal(format!("tar checkpoint: {e}")).with_source(e))?;
    let (digest, size) = match (produced, uploaded) {
        (Ok(blob), Ok(())) => blob,
        // The same checkpoint uploaded before and not deleted yet: it is the blob we need.
        (Ok(blob), Err(e)) if e.kind() == ErrorKind::AlreadyExists => blob,
        (Ok(_), Err(e)) => {
            abort_upload(client, &reference).await;
            return Err(e.context(format!("upload checkpoint {}", dir.display())));
        }
        (Err(e), Err(upload_error)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            abort_upload(client, &reference).await;
            return Err(upload_error.context(format!("upload checkpoint {}", dir.display())));
        }
        (Err(e), _) => {
            abort_upload(client, &reference).await;
            return Err(Error::io(
                format!("tar checkpoint directory {}", dir.display()),
                e,
            ));
        }
    };
    Ok(RestoreBlob {
        client: client.clone(),
        descriptor: Descriptor {
            media_type: CRIU_CHECKPOINT_MEDIA_TYPE.to_string(),
            digest,
            size: i64::try_from(size).map_err(|_| Error::invalid("checkpoint too large"))?,
            annotations: HashMap::new(),
        },
    })
}

fn check_restore_dir(dir: &Path) -> Result<()> {
    check_dir(dir)?;
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("checkpoint directory {}", dir.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "checkpoint {} is not a directory",
            dir.display()
        )));
    }
    if !dir.join(CRIU_INVENTORY).is_file() {
        return Err(Error::invalid(format!(
            "{} is not a checkpoint: it has no {CRIU_INVENTORY}; give a directory a checkpoint was made into",
            dir.display()
        )));
    }
    Ok(())
}

/// Send the write stream and wait for containerd's answer to the final commit.
async fn upload(
    client: &Client,
    stream: tokio_stream::wrappers::ReceiverStream<WriteContentRequest>,
) -> Result<()> {
    let mut responses = content(client)
        .write(client.request(stream))
        .await
        .map_err(|s| Error::from_status("write to the content store", s))?
        .into_inner();
    // containerd answers every message; drain them so its sends never stall.
    while let Some(response) = responses
        .message()
        .await
        .map_err(|s| Error::from_status("write to the content store", s))?
    {
        if response.action == WriteAction::Commit as i32 {
            return Ok(());
        }
    }
    Err(Error::internal(
        "the content store closed the write before committing it",
    ))
}

/// Drop a half-written upload so it does not linger in containerd's ingest area.
async fn abort_upload(client: &Client, reference: &str) {
    let result = content(client)
        .abort(client.request(AbortRequest {
            r#ref: reference.to_string(),
        }))
        .await;
    match result {
        Ok(_) => {}
        Err(s) if s.code() == tonic::Code::NotFound => {}
        Err(s) => tracing::warn!(reference, error = %s, "aborting a checkpoint upload"),
    }
}

/// A `Write` that turns bytes into `Content.Write` messages, hashing them on the way.
struct WriteSink {
    reference: String,
    messages: mpsc::Sender<WriteContentRequest>,
    buffer: Vec<u8>,
    offset: u64,
    hasher: Sha256,
}

impl WriteSink {
    fn new(reference: String, messages: mpsc::Sender<WriteContentRequest>) -> Self {
        WriteSink {
            reference,
            messages,
            buffer: Vec::with_capacity(CHUNK),
            offset: 0,
            hasher: Sha256::new(),
        }
    }

    fn send(
        &mut self,
        action: WriteAction,
        labels: HashMap<String, String>,
    ) -> std::io::Result<()> {
        let length = self.buffer.len() as u64;
        let commit = action == WriteAction::Commit;
        let too_large = |_| std::io::Error::other("checkpoint too large");
        let message = WriteContentRequest {
            action: action as i32,
            r#ref: self.reference.clone(),
            total: if commit {
                i64::try_from(self.offset + length).map_err(too_large)?
            } else {
                0
            },
            expected: if commit { self.digest() } else { String::new() },
            offset: i64::try_from(self.offset).map_err(too_large)?,
            data: std::mem::take(&mut self.buffer),
            labels,
        };
        self.offset += length;
        // The receiver only goes away when the upload failed; that error is the one to report, and
        // BrokenPipe tells the caller so.
        self.messages.blocking_send(message).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the content store stopped the upload",
            )
        })
    }

    fn digest(&self) -> String {
        let hash = self.hasher.clone().finalize();
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// Send what is left with the commit, labelled as a GC root until it is deleted.
    fn commit(&mut self) -> std::io::Result<()> {
        let labels = HashMap::from([(
            GC_ROOT_LABEL.to_string(),
            crate::time::rfc3339(SystemTime::now()),
        )]);
        self.send(WriteAction::Commit, labels)
    }
}

impl Write for WriteSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        self.hasher.update(&buf[..n]);
        if self.buffer.len() == CHUNK {
            self.send(WriteAction::Write, HashMap::new())?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Tar the contents of `dir` (entries relative to it, sorted, symlinks kept as links) into `out`.
fn write_tar(dir: &Path, out: &mut impl Write) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&relative))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        // Reverse so that popping visits directories in name order.
        for name in entries.into_iter().rev() {
            let path = relative.join(&name);
            let full = dir.join(&path);
            let kind = std::fs::symlink_metadata(&full)?.file_type();
            // CRIU writes files, directories and links; anything else (a FIFO would block a
            // reader, and tar mis-names them) does not belong in a checkpoint.
            if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{} is not a regular file, directory or symlink: not part of a CRIU image",
                        full.display()
                    ),
                ));
            }
            builder.append_path_with_name(&full, &path)?;
            if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    builder.into_inner()?.flush()
}

/// Stream the blob `descriptor` out of the content store and untar it into `dir` (which must exist).
/// Entries that would land outside `dir` (`..`, absolute paths, through symlinks) are skipped.
pub async fn extract_checkpoint(
    client: &Client,
    descriptor: &Descriptor,
    dir: &Path,
) -> Result<()> {
    check_dir(dir)?;
    let mut stream = content(client)
        .read(client.request(ReadContentRequest {
            digest: descriptor.digest.clone(),
            offset: 0,
            size: 0,
        }))
        .await
        .map_err(|s| blob_error(&descriptor.digest, s))?
        .into_inner();
    let (chunks, receiver) = mpsc::channel(PIPE_DEPTH);
    let target = dir.to_path_buf();
    let untar = tokio::task::spawn_blocking(move || unpack(ChunkReader::new(receiver), &target));
    let mut received: i64 = 0;
    let mut failure = None;
    loop {
        let chunk = match stream.message().await {
            Ok(Some(response)) => Ok(response.data),
            Ok(None) => break,
            Err(status) => Err(status),
        };
        let sent = match chunk {
            Ok(data) => {
                received += data.len() as i64;
                chunks.send(Ok(data)).await
            }
            Err(status) => {
                let _ = chunks
                    .send(Err(std::io::Error::other(status.message().to_string())))
                    .await;
                failure = Some(blob_error(&descriptor.digest, status));
                break;
            }
        };
        // The untar side stopped early; its own error says why.
        if sent.is_err() {
            break;
        }
    }
    drop(chunks);
    let unpacked = untar
        .await
        .map_err(|e| Error::internal(format!("untar checkpoint: {e}")).with_source(e))?;
    if let Some(e) = failure {
        return Err(e);
    }
    unpacked.map_err(|e| Error::io(format!("untar checkpoint into {}", dir.display()), e))?;
    if received != descriptor.size {
        return Err(Error::internal(format!(
            "checkpoint {} is {} bytes, containerd sent {received}",
            descriptor.digest, descriptor.size
        )));
    }
    Ok(())
}

fn blob_error(digest: &str, status: tonic::Status) -> Error {
    if status.code() == tonic::Code::NotFound {
        Error::not_found(format!(
            "checkpoint blob {digest} is not in the content store"
        ))
        .with_source(status)
    } else {
        Error::from_status(format!("read checkpoint blob {digest}"), status)
    }
}

/// Untar `archive` into `dir`, keeping permissions and skipping entries that would escape it.
fn unpack(archive: impl Read, dir: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(archive);
    archive.set_preserve_permissions(true);
    // CRIU images need no set-uid/set-gid bits; a blob carrying them must not plant such files.
    archive.set_mask(0o6000);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(false);
    for entry in archive.entries()? {
        // unpack_in refuses `..`, absolute paths and links out of `dir`, returning false.
        let mut entry = entry?;
        if !entry.unpack_in(dir)? {
            tracing::warn!(path = %String::from_utf8_lossy(&entry.path_bytes()), "skipped a checkpoint entry outside the directory");
        }
    }
    // Drain the padding so the network side is not left blocked on a full channel.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    Ok(())
}

/// A blocking `Read` over chunks arriving on a channel.
struct ChunkReader {
    chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
}

impl ChunkReader {
    fn new(chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>) -> Self {
        ChunkReader {
            chunks,
            current: Vec::new(),
            position: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => {
                    self.current = chunk?;
                    self.position = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

fn content(client: &Client) -> ContentClient<Channel> {
    ContentClient::new(client.channel())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// A name no other upload or lease of any process uses: `lcd-<purpose>-<pid>-<nanoseconds>`. It
/// holds no container id because lease ids are containerd identifiers (76 characters at most).
fn unique_name(purpose: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("lcd-{purpose}-{}-{nanos}", std::process::id())
}

/// Delete a blob; one that is already gone is fine.
async fn delete_blob(client: &Client, digest: &str) -> Result<()> {
    match content(client)
        .delete(client.request(DeleteContentRequest {
            digest: digest.to_string(),
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(Error::from_status(format!("delete blob {digest}"), s)),
    }
}

/// A containerd lease: content written under it survives garbage collection until it is released
/// (or expires, should this process die first).
struct Lease {
    client: Client,
    id: String,
    header: AsciiMetadataValue,
}

impl Lease {
    async fn create(client: &Client, purpose: &str) -> Result<Lease> {
        let id = unique_name(purpose);
        let expires = crate::time::rfc3339(SystemTime::now() + LEASE_TTL);
        LeasesClient::new(client.channel())
            .create(
                client.request(containerd_client::services::v1::CreateRequest {
                    id: id.clone(),
                    labels: HashMap::from([(GC_EXPIRE_LABEL.to_string(), expires)]),
                }),
            )
            .await
            .map_err(|s| Error::from_status("create a lease for the checkpoint", s))?;
        let header = AsciiMetadataValue::try_from(id.as_str())
            .map_err(|e| Error::internal(format!("lease id {id}: {e}")))?;
        Ok(Lease {
            client: client.clone(),
            id,
            header,
        })
    }

    /// Make `request` work under this lease.
    fn attach<T>(&self, request: &mut tonic::Request<T>) {
        request
            .metadata_mut()
            .insert("containerd-lease", self.header.clone());
    }

    /// Drop the lease; what it alone held becomes garbage. Failure only delays that until expiry.
    async fn release(self) {
        let result = LeasesClient::new(self.client.channel())
            .delete(
                self.client
                    .request(containerd_client::services::v1::DeleteRequest {
                        id: self.id.clone(),
                        sync: false,
                    }),
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(lease = %self.id, error = %e, "releasing a checkpoint lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(media_type: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: "sha256:00".to_string(),
            size: 1,
            annotations: HashMap::new(),
        }
    }

    #[test]
    fn the_criu_descriptor_is_found_and_its_absence_is_an_error() {
        let config = "application/vnd.containerd.container.checkpoint.config.v1+proto";
        let found = [descriptor(config), descriptor(CRIU_CHECKPOINT_MEDIA_TYPE)];
        assert_eq!(
            find_checkpoint(&found).unwrap().media_type,
            CRIU_CHECKPOINT_MEDIA_TYPE
        );
        let err = find_checkpoint(&[descriptor(config)]).unwrap_err();
        assert!(err.to_string().contains("no checkpoint of type"), "{err}");
        assert!(err.to_string().contains(config), "{err}");
        assert!(find_checkpoint(&[]).is_err());
    }

    #[test]
    fn criu_errors_come_from_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("criu-dump.log");
        std::fs::write(
            &log,
            "(00.000) Version: 3.17\n(00.001) Error (criu/util.c:642): exited, status=1\n(00.01) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n(00.02) Error (criu/kerndat.c:1615): later\n",
        )
        .unwrap();
        let message = format!(
            "runc did not terminate successfully: exit status 1: criu failed: type DUMP errno 0 path= {}: unknown",
            log.display()
        );
        assert_eq!(
            criu_log_error(&message).as_deref(),
            Some("Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable")
        );
        assert_eq!(criu_log_error("criu failed: no path"), None);
    }

    #[test]
    fn parent_components_are_refused() {
        for bad in ["../x", "a/../b", "/tmp/..", ".."] {
            let err = check_dir(Path::new(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        assert_eq!(
            check_dir(Path::new("")).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        for good in ["x", "./x", "/tmp/cp", "a..b/c"] {
            check_dir(Path::new(good)).unwrap();
        }
    }

    #[test]
    fn options_encode_with_runc_field_numbers() {
        let options = CheckpointOptions {
            exit: true,
            work_path: "/w".into(),
            ..Default::default()
        };
        // Field 1 varint true, field 9 length-delimited "/w".
        assert_eq!(
            options.encode_to_vec(),
            vec![0x08, 0x01, 0x4a, 0x02, b'/', b'w']
        );
    }

    #[test]
    fn tar_round_trip_keeps_files_dirs_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join(CRIU_INVENTORY), b"inventory").unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/pages-1.img"), vec![7u8; 3 * CHUNK + 5]).unwrap();
        std::fs::set_permissions(
            src.path().join("sub/pages-1.img"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("sub/pages-1.img", src.path().join("link")).unwrap();

        let mut archive = Vec::new();
        write_tar(src.path(), &mut archive).unwrap();
        let dst = tempfile::tempdir().unwrap();
        unpack(archive.as_slice(), dst.path()).unwrap();

        assert_eq!(
            std::fs::read(dst.path().join(CRIU_INVENTORY)).unwrap(),
            b"inventory"
        );
        let pages = dst.path().join("sub/pages-1.img");
        assert_eq!(std::fs::read(&pages).unwrap().len(), 3 * CHUNK + 5);
        let mode = std::fs::metadata(&pages).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_link(dst.path().join("link")).unwrap(),
            Path::new("sub/pages-1.img")
        );
        // The same directory tars to the same bytes: its digest is stable.
        let mut again = Vec::new();
        write_tar(src.path(), &mut again).unwrap();
        assert_eq!(archive, again);
    }

    #[test]
    fn entries_escaping_the_directory_are_skipped() {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in [("../escaped", b"evil".as_slice()), ("inside", b"ok")] {
            let mut header = tar::Header::new_gnu();
            // set_path refuses `..`, so write the raw name as a hostile archive would.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        let archive = builder.into_inner().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dst = root.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        unpack(archive.as_slice(), &dst).unwrap();
        assert!(!root.path().join("escaped").exists());
        assert_eq!(std::fs::read(dst.join("inside")).unwrap(), b"ok");
    }

    #[test]
    fn the_sink_chunks_hashes_and_commits() {
        let (tx, mut rx) = mpsc::channel(16);
        let thread = std::thread::spawn(move || {
            let mut sink = WriteSink::new("ref".into(), tx);
            sink.write_all(&vec![1u8; CHUNK + 10]).unwrap();
            sink.commit().unwrap();
            sink.digest()
        });
        let mut messages = vec![];
        while let Some(m) = rx.blocking_recv() {
            messages.push(m);
        }
        let digest = thread.join().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].action, WriteAction::Write as i32);
        assert_eq!(messages[0].data.len(), CHUNK);
        assert_eq!(messages[1].action, WriteAction::Commit as i32);
        assert_eq!(messages[1].offset, CHUNK as i64);
        assert_eq!(messages[1].total, CHUNK as i64 + 10);
        assert_eq!(messages[1].expected, digest);
        assert!(messages[1].labels.contains_key(GC_ROOT_LABEL));
        let expected = Sha256::digest(vec![1u8; CHUNK + 10]);
        let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest, format!("sha256:{hex}"));
    }

    #[test]
    fn non_checkpoint_directories_are_refused_for_restore() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_restore_dir(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("is not a checkpoint"), "{err}");
        let err = check_restore_dir(&dir.path().join("missing")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        std::fs::write(dir.path().join(CRIU_INVENTORY), b"").unwrap();
        check_restore_dir(dir.path()).unwrap();
    }
}
