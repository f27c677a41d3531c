//! From containerd's envelopes to the task events the monitor works with.

use containerd_client::events::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIo,
    TaskOom, TaskPaused, TaskResumed, TaskStart,
};
use prost::{Message, Name};
use prost_types::Any;

use crate::task::ExitStatus;
use crate::time::from_timestamp;

/// A task event, decoded. Process ids are already normalised: the init process's id is the
/// container id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskEvent {
    Create {
        container_id: String,
        pid: u32,
    },
    Start {
        container_id: String,
        pid: u32,
    },
    Exit {
        container_id: String,
        process_id: String,
        pid: u32,
        status: ExitStatus,
    },
    Oom {
        container_id: String,
    },
    ExecAdded {
        container_id: String,
        exec_id: String,
    },
    ExecStarted {
        container_id: String,
        exec_id: String,
        pid: u32,
    },
    Paused {
        container_id: String,
    },
    Resumed {
        container_id: String,
    },
    /// Not forwarded, but it carries the exit status of the deleted process, and it tells the monitor
    /// to forget the process.
    Delete {
        container_id: String,
        process_id: String,
        pid: u32,
        status: ExitStatus,
    },
}

/// What an envelope's payload turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// An event the monitor acts on.
    Task(TaskEvent),
    /// A known task event that is not forwarded (`TaskIO`, `TaskCheckpointed`).
    Ignored,
}

/// Why a payload was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The envelope had no payload.
    Empty,
    /// A type this library does not know.
    UnknownType(String),
    /// A known type whose bytes do not decode.
    Malformed { type_name: String, error: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("the envelope carries no event"),
            DecodeError::UnknownType(t) => write!(f, "unknown event type {t:?}"),
            DecodeError::Malformed { type_name, error } => {
                write!(f, "cannot decode {type_name}: {error}")
            }
        }
    }
}

/// The type name of an `Any`: containerd sends `containerd.events.TaskExit` (no leading slash, unlike
/// what prost's `Any::to_msg` expects); a `type.googleapis.com/` style prefix is tolerated too.
fn type_name(any: &Any) -> &str {
    any.type_url.rsplit('/').next().unwrap_or_default()
}

fn parse<M: Message + Name + Default>(any: &Any) -> Result<M, DecodeError> {
    M::decode(any.value.as_slice()).map_err(|e| DecodeError::Malformed {
        type_name: M::full_name(),
        error: e.to_string(),
    })
}

/// The init process's exits and deletes carry either an empty id or the container id.
fn process_id(container_id: &str, id: String) -> String {
    if id.is_empty() {
        container_id.to_string()
    } else {
        id
    }
}

/// The largest pid Linux hands out (`PID_MAX_LIMIT` on 64-bit: `pid_max` cannot be set higher).
const PID_MAX_LIMIT: u32 = 1 << 22;

/// An event's pid, 0 when containerd could not learn it. containerd sends 0, or -1 as a uint32 when
/// a pid file could not be read: the exit and delete it publishes for a task whose shim died take the
/// pid from the shim binary's cleanup, which reads the bundle's `init.pid` and ignores a failure. Such
/// a pid must not be taken for another process's; "unknown" lets the table use the pid it knows.
fn pid(raw: u32) -> u32 {
    if raw > PID_MAX_LIMIT {
        0
    } else {
        raw
    }
}

fn status(code: u32, exited_at: Option<&prost_types::Timestamp>) -> ExitStatus {
    ExitStatus {
        code,
        exited_at: exited_at.and_then(from_timestamp),
    }
}

/// Decode one envelope payload.
pub(crate) fn decode(event: Option<&Any>) -> Result<Decoded, DecodeError> {
    let any = event.ok_or(DecodeError::Empty)?;
    let name = type_name(any);
    let task = |e: TaskEvent| Ok(Decoded::Task(e));
    if name == TaskCreate::full_name() {
        let e: TaskCreate = parse(any)?;
        task(TaskEvent::Create {
            container_id: e.container_id,
            pid: pid(e.pid),
        })
    } else if name == TaskStart::full_name() {
        let e: TaskStart = parse(any)?;
        task(TaskEvent::Start {
            container_id: e.container_id,
            pid: pid(e.pid),
        })
    } else if name == TaskExit::full_name() {
        let e: TaskExit = parse(any)?;
        task(TaskEvent::Exit {
            process_id: process_id(&e.container_id, e.id),
            container_id: e.container_id,
            pid: pid(e.pid),
            status: status(e.exit_status, e.exited_at.as_ref()),
        })
    } else if name == TaskOom::full_name() {
        let e: TaskOom = parse(any)?;
        task(TaskEvent::Oom {
            container_id: e.container_id,
        })
    } else if name == TaskExecAdded::full_name() {
        let e: TaskExecAdded = parse(any)?;
        task(TaskEvent::ExecAdded {
            container_id: e.container_id,
            exec_id: e.exec_id,
        })
    } else if name == TaskExecStarted::full_name() {
        let e: TaskExecStarted = parse(any)?;
        task(TaskEvent::ExecStarted {
            container_id: e.container_id,
            exec_id: e.exec_id,
            pid: pid(e.pid),
        })
    } else if name == TaskPaused::full_name() {
        let e: TaskPaused = parse(any)?;
        task(TaskEvent::Paused {
            container_id: e.container_id,
        })
    } else if name == TaskResumed::full_name() {
        let e: TaskResumed = parse(any)?;
        task(TaskEvent::Resumed {
            container_id: e.container_id,
        })
    } else if name == TaskDelete::full_name() {
        let e: TaskDelete = parse(any)?;
        task(TaskEvent::Delete {
            process_id: process_id(&e.container_id, e.id),
            container_id: e.container_id,
            pid: pid(e.pid),
            status: status(e.exit_status, e.exited_at.as_ref()),
        })
    } else if name == TaskIo::full_name() || name == TaskCheckpointed::full_name() {
        Ok(Decoded::Ignored)
    } else {
        Err(DecodeError::UnknownType(any.type_url.clone()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn any<M: Message + Name>(m: &M, slash: bool) -> Any {
        let prefix = if slash { "/" } else { "" };
        Any {
            type_url: format!("{prefix}{}", M::full_name()),
            value: m.encode_to_vec(),
        }
    }

    #[test]
    fn exits_decode_with_and_without_a_leading_slash() {
        let exit = TaskExit {
            container_id: "c1".into(),
            id: "c1".into(),
            pid: 42,
            exit_status: 7,
            exited_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
        };
        let want = Decoded::Task(TaskEvent::Exit {
            container_id: "c1".into(),
            process_id: "c1".into(),
            pid: 42,
            status: ExitStatus {
                code: 7,
                exited_at: Some(UNIX_EPOCH + Duration::new(1_700_000_000, 5)),
            },
        });
        assert_eq!(decode(Some(&any(&exit, false))).unwrap(), want);
        assert_eq!(decode(Some(&any(&exit, true))).unwrap(), want);
    }

    #[test]
    fn an_exit_without_id_is_the_init_process() {
        let exit = TaskExit {
            container_id: "c1".into(),
            pid: 42,
            ..Default::default()
        };
        match decode(Some(&any(&exit, false))).unwrap() {
            Decoded::Task(TaskEvent::Exit {
                process_id, status, ..
            }) => {
                assert_eq!(process_id, "c1");
                assert_eq!(status.exited_at, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pid_containerd_could_not_read_is_unknown() {
        for (raw, want) in [
            (u32::MAX, 0),
            (PID_MAX_LIMIT + 1, 0),
            (PID_MAX_LIMIT, PID_MAX_LIMIT),
        ] {
            let exit = TaskExit {
                container_id: "c1".into(),
                pid: raw,
                exit_status: 137,
                ..Default::default()
            };
            match decode(Some(&any(&exit, false))).unwrap() {
                Decoded::Task(TaskEvent::Exit { pid, .. }) => assert_eq!(pid, want, "{raw}"),
                other => panic!("{other:?}"),
            }
            let delete = TaskDelete {
                container_id: "c1".into(),
                pid: raw,
                ..Default::default()
            };
            match decode(Some(&any(&delete, false))).unwrap() {
                Decoded::Task(TaskEvent::Delete { pid, .. }) => assert_eq!(pid, want, "{raw}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn every_forwarded_kind_decodes() {
        let cases: Vec<(Any, TaskEvent)> = vec![
            (
                any(
                    &TaskCreate {
                        container_id: "c".into(),
                        pid: 3,
                        ..Default::default()
                    },
                    false,
                ),
                TaskEvent::Create {
                    container_id: "c".into(),
                    pid: 3,
                },
            ),
            (
                any(
                    &TaskStart {
                        container_id: "c".into(),
                        pid: 3,
                    },
                    false,
                ),
                TaskEvent::Start {
                    container_id: "c".into(),
                    pid: 3,
                },
            ),
            (
                any(
                    &TaskOom {
                        container_id: "c".into(),
                    },
                    false,
                ),
                TaskEvent::Oom {
                    container_id: "c".into(),
                },
            ),
            (
                any(
                    &TaskExecAdded {
                        container_id: "c".into(),
                        exec_id: "e".into(),
                    },
                    false,
                ),
                TaskEvent::ExecAdded {
                    container_id: "c".into(),
                    exec_id: "e".into(),
                },
            ),
            (
                any(
                    &TaskExecStarted {
                        container_id: "c".into(),
                        exec_id: "e".into(),
                        pid: 9,
                    },
                    false,
                ),
                TaskEvent::ExecStarted {
                    container_id: "c".into(),
                    exec_id: "e".into(),
                    pid: 9,
                },
            ),
            (
                any(
                    &TaskPaused {
                        container_id: "c".into(),
                    },
                    false,
                ),
                TaskEvent::Paused {
                    container_id: "c".into(),
                },
            ),
            (
                any(
                    &TaskResumed {
                        container_id: "c".into(),
                    },
                    false,
                ),
                TaskEvent::Resumed {
                    container_id: "c".into(),
                },
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(decode(Some(&payload)).unwrap(), Decoded::Task(want));
        }
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        assert_eq!(decode(None), Err(DecodeError::Empty));
        let unknown = Any {
            type_url: "example.Whatever".into(),
            value: vec![1, 2, 3],
        };
        assert!(matches!(
            decode(Some(&unknown)),
            Err(DecodeError::UnknownType(_))
        ));
        // Field 1 declared as a string of length 100 with 2 bytes present.
        let garbage = Any {
            type_url: TaskExit::full_name(),
            value: vec![0x0a, 100, b'a', b'b'],
        };
        let err = decode(Some(&garbage)).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("containerd.events.TaskExit"));
        let io = any(&TaskIo::default(), false);
        assert_eq!(decode(Some(&io)).unwrap(), Decoded::Ignored);
    }
}
