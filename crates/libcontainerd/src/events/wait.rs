//! The future of a wait for an exit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::waiters::Registered;
use crate::error::{Error, ErrorKind, Result};
use crate::task::ExitStatus;

/// The error of anything asked of a stopped monitor.
pub(crate) fn stopped(what: &str) -> Error {
    Error::new(
        ErrorKind::Canceled,
        format!("{what}: the event monitor has stopped"),
    )
}

/// The future of [`EventMonitor::wait_exit`](super::EventMonitor::wait_exit): the exit status, or
/// [`ErrorKind::Canceled`] if the monitor stops first.
#[derive(Debug)]
pub struct ExitWait {
    state: WaitState,
    what: String,
}

#[derive(Debug)]
enum WaitState {
    Ready(Option<ExitStatus>),
    Pending(oneshot::Receiver<ExitStatus>),
    Closed,
}

impl Future for ExitWait {
    type Output = Result<ExitStatus>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match &mut this.state {
            WaitState::Ready(status) => match status.take() {
                Some(s) => Poll::Ready(Ok(s)),
                None => Poll::Ready(Err(Error::internal(format!(
                    "{}: polled after completion",
                    this.what
                )))),
            },
            WaitState::Pending(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(s)) => Poll::Ready(Ok(s)),
                Poll::Ready(Err(_)) => Poll::Ready(Err(stopped(&this.what))),
                Poll::Pending => Poll::Pending,
            },
            WaitState::Closed => Poll::Ready(Err(stopped(&this.what))),
        }
    }
}

impl ExitWait {
    /// The wait for a registration; `what` names it in errors.
    pub(crate) fn new(registered: Registered, what: String) -> ExitWait {
        ExitWait {
            state: match registered {
                Registered::Ready(status) => WaitState::Ready(Some(status)),
                Registered::Pending(rx) => WaitState::Pending(rx),
                Registered::Closed => WaitState::Closed,
            },
            what,
        }
    }
}
