//! A pull's layers: downloaded a few at a time, and unpacked while the later ones still download.
//!
//! Downloads are tasks, started base first (the semaphore is fair, so the lower layers, unpacked
//! first, get their slots first). The unpack runs in the pull's own task, one layer after the
//! other, as containerd's Go client does for a pull with unpack: it prepares layer N's snapshot
//! as soon as layer N-1 is committed, then waits for layer N's blob to be stored (digest checked),
//! then applies it. So the unpack of a layer overlaps the downloads of the layers above it.
//!
//! The first failure, of a download or of the unpack, stops the rest: the downloads are aborted
//! and awaited, and an unpack step under way ends before this returns (a layer being applied is
//! not cut off mid-way), so nothing touches containerd when the caller deletes the lease.

use std::collections::HashSet;
use std::sync::Arc;

use libcontainerd::{Error, Result};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::http::Registry;
use super::{blob, Progress, ProgressState, PullOptions};
use crate::grpc::Services;
use crate::oci::Manifest;
use crate::unpack::{Unpacked, Unpacker};

/// The layer downloads under way: each task stores one blob and returns its digest and the bytes
/// it downloaded.
pub(super) struct Downloads {
    tasks: JoinSet<Result<(String, u64)>>,
}

impl Downloads {
    /// Start downloading the manifest's layers (each distinct blob once), `options.concurrency`
    /// at a time, into the content store through `services`.
    pub(super) fn start(
        services: &Services,
        registry: &Arc<Registry>,
        manifest: &Manifest,
        image: &str,
        options: &PullOptions,
    ) -> Downloads {
        let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let mut seen = HashSet::new();
        for (i, layer) in manifest.layers.iter().enumerate() {
            if !seen.insert(layer.digest.clone()) {
                continue;
            }
            let (services, registry, slots) = (services.clone(), registry.clone(), slots.clone());
            let (descriptor, progress) = (layer.clone(), options.progress.clone());
            let what = format!("layer {} of {image}", layer.digest);
            let total = layer.size.max(0) as u64;
            let digest = layer.digest.clone();
            let report = move |state: ProgressState, done: u64| {
                if let Some(progress) = &progress {
                    progress(&Progress {
                        digest: digest.clone(),
                        layer: i,
                        done,
                        total,
                        state,
                    });
                }
            };
            report(ProgressState::Waiting, 0);
            tasks.spawn(async move {
                // The semaphore lives as long as the tasks: acquiring cannot fail.
                let _slot = slots.acquire_owned().await;
                let bytes = blob::fetch(&services, &registry, &descriptor, &what, &report).await?;
                Ok((descriptor.digest, bytes))
            });
        }
        Downloads { tasks }
    }

    /// Abort the downloads and wait until they are gone (their half-written ingests stay with the
    /// lease, which the caller deletes).
    pub(super) async fn stop(mut self) {
        self.tasks.shutdown().await;
    }

    /// Wait for the downloads, unpacking the layers with `unpacker` (if given) as their blobs are
    /// stored. Returns the bytes downloaded and the unpacked image.
    pub(super) async fn finish(
        mut self,
        unpacker: Option<Unpacker>,
    ) -> Result<(u64, Option<Unpacked>)> {
        let (stored, arrivals) = mpsc::unbounded_channel();
        let unpacking = unpack_as_stored(unpacker, arrivals);
        tokio::pin!(unpacking);
        let (mut downloaded, mut unpacked, mut unpacking_done) = (0, None, false);
        let failure = loop {
            tokio::select! {
                result = &mut unpacking, if !unpacking_done => {
                    unpacking_done = true;
                    match result {
                        Ok(done) => unpacked = done,
                        Err(e) => break Some(e),
                    }
                }
                Some(joined) = self.tasks.join_next() => {
                    let joined = joined
                        .map_err(|e| Error::internal(format!("a layer download failed: {e}")))
                        .and_then(|r| r);
                    match joined {
                        Ok((digest, bytes)) => {
                            downloaded += bytes;
                            // The unpack may be over (unpacked before, or failed): no one listens.
                            let _ = stored.send(digest);
                        }
                        Err(e) => break Some(e),
                    }
                }
                else => break None,
            }
        };
        let Some(e) = failure else {
            return Ok((downloaded, unpacked));
        };
        self.tasks.shutdown().await;
        if !unpacking_done {
            // No blob comes any more: the unpack ends after its step under way.
            drop(stored);
            let _ = unpacking.await;
        }
        Err(e)
    }
}

/// Unpack the layers in order, each once its blob is among those `arrivals` names. Ends with an
/// error, removing a snapshot prepared for a layer that will not come, if `arrivals` closes first.
async fn unpack_as_stored(
    unpacker: Option<Unpacker>,
    mut arrivals: mpsc::UnboundedReceiver<String>,
) -> Result<Option<Unpacked>> {
    let Some(mut unpacker) = unpacker else {
        return Ok(None);
    };
    let mut stored = HashSet::new();
    while let Some(digest) = unpacker.next_layer().map(|l| l.digest.clone()) {
        // After a failure elsewhere, stop before preparing another layer.
        if !take_arrived(&mut arrivals, &mut stored) {
            return Err(stopped());
        }
        // Ready before the blob is: the prepare is off the path from its arrival to its unpack.
        unpacker.prepare_next().await?;
        while !stored.contains(&digest) {
            match arrivals.recv().await {
                Some(arrived) => {
                    stored.insert(arrived);
                }
                None => {
                    unpacker.abandon().await;
                    return Err(stopped());
                }
            }
        }
        unpacker.apply_next().await?;
    }
    unpacker.finish().await.map(Some)
}

/// Move the digests that arrived into `stored`; false if no more can come (the sender is gone).
fn take_arrived(
    arrivals: &mut mpsc::UnboundedReceiver<String>,
    stored: &mut HashSet<String>,
) -> bool {
    loop {
        match arrivals.try_recv() {
            Ok(arrived) => {
                stored.insert(arrived);
            }
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Disconnected) => return false,
        }
    }
}

/// The unpack's error when the downloads stopped (their failure is the one reported).
fn stopped() -> Error {
    Error::internal("the layer downloads stopped")
}
