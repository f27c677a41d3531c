//! Event decoding and the monitor's bookkeeping, fed hostile envelopes.
//!
//! The decoder (`events/decode.rs`) and the table with its reconcile (`events/table.rs`,
//! `events/reconcile.rs` and the modules they use) are crate-private, so they are compiled here from
//! the library's own source files, with the crate paths they use (`crate::task`, `crate::time`,
//! `super::…`) provided below: the code under test is the library's, byte for byte.
//!
//! Each input is a sequence of operations: an envelope payload (a well-formed event of a random type
//! with random fields, or random bytes under a known or random type URL), an empty envelope, a
//! reconnect snapshot, or an exit waiter. Checked, besides "no panic, no hang":
//! - a well-formed event decodes to exactly its fields, whatever type-URL spelling carries it (a pid
//!   of -1, as containerd sends one it could not read, decodes as 0: unknown);
//! - the table never delivers the same exit twice: a second exit for a (container, process) with the
//!   same pid needs a new process under that id (create, start, exec, a listed task) in between;
//! - an exit delivered with an error ("status lost") carries the unknown exit code 255.

#![no_main]

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use containerd_client::events::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIo,
    TaskOom, TaskPaused, TaskResumed, TaskStart,
};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::{Message, Name};
use prost_types::{Any, Timestamp};

/// What `crate::task` is for the included files.
mod task {
    pub use libcontainerd::task::{ExitStatus, TaskInfo, TaskStatus};
}

/// `crate::time`, from the library's source.
#[allow(dead_code)]
#[path = "../../crates/libcontainerd/src/time.rs"]
mod time;

// The private modules of `crate::events` that make the decisions, from the library's source. They sit
// at the crate root here, so their `super::` is this file, which provides what `crate::events` does.
#[allow(dead_code)]
#[path = "../../crates/libcontainerd/src/events/decode.rs"]
mod decode;

#[allow(dead_code)]
#[path = "../../crates/libcontainerd/src/events/delivery.rs"]
mod delivery;

#[allow(dead_code)]
#[path = "../../crates/libcontainerd/src/events/tombs.rs"]
mod tombs;

#[allow(dead_code)]
#[path = "../../crates/libcontainerd/src/events/waiters.rs"]
mod waiters;

#[allow(dead_code)]
#[path = "../../crates/libcontainerd/src/events/table.rs"]
mod table;

#[allow(dead_code)]
#[path = "../../crates/libcontainerd/src/events/reconcile.rs"]
mod reconcile;

use libcontainerd::events::{EventInfo, EventType, UNKNOWN_EXIT_CODE};

use decode::{decode, DecodeError, Decoded, TaskEvent};
use delivery::Delivery;
use reconcile::Snapshot;
use table::Table;
use waiters::Registered;
use task::{ExitStatus, TaskInfo, TaskStatus};

/// Few ids, so that events collide on the same processes.
const CONTAINERS: [&str; 3] = ["c1", "c2", "c3"];
const PROCESSES: [&str; 5] = ["", "c1", "c2", "e1", "e2"];

/// Up to `max` random bytes as text.
fn text(u: &mut Unstructured<'_>, max: usize) -> ArbResult<String> {
    let len = u.int_in_range(0..=max)?;
    Ok(String::from_utf8_lossy(u.bytes(len)?).into_owned())
}

fn container(u: &mut Unstructured<'_>) -> ArbResult<String> {
    Ok(u.choose(&CONTAINERS)?.to_string())
}

fn process(u: &mut Unstructured<'_>) -> ArbResult<String> {
    Ok(u.choose(&PROCESSES)?.to_string())
}

/// A small pid, or `u32::MAX`: the -1 containerd sends when it could not read a pid file.
fn pid(u: &mut Unstructured<'_>) -> ArbResult<u32> {
    Ok(match u.int_in_range(0..=4)? {
        4 => u32::MAX,
        n => n,
    })
}

/// What the decoder makes of an event's pid: one containerd could not learn is 0, unknown.
fn decoded_pid(raw: u32) -> u32 {
    if raw == u32::MAX {
        0
    } else {
        raw
    }
}

fn exit_code(u: &mut Unstructured<'_>) -> ArbResult<u32> {
    Ok(match u.int_in_range(0..=3)? {
        0 => 0,
        1 => 137,
        2 => 255,
        _ => u.arbitrary()?,
    })
}

fn timestamp(u: &mut Unstructured<'_>) -> ArbResult<Option<Timestamp>> {
    Ok(match u.int_in_range(0..=3)? {
        0 => None,
        // containerd's zero time (year 1).
        1 => Some(Timestamp {
            seconds: -62_135_596_800,
            nanos: 0,
        }),
        2 => Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        _ => Some(Timestamp {
            seconds: u.arbitrary()?,
            nanos: u.arbitrary()?,
        }),
    })
}

/// The status the decoder must derive from an event's code and time.
fn status(code: u32, ts: Option<&Timestamp>) -> ExitStatus {
    ExitStatus {
        code,
        exited_at: ts.and_then(|t| {
            if t.seconds <= 0 {
                return None;
            }
            let nanos = u32::try_from(t.nanos).unwrap_or(0);
            UNIX_EPOCH.checked_add(Duration::new(u64::try_from(t.seconds).ok()?, nanos))
        }),
    }
}

fn normalised(container_id: &str, id: &str) -> String {
    if id.is_empty() {
        container_id.to_string()
    } else {
        id.to_string()
    }
}

/// A well-formed event of a random type: its type name, its bytes and what decoding must give.
fn event(u: &mut Unstructured<'_>) -> ArbResult<(String, Vec<u8>, Decoded)> {
    let task = Decoded::Task;
    Ok(match u.int_in_range(0..=10)? {
        0 => {
            let e = TaskCreate {
                container_id: container(u)?,
                pid: pid(u)?,
                ..Default::default()
            };
            let want = task(TaskEvent::Create {
                container_id: e.container_id.clone(),
                pid: decoded_pid(e.pid),
            });
            (TaskCreate::full_name(), e.encode_to_vec(), want)
        }
        1 => {
            let e = TaskStart {
                container_id: container(u)?,
                pid: pid(u)?,
            };
            let want = task(TaskEvent::Start {
                container_id: e.container_id.clone(),
                pid: decoded_pid(e.pid),
            });
            (TaskStart::full_name(), e.encode_to_vec(), want)
        }
        2 => {
            let e = TaskExit {
                container_id: container(u)?,
                id: process(u)?,
                pid: pid(u)?,
                exit_status: exit_code(u)?,
                exited_at: timestamp(u)?,
            };
            let want = task(TaskEvent::Exit {
                container_id: e.container_id.clone(),
                process_id: normalised(&e.container_id, &e.id),
                pid: decoded_pid(e.pid),
                status: status(e.exit_status, e.exited_at.as_ref()),
            });
            (TaskExit::full_name(), e.encode_to_vec(), want)
        }
        3 => {
            let e = TaskOom {
                container_id: container(u)?,
            };
            let want = task(TaskEvent::Oom {
                container_id: e.container_id.clone(),
            });
            (TaskOom::full_name(), e.encode_to_vec(), want)
        }
        4 => {
            let e = TaskExecAdded {
                container_id: container(u)?,
                exec_id: process(u)?,
            };
            let want = task(TaskEvent::ExecAdded {
                container_id: e.container_id.clone(),
                exec_id: e.exec_id.clone(),
            });
            (TaskExecAdded::full_name(), e.encode_to_vec(), want)
        }
        5 => {
            let e = TaskExecStarted {
                container_id: container(u)?,
                exec_id: process(u)?,
                pid: pid(u)?,
            };
            let want = task(TaskEvent::ExecStarted {
                container_id: e.container_id.clone(),
                exec_id: e.exec_id.clone(),
                pid: decoded_pid(e.pid),
            });
            (TaskExecStarted::full_name(), e.encode_to_vec(), want)
        }
        6 => {
            let e = TaskPaused {
                container_id: container(u)?,
            };
            let want = task(TaskEvent::Paused {
                container_id: e.container_id.clone(),
            });
            (TaskPaused::full_name(), e.encode_to_vec(), want)
        }
        7 => {
            let e = TaskResumed {
                container_id: container(u)?,
            };
            let want = task(TaskEvent::Resumed {
                container_id: e.container_id.clone(),
            });
            (TaskResumed::full_name(), e.encode_to_vec(), want)
        }
        8 => {
            let e = TaskDelete {
                container_id: container(u)?,
                id: process(u)?,
                pid: pid(u)?,
                exit_status: exit_code(u)?,
                exited_at: timestamp(u)?,
            };
            let want = task(TaskEvent::Delete {
                container_id: e.container_id.clone(),
                process_id: normalised(&e.container_id, &e.id),
                pid: decoded_pid(e.pid),
                status: status(e.exit_status, e.exited_at.as_ref()),
            });
            (TaskDelete::full_name(), e.encode_to_vec(), want)
        }
        9 => {
            let e = TaskIo {
                stdin: "/in".into(),
                ..Default::default()
            };
            (TaskIo::full_name(), e.encode_to_vec(), Decoded::Ignored)
        }
        _ => {
            let e = TaskCheckpointed {
                container_id: container(u)?,
                checkpoint: String::new(),
            };
            (
                TaskCheckpointed::full_name(),
                e.encode_to_vec(),
                Decoded::Ignored,
            )
        }
    })
}

/// The names the decoder knows.
fn known_names() -> Vec<String> {
    vec![
        TaskCreate::full_name(),
        TaskStart::full_name(),
        TaskExit::full_name(),
        TaskOom::full_name(),
        TaskExecAdded::full_name(),
        TaskExecStarted::full_name(),
        TaskPaused::full_name(),
        TaskResumed::full_name(),
        TaskDelete::full_name(),
        TaskIo::full_name(),
        TaskCheckpointed::full_name(),
    ]
}

/// The spellings of a type URL that mean the same type.
fn spell(u: &mut Unstructured<'_>, name: &str) -> ArbResult<String> {
    Ok(match u.int_in_range(0..=2)? {
        0 => name.to_string(),
        1 => format!("/{name}"),
        _ => format!("type.googleapis.com/{name}"),
    })
}

/// Per (container, process): the pid of the last exit delivered since a new process last appeared.
#[derive(Default)]
struct Delivered {
    last_exit: HashMap<(String, String), u32>,
}

impl Delivered {
    fn check(&mut self, deliveries: &[Delivery], what: &str) {
        for d in deliveries {
            if tracing_on() {
                eprintln!(
                    "  -> {:?} {:?} pid {} code {} err {:?}",
                    d.event,
                    (&d.info.container_id, &d.info.process_id),
                    d.info.pid,
                    d.info.exit_code,
                    d.info.error
                );
            }
            if d.event != EventType::Exit {
                continue;
            }
            let info = &d.info;
            if info.error.is_some() {
                assert_eq!(
                    info.exit_code, UNKNOWN_EXIT_CODE,
                    "a lost status must read 255: {d:?}"
                );
            }
            let key = (info.container_id.clone(), info.process_id.clone());
            // Pid 0 is "unknown": the table then goes by what it knows of the process, so only the
            // same pid twice (or unknown twice) is surely the same process.
            if let Some(&last) = self.last_exit.get(&key) {
                assert!(
                    last != info.pid,
                    "exit of {key:?} delivered twice (pid {last}, then pid {}) without a new process in between, after {what}: {d:?}",
                    info.pid
                );
            }
            self.last_exit.insert(key, info.pid);
        }
    }

    /// A new process may now run under this id: its exit is a new one.
    fn rearm(&mut self, container_id: &str, process_id: &str) {
        self.last_exit
            .remove(&(container_id.to_string(), process_id.to_string()));
    }
}

fn task_status(u: &mut Unstructured<'_>) -> ArbResult<TaskStatus> {
    Ok(*u.choose(&[
        TaskStatus::Created,
        TaskStatus::Running,
        TaskStatus::Stopped,
        TaskStatus::Paused,
        TaskStatus::Unknown,
    ])?)
}

fn task_info(u: &mut Unstructured<'_>, container_id: String) -> ArbResult<TaskInfo> {
    let status = task_status(u)?;
    let exit_status = if status == TaskStatus::Stopped && u.arbitrary()? {
        Some(ExitStatus {
            code: exit_code(u)?,
            exited_at: None,
        })
    } else {
        None
    };
    Ok(TaskInfo {
        container_id,
        pid: pid(u)?,
        status,
        exit_status,
    })
}

fn snapshot(u: &mut Unstructured<'_>) -> ArbResult<Snapshot> {
    let mut tasks = Vec::new();
    for c in CONTAINERS {
        if u.arbitrary()? {
            tasks.push(task_info(u, c.to_string())?);
        }
    }
    let mut execs = HashMap::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let key = (container(u)?, process(u)?);
        let info = if u.arbitrary()? {
            Some(task_info(u, key.0.clone())?)
        } else {
            None
        };
        execs.insert(key, info);
    }
    Ok(Snapshot { tasks, execs })
}

fn run(data: &[u8]) -> ArbResult<()> {
    let mut u = Unstructured::new(data);
    let names = known_names();
    let mut table = Table::new();
    let mut delivered = Delivered::default();
    let mut waiters = Vec::new();
    while !u.is_empty() {
        match u.int_in_range(0..=15)? {
            // A well-formed event, under any spelling of its type.
            0..=8 => {
                let (name, value, want) = event(&mut u)?;
                let any = Any {
                    type_url: spell(&mut u, &name)?,
                    value,
                };
                let got = decode(Some(&any));
                assert_eq!(got, Ok(want), "{any:?}");
                if let Ok(Decoded::Task(e)) = got {
                    apply(&mut table, &mut delivered, e);
                }
            }
            // Random bytes under a known type, or a random type.
            9..=11 => {
                let type_url = if u.ratio(1, 4)? {
                    text(&mut u, 40)?
                } else {
                    let name = u.choose(&names)?.clone();
                    spell(&mut u, &name)?
                };
                let len = u.int_in_range(0..=64)?;
                let any = Any {
                    type_url,
                    value: u.bytes(len)?.to_vec(),
                };
                match decode(Some(&any)) {
                    Ok(Decoded::Task(e)) => apply(&mut table, &mut delivered, e),
                    Ok(Decoded::Ignored) => {}
                    Err(DecodeError::UnknownType(t)) => assert_eq!(t, any.type_url),
                    Err(e) => {
                        // Every error explains itself on one line.
                        let text = e.to_string();
                        assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
                    }
                }
            }
            12 => assert_eq!(decode(None), Err(DecodeError::Empty)),
            // A reconnect: containerd's view of the tasks.
            13 => {
                let snap = snapshot(&mut u)?;
                let back = u.int_in_range(0..=2)?;
                let since = table.seq().saturating_sub(back);
                let deliver = u.arbitrary()?;
                if tracing_on() {
                    eprintln!("reconcile since {since} deliver {deliver}: {snap:?}");
                }
                let out = table.reconcile(&snap, since, deliver);
                delivered.check(&out, "a reconcile");
                // A listed task that is running, or has another pid than the last exit delivered
                // under its id, is a process of its own (pids are reused: a later one may have the
                // earlier pid again).
                for t in &snap.tasks {
                    let key = (t.container_id.clone(), t.container_id.clone());
                    if t.status != TaskStatus::Stopped
                        || delivered.last_exit.get(&key) != Some(&t.pid)
                    {
                        delivered.rearm(&t.container_id, &t.container_id);
                    }
                }
                // The same for a listed exec the table may adopt (started: it has a pid).
                for (key, info) in &snap.execs {
                    let Some(info) = info else { continue };
                    let adoptable = info.pid != 0 && !key.1.is_empty() && key.0 != key.1;
                    if adoptable
                        && (info.status != TaskStatus::Stopped
                            || delivered.last_exit.get(key) != Some(&info.pid))
                    {
                        delivered.rearm(&key.0, &key.1);
                    }
                }
                let _ = table.alive_execs();
            }
            // Someone waits for an exit.
            14 => {
                let (c, p) = (container(&mut u)?, process(&mut u)?);
                let want_pid = if u.arbitrary()? {
                    Some(pid(&mut u)?)
                } else {
                    None
                };
                if tracing_on() {
                    eprintln!("register {c} {p} {want_pid:?}");
                }
                match table.register(&c, &p, want_pid) {
                    Registered::Pending(rx) => waiters.push(rx),
                    Registered::Ready(_) | Registered::Closed => {}
                }
            }
            _ => {
                waiters.truncate(waiters.len() / 2);
                table.prune_waiters();
            }
        }
    }
    table.close();
    Ok(())
}

/// `LCD_FUZZ_TRACE=1` prints every operation and its deliveries (to replay a crash input).
fn tracing_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LCD_FUZZ_TRACE").is_some())
}

fn apply(table: &mut Table, delivered: &mut Delivered, event: TaskEvent) {
    let what = format!("{event:?}");
    if tracing_on() {
        eprintln!("apply {what}");
    }
    let rearm = match &event {
        TaskEvent::Create { container_id, .. } | TaskEvent::Start { container_id, .. } => {
            Some((container_id.clone(), container_id.clone()))
        }
        TaskEvent::ExecAdded {
            container_id,
            exec_id,
        }
        | TaskEvent::ExecStarted {
            container_id,
            exec_id,
            ..
        } => Some((container_id.clone(), exec_id.clone())),
        _ => None,
    };
    let out = table.apply(event);
    delivered.check(&out, &what);
    if let Some((c, p)) = rearm {
        delivered.rearm(&c, &p);
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
