//! Restoring: tar a checkpoint directory into containerd's content store, as the blob a new task is
//! created from ([`RestoreBlob`]). The tar is produced by blocking file IO on one thread and streamed
//! to `Content.Write` chunk by chunk, so a large checkpoint is never held in memory whole.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use containerd_client::services::v1::{AbortRequest, WriteAction, WriteContentRequest};
use containerd_client::types::Descriptor;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::archive::{check_restore_dir, write_tar};
use super::content::{
    content, delete_blob, unique_name, CHUNK, CRIU_CHECKPOINT_MEDIA_TYPE, GC_ROOT_LABEL, PIPE_DEPTH,
};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};

/// A checkpoint uploaded for a restore; delete it once the task is created.
#[derive(Debug)]
pub struct RestoreBlob {
    client: Client,
    descriptor: Descriptor,
}

impl RestoreBlob {
    /// What to pass as `CreateTaskRequest.checkpoint` ([`raw::checkpoint_descriptor`](crate::raw::checkpoint_descriptor)).
    pub(crate) fn descriptor(&self) -> &Descriptor {
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

/// Where a task is restored from: the checkpoint directory itself, named in the runc task
/// options (`criu_image_path`, which containerd passes to the shim instead of unpacking a blob),
/// or a blob uploaded to the content store.
#[derive(Debug)]
pub(crate) enum RestoreSource {
    /// CRIU reads the images in place: nothing is copied.
    InPlace {
        /// The container's runc options plus the image and work paths, as task options.
        options: prost_types::Any,
        /// CRIU's work directory (its restore.log), removed once the task is created.
        work: PathBuf,
    },
    /// The images tarred into the content store, for a runtime that is not runc's shim.
    Blob(RestoreBlob),
}

impl RestoreSource {
    /// Undo what was made for the restore, once the task is created (or failed to be).
    pub(crate) async fn finish(self, container_id: &crate::id::Id) {
        match self {
            RestoreSource::InPlace { work, .. } => {
                if let Err(e) = std::fs::remove_dir_all(&work) {
                    tracing::warn!(container = %container_id, dir = %work.display(), error = %e, "removing criu's restore work directory");
                }
            }
            RestoreSource::Blob(blob) => {
                if let Err(e) = blob.delete().await {
                    tracing::warn!(container = %container_id, error = %e, "deleting the restore blob");
                }
            }
        }
    }
}

/// Prepare a restore of `container` from the CRIU images in `dir`: for the runc shim, CRIU reads
/// them where they are (containerd takes the runc options' `criu_image_path` as the checkpoint
/// when the create request has no checkpoint blob), with its work files in a new directory under
/// `work_parent`; for other runtimes the directory is uploaded ([`restore_descriptor`]).
pub(crate) async fn restore_source(
    client: &Client,
    container_id: &crate::id::Id,
    work_parent: &Path,
    dir: &Path,
) -> Result<RestoreSource> {
    check_restore_dir(dir)?;
    let record = client
        .containers_service()
        .get(
            client.request(containerd_client::services::v1::GetContainerRequest {
                id: container_id.to_string(),
            }),
        )
        .await
        .map_err(|s| Error::from_status(format!("load container {container_id}"), s))?
        .into_inner()
        .container;
    let runtime =
        crate::runtime::Runtime::from_proto(record.as_ref().and_then(|r| r.runtime.as_ref()));
    let Some(mut options) = runtime
        .options
        .filter(|_| runtime.name == crate::runtime::RUNC_V2)
    else {
        return Ok(RestoreSource::Blob(restore_descriptor(client, dir).await?));
    };
    let images = std::path::absolute(dir)
        .map_err(|e| Error::io(format!("resolve checkpoint directory {}", dir.display()), e))?;
    // CRIU writes its restore.log into the work directory (by default the image directory, which
    // is the user's checkpoint and stays untouched).
    let work = work_parent.join(unique_name("criu-restore"));
    std::fs::create_dir_all(&work)
        .map_err(|e| Error::io(format!("create criu work directory {}", work.display()), e))?;
    options.criu_image_path = images.to_string_lossy().into_owned();
    options.criu_work_path = work.to_string_lossy().into_owned();
    Ok(RestoreSource::InPlace {
        options: prost_types::Any {
            type_url: crate::runtime::RUNC_OPTIONS_TYPE_URL.to_string(),
            value: prost::Message::encode_to_vec(&options),
        },
        work,
    })
}

/// Tar the checkpoint in `dir` into containerd's content store for a restore. `dir` must be a CRIU
/// image directory (with [`CRIU_INVENTORY`](super::CRIU_INVENTORY)) and have no `..` components.
/// The blob is a GC root until [`RestoreBlob::delete`].
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
