//! The public handle: start a monitor, know where it stands, wait for exits, stop it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::options::MonitorOptions;
use super::session::Reader;
use super::state::{MonitorState, Shared};
use super::table::Table;
use super::wait::{stopped, ExitWait};
use super::Backend;
use crate::client::Client;
use crate::error::Result;
use crate::id::Id;

/// The event subscription of one client, delivering to a [`Backend`]. See the [module
/// docs](crate::events). Stops when dropped.
pub struct EventMonitor {
    shared: Arc<Shared>,
    state: watch::Receiver<MonitorState>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for EventMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventMonitor")
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl EventMonitor {
    /// Subscribe to `client`'s namespace and deliver its task events to `backend`, with default
    /// options. Must be called within a tokio runtime; returns at once (the subscription is made in
    /// the background: await [`EventMonitor::ready`] to know it is live).
    pub fn start(client: Client, backend: Arc<dyn Backend>) -> EventMonitor {
        EventMonitor::start_with(client, backend, MonitorOptions::default())
    }

    /// [`EventMonitor::start`] with `options`.
    pub fn start_with(
        client: Client,
        backend: Arc<dyn Backend>,
        options: MonitorOptions,
    ) -> EventMonitor {
        let (state_tx, state) = watch::channel(MonitorState::default());
        let shared = Arc::new(Shared {
            table: Mutex::new(Table::new()),
            active_workers: Arc::new(AtomicUsize::new(0)),
            state: state_tx,
        });
        let reader = Reader::new(client, backend, Arc::clone(&shared), &options);
        let task = tokio::spawn(reader.run());
        EventMonitor {
            shared,
            state,
            task,
        }
    }

    /// Wait until the subscription is live and reconciled (at first start, and again after each
    /// reconnect if called then). Fails with [`ErrorKind::Canceled`](crate::ErrorKind::Canceled) once the monitor is stopped.
    pub async fn ready(&self) -> Result<()> {
        self.wait_state(|s| s.live).await.map(|_| ())
    }

    /// Wait until the monitor's state satisfies `condition`; returns that state.
    pub async fn wait_state(
        &self,
        condition: impl FnMut(&MonitorState) -> bool,
    ) -> Result<MonitorState> {
        let mut condition = condition;
        let mut state = self.state.clone();
        let result = state.wait_for(|s| s.stopped || condition(s)).await;
        match result {
            Ok(s) if !s.stopped => Ok(*s),
            _ => Err(stopped("wait for the event subscription")),
        }
    }

    /// The monitor's state now.
    pub fn state(&self) -> MonitorState {
        *self.state.borrow()
    }

    /// How many per-container workers are running (they end when idle).
    pub fn active_workers(&self) -> usize {
        self.shared.active_workers.load(Ordering::SeqCst)
    }

    /// Wait for the exit of process `process_id` (the container id for the init process) of container
    /// `container_id`, as delivered to the backend (deduplicated; including exits found after a
    /// reconnect). Registers at once, so a wait made before the process starts cannot miss its exit;
    /// resolves at once if the monitor already knows the process exited.
    ///
    /// "Already exited" is judged by the monitor's view, which trails containerd slightly: right
    /// after a task is deleted and re-created under the same id, use [`EventMonitor::wait_exit_pid`]
    /// with the new pid so the previous task's exit cannot be taken for it. An exit whose status was
    /// lost resolves with [`crate::events::UNKNOWN_EXIT_CODE`] and no time.
    pub fn wait_exit(&self, container_id: &Id, process_id: &Id) -> ExitWait {
        self.register(container_id.as_str(), process_id.as_str(), None)
    }

    /// [`EventMonitor::wait_exit`] for the init process (the task) of `container_id`.
    pub fn wait_init_exit(&self, container_id: &Id) -> ExitWait {
        self.wait_exit(container_id, container_id)
    }

    /// [`EventMonitor::wait_exit`] for the process with host pid `pid` only.
    pub fn wait_exit_pid(&self, container_id: &Id, process_id: &Id, pid: u32) -> ExitWait {
        self.register(container_id.as_str(), process_id.as_str(), Some(pid))
    }

    fn register(&self, container_id: &str, process_id: &str, pid: Option<u32>) -> ExitWait {
        let registered = self.shared.table().register(container_id, process_id, pid);
        ExitWait::new(
            registered,
            format!("wait for process {process_id} of container {container_id}"),
        )
    }

    /// Stop: cancel the subscription and fail pending waits. Events already queued for the backend
    /// are still handed over. Idempotent; also done on drop.
    pub fn stop(&self) {
        self.task.abort();
        self.shared.table().close();
        self.shared.state.send_modify(|s| {
            s.live = false;
            s.stopped = true;
        });
    }
}

impl Drop for EventMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}
