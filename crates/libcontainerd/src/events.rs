//! containerd's task events, delivered to a [`Backend`] in order, once, and across containerd restarts.
//!
//! An [`EventMonitor`] holds one subscription to containerd's event stream, filtered to the client's
//! namespace and the `/tasks/` topics. It decodes each envelope, keeps a small table of the processes
//! it knows, and hands every event to the [`Backend`] from a worker of its own container: the events
//! of one container arrive one at a time and in order, different containers are handled in parallel,
//! and a handler that blocks only holds up its own container.
//!
//! Exits are delivered exactly once per process. containerd's stream is not enough for that: events
//! published while the client is disconnected are lost, and the shim drops an exit it cannot publish
//! for about 15 s. So after every reconnect the monitor lists the namespace's tasks and their execs
//! and delivers the exits it missed, with the real exit status while containerd still has it;
//! duplicates and late exits are dropped. [`EventMonitor::wait_exit`] is fed by the same decisions, so
//! a caller can wait for an exit without polling.
//!
//! The execs, precisely. containerd has no call that lists a task's execs, so the monitor asks about
//! the execs it knew running and the ones it finds. The runc shim keeps a pid file per exec, from the
//! exec's start until its delete, in the task's bundle directory; the monitor locates the namespace's
//! bundle directories through the working directory of the shim of a running task (at this or an
//! earlier connect). That needs containerd's pid namespace and the right to read the shim's `/proc`
//! entry, as root has; without them, `ListPids` still names the execs running in a running task.
//! After a reconnect:
//! - an exec that started while the monitor was disconnected and still runs becomes known, so its
//!   exit is delivered once, whether it comes live or is found after a later reconnect;
//! - an exec that started and exited while disconnected, and is not deleted yet, gets its exit
//!   delivered once, with its real status and pid (a late `TaskExit` for it is dropped), provided the
//!   bundle directory was located;
//! - an exec that started, exited and was deleted (by someone else) while disconnected leaves no
//!   trace in containerd: nothing is delivered for it. Nor for one that was only added: its start
//!   comes on the stream later.
//!
//! `exec-added`, `exec-started` and the other non-exit events published while disconnected are not
//! made up afterwards: only exits are reconciled.
//!
//! How the monitor proves its subscription is live (containerd 1.6 only answers a Subscribe with its
//! first event): it publishes a marker to a topic private to the monitor and waits to read it back.
//! Everything published after that point reaches the stream, so listing the tasks afterwards leaves no
//! gap. A second marker, published once the list is back, tells when every event that could predate the
//! list has been read; only then are the list's findings applied.

// The public handle and what it hands out.
mod monitor;
mod options;
mod state;
mod wait;
// The background reader: the subscription and reconnect loop, the snapshot it takes after
// (re)subscribing, the per-container delivery to the backend.
mod dispatch;
mod execs;
mod reconnect;
mod session;
mod snapshot;
mod subscription;
// The decisions, pure bookkeeping: decoding, the table of processes and its dedup of exits, the
// reconcile with a snapshot, the waits and the memory of forgotten processes.
mod decode;
mod delivery;
mod reconcile;
mod table;
mod tombs;
mod waiters;

use std::fmt;
use std::time::SystemTime;

pub use monitor::EventMonitor;
pub use options::MonitorOptions;
pub use state::MonitorState;
pub use wait::ExitWait;

/// The exit code reported for a process whose real exit status was lost (it ended and was deleted
/// while the monitor was disconnected); [`EventInfo::error`] then says why. Docker uses the same value.
pub const UNKNOWN_EXIT_CODE: u32 = 255;

/// What happened to a container or one of its processes (Docker's `libcontainerd` event types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Not a known event (never delivered by the monitor; for completeness with the reference).
    Unknown,
    /// A process (the init process or an exec) exited.
    Exit,
    /// The container ran out of memory.
    Oom,
    /// The task (init process) was created.
    Create,
    /// The task was started.
    Start,
    /// An exec process was added to the task.
    ExecAdded,
    /// An exec process was started.
    ExecStarted,
    /// The task was paused (frozen).
    Paused,
    /// The task was resumed.
    Resumed,
}

impl EventType {
    /// Every event type, in the reference's order.
    pub const ALL: [EventType; 9] = [
        EventType::Unknown,
        EventType::Exit,
        EventType::Oom,
        EventType::Create,
        EventType::Start,
        EventType::ExecAdded,
        EventType::ExecStarted,
        EventType::Paused,
        EventType::Resumed,
    ];

    /// The reference's name: `exit`, `oom`, `create`, `start`, `exec-added`, `exec-started`,
    /// `paused`, `resumed` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Unknown => "unknown",
            EventType::Exit => "exit",
            EventType::Oom => "oom",
            EventType::Create => "create",
            EventType::Start => "start",
            EventType::ExecAdded => "exec-added",
            EventType::ExecStarted => "exec-started",
            EventType::Paused => "paused",
            EventType::Resumed => "resumed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The details of an event. Fields that do not apply to an event are empty or zero, as in Docker:
/// `oom`, `paused` and `resumed` carry only the container id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventInfo {
    /// The container.
    pub container_id: String,
    /// The process: the container id for the init process, the exec id for an exec.
    pub process_id: String,
    /// The process's pid on the host (0 when unknown).
    pub pid: u32,
    /// For `exit`: the exit code (`128 + n` when killed by signal `n`; [`UNKNOWN_EXIT_CODE`] when lost).
    pub exit_code: u32,
    /// For `exit`: when the process exited, if known.
    pub exited_at: Option<SystemTime>,
    /// Set when the monitor had to synthesise the event and could not learn everything, e.g. an exit
    /// whose status was lost while containerd was unreachable.
    pub error: Option<String>,
}

impl EventInfo {
    /// Whether this is about the container's init process (process id == container id). Never decided
    /// by pid (moby#44888).
    pub fn is_init(&self) -> bool {
        self.process_id == self.container_id
    }
}

/// The error a [`Backend`] may return; it is logged with the container and event, never fatal.
pub type BackendError = crate::error::BoxError;

/// What the user of the library implements to learn about containers (Docker's `Backend`).
///
/// `process_event` is called on a blocking-capable thread (never on the async runtime's workers), one
/// call at a time per container and in the order containerd published the events; calls for different
/// containers may run in parallel. It may block; only its own container waits for it. An error is
/// logged and the stream goes on.
pub trait Backend: Send + Sync + 'static {
    /// Handle one event of container `container_id`.
    fn process_event(
        &self,
        container_id: &str,
        event: EventType,
        info: EventInfo,
    ) -> Result<(), BackendError>;
}

/// Any suitable closure is a backend.
impl<F> Backend for F
where
    F: Fn(&str, EventType, EventInfo) -> Result<(), BackendError> + Send + Sync + 'static,
{
    fn process_event(
        &self,
        container_id: &str,
        event: EventType,
        info: EventInfo,
    ) -> Result<(), BackendError> {
        self(container_id, event, info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_match_the_reference() {
        let names: Vec<_> = EventType::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "unknown",
                "exit",
                "oom",
                "create",
                "start",
                "exec-added",
                "exec-started",
                "paused",
                "resumed"
            ]
        );
        assert_eq!(EventType::ExecStarted.to_string(), "exec-started");
    }

    #[test]
    fn init_is_decided_by_process_id_only() {
        let mut info = EventInfo {
            container_id: "c1".into(),
            process_id: "c1".into(),
            pid: 7,
            ..Default::default()
        };
        assert!(info.is_init());
        info.process_id = "exec1".into();
        assert!(!info.is_init());
    }
}
