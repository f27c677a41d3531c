//! The vocabulary of the monitor's decisions: which process an event is about ([`Key`]) and what is
//! handed to the backend ([`Delivery`]), including exits whose real status was lost.

use super::{EventInfo, EventType, UNKNOWN_EXIT_CODE};
use crate::task::ExitStatus;

/// (container id, process id).
pub(crate) type Key = (String, String);

pub(crate) fn key(container_id: &str, process_id: &str) -> Key {
    (container_id.to_string(), process_id.to_string())
}

/// Why an exit is delivered with [`UNKNOWN_EXIT_CODE`]: the text of [`EventInfo::error`].
pub(crate) const LOST_DISCONNECTED: &str =
    "exit status lost: the process ended and was removed while the event stream was disconnected";
pub(crate) const LOST_REPLACED: &str =
    "exit status lost: the task was replaced by a new one before its exit was reported";
pub(crate) const LOST_WITH_TASK: &str =
    "exit status lost: the exec process ended with its task before its exit was reported";

/// The status reported for an exit whose real status is gone.
pub(crate) fn unknown_status() -> ExitStatus {
    ExitStatus {
        code: UNKNOWN_EXIT_CODE,
        exited_at: None,
    }
}

/// An event to hand to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) event: EventType,
    pub(crate) info: EventInfo,
    /// An exit the stream did not report: found in a snapshot or a delete, or synthesised.
    pub(crate) recovered: bool,
}

/// How an exit became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// A `TaskExit` event.
    Event,
    /// Anything else; `error` when the real status is lost.
    Recovered { error: Option<&'static str> },
}

impl Delivery {
    pub(crate) fn new(
        event: EventType,
        container_id: &str,
        process_id: &str,
        pid: u32,
    ) -> Delivery {
        Delivery {
            event,
            info: EventInfo {
                container_id: container_id.to_string(),
                process_id: process_id.to_string(),
                pid,
                ..Default::default()
            },
            recovered: false,
        }
    }

    pub(crate) fn exit(key: &Key, pid: u32, status: ExitStatus, found: Found) -> Delivery {
        let (recovered, error) = match found {
            Found::Event => (false, None),
            Found::Recovered { error } => (true, error),
        };
        Delivery {
            event: EventType::Exit,
            info: EventInfo {
                container_id: key.0.clone(),
                process_id: key.1.clone(),
                pid,
                exit_code: status.code,
                exited_at: status.exited_at,
                error: error.map(str::to_string),
            },
            recovered,
        }
    }

    /// The container whose worker handles it.
    pub(crate) fn container_id(&self) -> &str {
        &self.info.container_id
    }
}
