//! Creating a checkpoint: `Tasks.Checkpoint` has runc dump the task and containerd tars the images
//! into its content store; we find the CRIU images among the blobs it answers with, stream that blob
//! out with `Content.Read` and untar it into the caller's directory, then delete the blobs.

use std::io::Read;
use std::path::Path;

use containerd_client::services::v1::{CheckpointTaskRequest, ReadContentRequest};
use containerd_client::types::Descriptor;
use prost::Message;
use tokio::sync::mpsc;

use super::archive::{check_dir, unpack, CheckpointTarget};
use super::content::{content, delete_blob, Lease, CRIU_CHECKPOINT_MEDIA_TYPE, PIPE_DEPTH};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::Task;

/// The type URL of [`CheckpointOptions`] in containerd's `typeurl` registry.
const CHECKPOINT_OPTIONS_TYPE_URL: &str = "containerd.runc.v1.CheckpointOptions";

/// The runc shim's checkpoint options (`containerd.runc.v1.CheckpointOptions`, same field numbers;
/// the proto is not part of containerd's API crate).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct CheckpointOptions {
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

/// Checkpoint `task` with CRIU into `dir`, a new or empty directory (made if missing); with
/// `exit` the container stops afterwards. CRIU's work files and log go to a fresh directory under
/// the container's bundle dir (which the shim can reach), removed afterwards. A `dir` with `..` components is [`ErrorKind::InvalidArgument`], an existing
/// non-empty one [`ErrorKind::AlreadyExists`]; a checkpoint without CRIU images is an error, never
/// an empty success. On failure `dir` is left as it was found (made by us: removed).
pub(crate) async fn checkpoint_task(task: &Task, dir: &Path, exit: bool) -> Result<()> {
    let client = task.container().client();
    let target = CheckpointTarget::prepare(dir)?;
    let result = match CriuWorkDir::make(task.container().bundle_dir()) {
        Ok(work) => {
            let result = match Lease::create(client, "checkpoint").await {
                Ok(lease) => {
                    let result = frozen_dump(task, &lease, &target, &work, exit).await;
                    lease.release().await;
                    result
                }
                Err(e) => Err(e),
            };
            work.remove();
            result
        }
        Err(e) => Err(e),
    };
    if result.is_err() {
        target.discard();
    }
    result
}

/// The dump, with the task frozen first, as containerd's Go client does: CRIU then finds the
/// freezer cgroup frozen, where freezing it itself polls the freezer's state every 100 ms (most
/// dumps here waited one such step: `checkpoint create` 250 -> 150 ms). Thawed after either way:
/// a failed dump leaves the task running, and with `exit` its killed processes can only go once
/// thawed. A pause that fails (no freezer) leaves the freezing to CRIU.
async fn frozen_dump(
    task: &Task,
    lease: &Lease,
    target: &CheckpointTarget,
    work: &CriuWorkDir,
    exit: bool,
) -> Result<()> {
    let paused = task.pause().await.is_ok();
    let result = checkpoint_to_dir(
        task.container().client(),
        task.id(),
        lease,
        target,
        work,
        exit,
    )
    .await;
    if paused {
        if let Err(e) = task.resume().await {
            match (&result, exit) {
                // Left running, but left frozen: say so rather than report a success.
                (Ok(()), false) => {
                    return Err(e.context("checkpoint made, but the container stays paused"))
                }
                _ => tracing::debug!(container = %task.id(), error = %e, "resume after checkpoint"),
            }
        }
    }
    result
}

/// CRIU's work directory for one dump: its `dump.log` says why a dump failed (the shim's default
/// work directory is removed before the error reaches us).
struct CriuWorkDir {
    path: std::path::PathBuf,
}

impl CriuWorkDir {
    fn make(parent: &Path) -> Result<CriuWorkDir> {
        let path = parent.join(super::content::unique_name("criu-work"));
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::io(format!("create criu work directory {}", path.display()), e))?;
        Ok(CriuWorkDir { path })
    }

    fn dump_log(&self) -> std::path::PathBuf {
        self.path.join("dump.log")
    }

    fn remove(&self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), error = %e, "removing criu's work directory");
        }
    }
}

async fn checkpoint_to_dir(
    client: &Client,
    container_id: &Id,
    lease: &Lease,
    target: &CheckpointTarget,
    work: &CriuWorkDir,
    exit: bool,
) -> Result<()> {
    // CRIU writes its images straight into the target (containerd then skips its content store):
    // no copy of a large dump, and a dump that runs out of space fails inside CRIU, which lets
    // the task run on as it was.
    let image_dir = std::path::absolute(&target.dir).map_err(|e| {
        Error::io(
            format!("resolve checkpoint directory {}", target.dir.display()),
            e,
        )
    })?;
    let options = CheckpointOptions {
        exit,
        image_path: image_dir.to_string_lossy().into_owned(),
        work_path: work.path.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let mut request = client.request(CheckpointTaskRequest {
        container_id: container_id.to_string(),
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
        .map_err(|s| checkpoint_rpc_error(container_id, s, &work.dump_log()))?
        .into_inner()
        .descriptors;
    if descriptors.is_empty() {
        // The images are in the target, where CRIU wrote them.
        if !target.dir.join(super::archive::CRIU_INVENTORY).is_file() {
            return Err(Error::internal(format!(
                "checkpoint container {container_id}: criu reported success but wrote no {} into {}",
                super::archive::CRIU_INVENTORY,
                target.dir.display()
            )));
        }
        return Ok(());
    }
    // A containerd that ignores `image_path` put the images into its content store instead.
    let extracted = match find_checkpoint(&descriptors) {
        Ok(criu) => extract_checkpoint(client, criu, &target.dir).await,
        Err(e) => Err(e.context(format!("checkpoint container {}", container_id))),
    };
    // The blobs served their purpose either way; the lease would free them too, but only later.
    for descriptor in &descriptors {
        if let Err(e) = delete_blob(client, &descriptor.digest).await {
            tracing::warn!(container = %container_id, digest = %descriptor.digest, error = %e, "deleting checkpoint blob");
        }
    }
    extracted
}

fn checkpoint_rpc_error(container_id: &Id, status: tonic::Status, dump_log: &Path) -> Error {
    let context = format!("checkpoint container {}", container_id);
    let message = status.message();
    match status.code() {
        tonic::Code::NotFound => {
            Error::not_found(format!("{context}: it has no task (start it first)"))
                .with_source(status)
        }
        // containerd 1.6's shim: "cannot checkpoint a stopped container" (Unknown).
        _ if message.contains("stopped container") => Error::new(
            ErrorKind::FailedPrecondition,
            format!("{context}: it is stopped, not running"),
        )
        .with_source(status),
        // runc could not run the criu binary it was given (or found in the shim's PATH).
        _ if message.contains("criu") && super::criu::is_missing_binary_error(message) => {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{context}: runc cannot run criu ({}); install criu 4.x or name a working one in the container's runtime options (criu_path)",
                    message.trim().trim_end_matches(": unknown")
                ),
            )
            .with_source(status)
        }
        _ if message.contains("criu") => {
            let detail = super::criu::first_log_error(dump_log)
                .or_else(|| criu_log_error(message))
                .unwrap_or_else(|| message.trim().trim_end_matches(": unknown").to_string());
            if detail.contains("Connected TCP socket") {
                // runc offers criu's --tcp-established, but a restored connection only works where
                // the peer kept its side: docker does not ask for it, and neither do we.
                return Error::new(
                    ErrorKind::FailedPrecondition,
                    format!(
                        "{context}: it has established TCP connections, which are not checkpointed; close them first ({detail})"
                    ),
                )
                .with_source(status);
            }
            let hint = if detail.contains("No space left on device") {
                "free space where the checkpoint goes, or choose another directory"
            } else {
                "`criu check` tells whether this kernel supports checkpoints"
            };
            Error::new(
                ErrorKind::FailedPrecondition,
                format!("{context}: criu failed: {detail}; {hint}"),
            )
            .with_source(status)
        }
        _ => Error::from_status(context, status),
    }
}

/// The first error criu logged, from the log file runc names in its message ("... path= <log>"):
/// more telling than runc's "criu failed: type DUMP errno 0".
fn criu_log_error(message: &str) -> Option<String> {
    let path = message.split("path=").nth(1)?.trim();
    let path = path.split([')', ':', ' ']).next()?;
    super::criu::first_log_error(Path::new(path))
}

/// The descriptor of the CRIU images among those a checkpoint produced. Its absence is an error:
/// moby took it for success and left an empty checkpoint directory behind.
pub(crate) fn find_checkpoint(descriptors: &[Descriptor]) -> Result<&Descriptor> {
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

/// Stream the blob `descriptor` out of the content store and untar it into `dir` (which must exist).
/// Entries that would land outside `dir` (`..`, absolute paths, through symlinks) are skipped.
pub(crate) async fn extract_checkpoint(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
}
