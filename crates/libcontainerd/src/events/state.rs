//! What the monitor's handle and its background reader share: the table, the published state, the
//! count of live workers.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use super::table::Table;

/// Where the monitor stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorState {
    /// A subscription is live and its reconcile is done: every event from now on is delivered.
    pub live: bool,
    /// How many subscriptions went live so far: 1 after the first connect, one more per reconnect.
    pub subscriptions: u64,
    /// [`EventMonitor::stop`](super::EventMonitor::stop) was called (or the monitor dropped).
    pub stopped: bool,
    /// Exits delivered without a `TaskExit` event: found after a reconnect (in the task list or an
    /// exec's state), taken from a delete, or synthesised with [`crate::events::UNKNOWN_EXIT_CODE`].
    pub recovered_exits: u64,
}

pub(crate) struct Shared {
    pub(crate) table: Mutex<Table>,
    pub(crate) active_workers: Arc<AtomicUsize>,
    /// Written by the reader task, and by `stop` (which cannot wait for the aborted reader to go).
    pub(crate) state: watch::Sender<MonitorState>,
}

impl Shared {
    /// The table. It is only poisoned by a bug in the table's own code; carrying on with what it holds
    /// (at worst a missed or repeated decision) beats failing every later event and wait.
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
