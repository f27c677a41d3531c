//! The tuning of an [`EventMonitor`](super::EventMonitor).

use std::time::Duration;

/// Bound on each unary call the monitor makes (probe, publish, list, get).
pub(crate) const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// First reconnect delay; doubled per failed attempt up to [`MonitorOptions::max_backoff`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(50);

/// Tuning of an [`EventMonitor`](super::EventMonitor).
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    pub(crate) worker_idle: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) max_backoff: Duration,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            worker_idle: Duration::from_secs(30),
            queue_capacity: 1024,
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl MonitorOptions {
    /// How long a container's worker waits for more events before it ends (default 30 s).
    pub fn worker_idle(mut self, idle: Duration) -> Self {
        self.worker_idle = idle;
        self
    }

    /// How many events may wait for one container's handler (default 1024). When full, reading the
    /// stream pauses until there is room: memory stays bounded, nothing is dropped (except repeated
    /// OOM events, which merge while one is queued).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// The longest pause between attempts to reach containerd again (default 1 s).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max.max(MIN_BACKOFF);
        self
    }
}
