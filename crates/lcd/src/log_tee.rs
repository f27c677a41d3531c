//! The log of an attached container: what an attached session copies to our stdout and stderr is
//! also appended to the container's log file, so that `lcd logs` shows it afterwards as docker
//! does. The copy to the terminal comes first and is never held up: each chunk it took is then
//! appended (one `write` of its log entries to the page cache, microseconds); a log that fails
//! is dropped with a debug line and the session goes on.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

use crate::log_format::{self, Stream};

/// `inner` (our stdout or stderr), with what it accepts appended to a log file.
pub struct Tee<W> {
    inner: W,
    log: Option<File>,
    stream: Stream,
}

impl<W> Tee<W> {
    /// Tee `inner` into the log file `log` (appended to, made if missing) as `stream`; without a
    /// log, or if it cannot be opened, `inner` alone.
    pub fn new(inner: W, log: Option<&Path>, stream: Stream) -> Self {
        let log = log.and_then(|path| {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| tracing::debug!(log = %path.display(), error = %e, "opening the log"))
                .ok()
        });
        Tee { inner, log, stream }
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
        if let (Poll::Ready(Ok(n)), Some(log)) = (&written, this.log.as_mut()) {
            let entries = log_format::encode(this.stream, &buf[..*n], std::time::SystemTime::now());
            if let Err(e) = log.write_all(&entries) {
                tracing::debug!(error = %e, "writing the log; it stops here");
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
