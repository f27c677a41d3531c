//! A process's stdin and the two-step close that delivers end of file to it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::net::unix::pipe;

use crate::client::Client;
use crate::error::{Error, Result};

/// The process whose stdin `CloseIO` closes.
#[derive(Clone)]
pub(crate) struct CloseTarget {
    pub client: Client,
    pub container_id: String,
    pub exec_id: String,
}

impl CloseTarget {
    async fn close_io(&self) -> Result<()> {
        let request = containerd_client::services::v1::CloseIoRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            stdin: true,
        };
        match self
            .client
            .tasks()
            .close_io(self.client.request(request))
            .await
        {
            Ok(_) => Ok(()),
            // The process is gone already: its stdin is closed with it.
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::from_status(
                format!("close stdin of {}", self.describe()),
                s,
            )),
        }
    }

    pub(super) fn describe(&self) -> String {
        if self.exec_id.is_empty() {
            format!("container {}", self.container_id)
        } else {
            format!("exec {} in container {}", self.exec_id, self.container_id)
        }
    }
}

enum CloseState {
    /// The process does not exist yet; `requested` records a close asked for meanwhile.
    Waiting { requested: bool },
    /// The process exists; a close can be sent now.
    Ready(CloseTarget),
    /// `CloseIO` was sent (or is being sent).
    Done,
}

/// Shared between a [`Stdin`] and the code that learns when its process exists.
#[derive(Clone)]
pub(crate) struct StdinCloser {
    state: Arc<Mutex<CloseState>>,
}

impl StdinCloser {
    pub fn new() -> Self {
        StdinCloser {
            state: Arc::new(Mutex::new(CloseState::Waiting { requested: false })),
        }
    }

    /// A closer for a process that exists already (e.g. after re-attaching).
    pub fn ready(target: CloseTarget) -> Self {
        StdinCloser {
            state: Arc::new(Mutex::new(CloseState::Ready(target))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CloseState> {
        // A panic while holding this lock cannot leave the state half-written: recover it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The process now exists. Sends `CloseIO` at once if stdin was closed before.
    pub async fn process_ready(&self, target: CloseTarget) -> Result<()> {
        let pending = {
            let mut state = self.lock();
            match &*state {
                CloseState::Waiting { requested: true } => {
                    *state = CloseState::Done;
                    true
                }
                CloseState::Waiting { requested: false } => {
                    *state = CloseState::Ready(target.clone());
                    false
                }
                CloseState::Ready(_) | CloseState::Done => false,
            }
        };
        if pending {
            target.close_io().await
        } else {
            Ok(())
        }
    }

    /// Take the target if a close should be sent now; otherwise remember the request.
    fn take_for_close(&self) -> Option<CloseTarget> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, CloseState::Done) {
            CloseState::Ready(target) => Some(target),
            CloseState::Waiting { .. } => {
                *state = CloseState::Waiting { requested: true };
                None
            }
            CloseState::Done => None,
        }
    }

    async fn close(&self) -> Result<()> {
        match self.take_for_close() {
            Some(target) => target.close_io().await,
            None => Ok(()),
        }
    }
}

/// A process's stdin: an async writer whose [`Stdin::close`] delivers end of file to the process.
pub struct Stdin {
    pipe: Option<pipe::Sender>,
    closer: StdinCloser,
}

impl std::fmt::Debug for Stdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stdin")
            .field("open", &self.pipe.is_some())
            .finish()
    }
}

impl Stdin {
    pub(crate) fn new(pipe: pipe::Sender, closer: StdinCloser) -> Self {
        Stdin {
            pipe: Some(pipe),
            closer,
        }
    }

    /// Let go of our end of the FIFO *without* closing the process's stdin, for a caller that hands
    /// input over to someone else (a detach, or another writer holding the FIFO open).
    pub fn detach(mut self) {
        self.pipe = None;
    }

    /// Close stdin: our end of the FIFO and, through containerd, the process's end. If the process does
    /// not exist yet, the close happens as soon as it does.
    pub async fn close(mut self) -> Result<()> {
        self.pipe = None;
        self.closer.close().await
    }
}

impl Drop for Stdin {
    fn drop(&mut self) {
        // Dropping without close() must still deliver end of file, or the process waits forever.
        if self.pipe.take().is_none() {
            return;
        }
        if let Some(target) = self.closer.take_for_close() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = target.close_io().await {
                        tracing::warn!(error = %e, "closing stdin after drop");
                    }
                });
            }
        }
    }
}

fn closed_pipe() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin is closed")
}

impl AsyncWrite for Stdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.pipe.as_mut() {
            Some(pipe) => Pin::new(pipe).poll_write(cx, buf),
            None => Poll::Ready(Err(closed_pipe())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.pipe.as_mut() {
            Some(pipe) => Pin::new(pipe).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.pipe.as_mut() {
            Some(pipe) => Pin::new(pipe).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}
