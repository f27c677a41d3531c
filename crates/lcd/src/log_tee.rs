//! The log of an attached container: what an attached session copies to our stdout and stderr is
//! also appended to the container's log file, so that `lcd logs` shows it afterwards as docker
//! does. The copy to the terminal comes first and stays cheap: each chunk it took is handed (one
//! memcpy) to a writer thread of the stream's own, which turns it into log entries and appends
//! them, on another core. Only a log slower than the terminal for 64 chunks (4 MiB) makes the
//! session wait for it, as docker's default blocking log mode does. A log that fails is dropped
//! with a debug line and the session goes on; dropping the tee waits for what it handed over to be
//! written, so `lcd logs` right after the session sees all of it.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::SystemTime;

use tokio::io::AsyncWrite;

use crate::log_format::{self, Stream};

/// Chunks in flight to the writer thread before the session waits for it.
const BACKLOG: usize = 64;

/// `inner` (our stdout or stderr), with what it accepts appended to a log file.
pub struct Tee<W> {
    inner: W,
    log: Option<Writer>,
}

struct Writer {
    chunks: SyncSender<(Vec<u8>, SystemTime)>,
    thread: JoinHandle<()>,
}

impl<W> Tee<W> {
    /// Tee `inner` into the log file `log` (appended to, made if missing) as `stream`; without a
    /// log, or if it cannot be opened, `inner` alone.
    pub fn new(inner: W, log: Option<&Path>, stream: Stream) -> Self {
        let log = log.and_then(|path| match open(path) {
            Ok(file) => spawn_writer(file, stream)
                .map_err(|e| tracing::debug!(error = %e, "starting the log writer"))
                .ok(),
            Err(e) => {
                tracing::debug!(log = %path.display(), error = %e, "opening the log");
                None
            }
        });
        Tee { inner, log }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

fn spawn_writer(mut file: File, stream: Stream) -> std::io::Result<Writer> {
    let (chunks, received) = sync_channel::<(Vec<u8>, SystemTime)>(BACKLOG);
    let thread = std::thread::Builder::new()
        .name("lcd-log-writer".into())
        .spawn(move || {
            for (chunk, time) in received {
                if let Err(e) = file.write_all(&log_format::encode(stream, &chunk, time)) {
                    tracing::debug!(error = %e, "writing the log; it stops here");
                    return;
                }
            }
        })?;
    Ok(Writer { chunks, thread })
}

impl<W> Drop for Tee<W> {
    fn drop(&mut self) {
        if let Some(Writer { chunks, thread }) = self.log.take() {
            drop(chunks);
            let _ = thread.join();
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Tee<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(log)) = (&written, this.log.as_ref()) {
            let chunk = (buf[..*n].to_vec(), SystemTime::now());
            if log.chunks.send(chunk).is_err() {
                // The writer stopped (its write failed): the session goes on without a log.
                this.log = None;
            }
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
