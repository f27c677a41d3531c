//! A pull's layers: downloaded a few at a time, and unpacked while the later ones still download.
//!
//! Downloads are tasks, spawned base first (they queue on a fair semaphore, so the lower layers,
//! unpacked first, mostly get their slots first). The unpack runs in the pull's own task, one layer after the
//! other, as containerd's Go client does for a pull with unpack: it prepares layer N's snapshot
//! as soon as layer N-1 is committed, then waits for layer N's blob to be stored (digest checked),
//! then applies it. So the unpack of a layer overlaps the downloads of the layers above it.
//!
//! The first failure, of a download or of the unpack, stops the rest: the downloads are aborted
//! and awaited, and an unpack step under way ends before this returns (a layer being applied is
//! not cut off mid-way), so nothing touches containerd when the caller deletes the lease. Once
//! every blob is stored, what is left of the unpack goes back to the caller, which names the
//! image meanwhile (a database transaction that need not wait for the last layers' unpack).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use libcontainerd::{Error, Result};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::{blob, Progress, ProgressState, PullOptions};
use crate::grpc::Services;
use crate::oci::Manifest;
use crate::registry::http::Registry;
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
    /// stored. Returns the bytes downloaded and the rest of the unpack: the layers still to
    /// unpack once every blob is stored (the caller names the image meanwhile).
    pub(super) async fn finish(mut self, unpacker: Option<Unpacker>) -> Result<(u64, Unpacking)> {
        let (arrived, arrivals) = mpsc::unbounded_channel();
        let mut unpacking: Unpacking = Box::pin(unpack_as_stored(unpacker, arrivals));
        // The unpack's result, once it is over (a finished future must not be polled again).
        let (mut downloaded, mut unpacked) = (0, None);
        let failure = loop {
            tokio::select! {
                result = &mut unpacking, if unpacked.is_none() => match result {
                    Ok(done) => unpacked = Some(Ok(done)),
                    Err(e) => {
                        unpacked = Some(Err(()));
                        break Some(e);
                    }
                },
                joined = self.tasks.join_next() => {
                    let Some(joined) = joined else {
                        break None;
                    };
                    let joined = joined
                        .map_err(|e| Error::internal(format!("a layer download failed: {e}")))
                        .and_then(|r| r);
                    match joined {
                        Ok((digest, bytes)) => {
                            downloaded += bytes;
                            // The unpack may be over (unpacked before): no one listens.
                            let _ = arrived.send(Arrival::Stored(digest));
                        }
                        Err(e) => break Some(e),
                    }
                }
            }
        };
        let Some(e) = failure else {
            // Every blob is stored: what is left of the unpack needs nothing more from here.
            if let Some(Ok(done)) = unpacked {
                unpacking = Box::pin(std::future::ready(Ok(done)));
            }
            return Ok((downloaded, unpacking));
        };
        self.tasks.shutdown().await;
        if unpacked.is_none() {
            // The unpack ends after its step under way.
            let _ = arrived.send(Arrival::Stop);
            let _ = unpacking.await;
        }
        Err(e)
    }
}

/// The rest of a pull's unpack, once all its blobs are stored.
pub(super) type Unpacking = Pin<Box<dyn Future<Output = Result<Option<Unpacked>>> + Send>>;

/// What the unpack hears from the downloads.
enum Arrival {
    /// This blob is stored.
    Stored(String),
    /// A download failed: unpack no further.
    Stop,
}

/// Unpack the layers in order, each once `arrivals` said its blob is stored. Told to stop, it
/// ends with an error, removing a snapshot it prepared for a layer it will not unpack.
async fn unpack_as_stored(
    unpacker: Option<Unpacker>,
    mut arrivals: mpsc::UnboundedReceiver<Arrival>,
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
                Some(Arrival::Stored(arrived)) => {
                    stored.insert(arrived);
                }
                Some(Arrival::Stop) => {
                    unpacker.abandon().await;
                    return Err(stopped());
                }
                None => {
                    unpacker.abandon().await;
                    return Err(Error::internal(format!(
                        "the downloads ended without storing layer {digest}"
                    )));
                }
            }
        }
        unpacker.apply_next().await?;
    }
    unpacker.finish().await.map(Some)
}

/// Move the digests that arrived into `stored`; false if told to stop.
fn take_arrived(
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    stored: &mut HashSet<String>,
) -> bool {
    loop {
        match arrivals.try_recv() {
            Ok(Arrival::Stored(arrived)) => {
                stored.insert(arrived);
            }
            Ok(Arrival::Stop) => return false,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return true,
        }
    }
}

/// The unpack's error when a download failed (that failure is the one reported).
fn stopped() -> Error {
    Error::internal("the layer downloads stopped")
}
