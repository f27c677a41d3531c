//! An output stream's reader, which can never leave its process blocked.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::net::unix::pipe;

/// One output stream of a process: an async reader of its FIFO.
///
/// The shim keeps a read side of every output FIFO open itself (so that a client going away does
/// not kill the process with SIGPIPE), which means that output nobody reads fills the FIFO and then
/// blocks the process, forever. So a reader dropped before end of file does not just close: it
/// hands the FIFO to a task that reads and discards the rest until the process ends (on the
/// current tokio runtime, or on a thread of its own outside one). [`OutputReader::detach`] lets go
/// without draining, for a caller that re-attaches later and wants the output kept in the FIFO
/// meanwhile (64 KiB of it, after which the process blocks until someone reads).
pub struct OutputReader {
    pipe: Option<pipe::Receiver>,
}

impl std::fmt::Debug for OutputReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputReader")
            .field("open", &self.pipe.is_some())
            .finish()
    }
}

impl OutputReader {
    pub(super) fn new(pipe: pipe::Receiver) -> Self {
        OutputReader { pipe: Some(pipe) }
    }

    /// Close this reader without draining: output stays in the FIFO for a later reader.
    pub fn detach(mut self) {
        self.pipe = None;
    }
}

impl Drop for OutputReader {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            drain(pipe);
        }
    }
}

/// Read `pipe` to its end and throw the bytes away, in the background.
fn drain(mut pipe: pipe::Receiver) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
        });
        return;
    }
    // No runtime (dropped from plain code or while a runtime shuts down): a blocking read on a
    // thread. Should even that fail, the FIFO closes and the process may block: log it.
    let spawned = pipe.into_blocking_fd().and_then(|fd| {
        std::thread::Builder::new()
            .name("lcd-drain".into())
            .spawn(move || {
                let _ = std::io::copy(&mut std::fs::File::from(fd), &mut std::io::sink());
            })
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot drain an output stream nobody reads");
    }
}

impl tokio::io::AsyncRead for OutputReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.pipe.as_mut() {
            Some(pipe) => Pin::new(pipe).poll_read(cx, buf),
            // Detached readers are consumed, so this is unreachable; end of file is the honest answer.
            None => Poll::Ready(Ok(())),
        }
    }
}
