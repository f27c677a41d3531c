//! Calls that change containerd's state finish, or are undone, even when their caller stops waiting.
//!
//! A caller may drop the future of any call at any await point (a `tokio::time::timeout`, a
//! `select!`, a task being aborted). Dropping a gRPC call does not stop containerd from carrying it
//! out, so a dropped create or exec could leave a task or a process nobody holds a handle to, and a
//! dropped delete could leave FIFOs or a bundle dir behind. Two tools prevent that:
//!
//! - [`detached`] runs the state-changing part of a call (the RPC and the local bookkeeping that must
//!   follow it) in a task of its own: it runs to completion whether or not the caller still waits.
//! - [`CleanupGuard`] travels with a result that owns something in containerd (a created task, a
//!   started exec): if the result is dropped before the call hands it to its caller, the guard undoes
//!   it in a spawned task (kill and delete the task or process, remove its FIFOs).
//!
//! So a dropped call ends as if it had failed (create, start, exec) or as if it had completed
//! (delete), a few moments after the drop.

use std::future::Future;
use std::pin::Pin;

use crate::error::{Error, ErrorKind, Result};

/// Run `work` to completion in a task of its own and return its result. If the caller's future is
/// dropped, `work` still finishes; its result is then dropped (a [`CleanupGuard`] in it fires).
pub(crate) async fn detached<T, F>(what: &str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::new(
            ErrorKind::Canceled,
            format!("{what}: the async runtime is shutting down"),
        )),
    }
}

type Cleanup = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Undoes something (in a spawned task) when dropped, unless [`CleanupGuard::disarm`]ed first.
#[must_use = "a guard dropped at once undoes what it guards"]
pub(crate) struct CleanupGuard {
    cleanup: Option<Cleanup>,
}

impl CleanupGuard {
    /// A guard that runs `cleanup` if it is dropped armed.
    pub fn new(cleanup: impl Future<Output = ()> + Send + 'static) -> Self {
        CleanupGuard {
            cleanup: Some(Box::pin(cleanup)),
        }
    }

    /// The guarded thing reached its owner: nothing to undo.
    pub fn disarm(mut self) {
        self.cleanup = None;
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        let Some(cleanup) = self.cleanup.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(cleanup);
            }
            // Only when the runtime itself is gone; containerd keeps the object, a later
            // `force_delete` (or containerd's own cleanup when the shim exits) removes it.
            Err(_) => tracing::warn!("a cancelled call cannot be undone: no async runtime"),
        }
    }
}

impl std::fmt::Debug for CleanupGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanupGuard")
            .field("armed", &self.cleanup.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_dropped_guard_runs_its_cleanup_and_a_disarmed_one_does_not() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = |runs: &Arc<AtomicUsize>| {
            let runs = Arc::clone(runs);
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        };
        CleanupGuard::new(counted(&runs)).disarm();
        drop(CleanupGuard::new(counted(&runs)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn detached_work_finishes_after_its_caller_gives_up() {
        let done = Arc::new(AtomicUsize::new(0));
        let flag = Arc::clone(&done);
        let call = detached("test", async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        assert!(tokio::time::timeout(Duration::from_millis(5), call)
            .await
            .is_err());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
