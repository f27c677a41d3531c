//! What lcd records about its containers beyond containerd's own state, in container labels: the
//! rootfs, whether stdin was asked for, and how the last run ended (its code, when, and whether
//! the OOM killer struck) (its task is deleted when lcd sees
//! it stop, so that no shim lingers for an exited container; the record is written first).

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use libcontainerd::{Container, ErrorKind, Id, Task, TaskInfo, TaskStatus};

use crate::container_lock::ContainerLock;
use crate::names;

/// The rootfs directory the container was created from.
pub const LABEL_ROOTFS: &str = "io.lcd.rootfs";
/// Present when the container was created with `-i`.
pub const LABEL_STDIN: &str = "io.lcd.stdin";
/// Exit code of the last run.
pub const LABEL_EXIT_CODE: &str = "io.lcd.exit-code";
/// When the last run ended: seconds since the epoch with nanoseconds (`1700000000.123456789`;
/// whole seconds from older lcds are read too).
pub const LABEL_FINISHED_AT: &str = "io.lcd.finished-at";

/// "true" when the kernel's OOM killer killed a process of the last run, else "false".
pub const LABEL_OOM_KILLED: &str = "io.lcd.oom-killed";

/// How many processes the OOM killer killed in the container's cgroup, while the cgroup exists
/// (from the start of the task until its delete): `oom_kill` of cgroup v2's `memory.events` or
/// v1's `memory.oom_control`. None when neither can be read.
pub fn oom_kills(spec: &libcontainerd::oci_spec::runtime::Spec) -> Option<u64> {
    let path = spec.linux().as_ref()?.cgroups_path().as_ref()?;
    let relative = path.strip_prefix("/").unwrap_or(path);
    let candidates = [
        std::path::Path::new("/sys/fs/cgroup")
            .join(relative)
            .join("memory.events"),
        std::path::Path::new("/sys/fs/cgroup/memory")
            .join(relative)
            .join("memory.oom_control"),
    ];
    candidates.iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    })
}

/// A fresh container id: 16 random hex digits.
pub fn generate_id() -> Result<Id> {
    let mut bytes = [0u8; 8];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `bytes`, which we own.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err).context("generate a container id");
        }
        filled += n as usize;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Id::new(hex)?)
}

/// Record a stopped task's exit on the container, then delete the task (its shim and logger go),
/// under the container's lock (see [`crate::container_lock`]).
/// The record comes first, so that whoever looks in between (or after a kill of this process) sees
/// how the container ended, never a container that ran shown as `Created`. A task already deleted
/// by someone else (lcd's agent, a racing `lcd stop`) is no failure: whoever deleted it recorded
/// the exit; None then. `known`: the exit status when the caller has it already (from a wait or
/// an event), which saves asking containerd.
pub async fn reap_if_present(
    _held: &ContainerLock,
    container: &Container,
    task: &Task,
    known: Option<libcontainerd::ExitStatus>,
) -> Result<Option<libcontainerd::ExitStatus>> {
    let gone = |e: &libcontainerd::Error| e.kind() == ErrorKind::NotFound;
    // The container's task now may be a newer one (started again by `lcd restart` or the agent
    // while whoever holds `task` waited for the lock): that one is not this exit's to delete.
    match container.task().await {
        Ok(current) if current.pid() != task.pid() => return Ok(None),
        Err(e) if gone(&e) => return Ok(None),
        _ => {}
    }
    let status = match known {
        Some(status) => status,
        // A stopped task's wait answers at once.
        None => match task.wait().await {
            Ok(status) => status,
            Err(e) if gone(&e) => return Ok(None),
            // Deleted by a racing command while we asked: containerd 1.7 then answers with the
            // closed connection of the task's shim. Reaped all the same if the task is gone.
            Err(e) if task_went(container).await => {
                tracing::debug!(container = %container.id(), error = %e, "task reaped meanwhile");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        },
    };
    // The cgroup, and its OOM count, goes with the task: read it first.
    let oom_killed = oom_kills(container.spec()).map(|n| n > 0);
    let finished = status.exited_at.unwrap_or_else(SystemTime::now);
    let mut changes = HashMap::new();
    changes.insert(LABEL_EXIT_CODE.to_string(), status.code.to_string());
    changes.insert(LABEL_FINISHED_AT.to_string(), format_time(finished));
    if let Some(killed) = oom_killed {
        changes.insert(LABEL_OOM_KILLED.to_string(), killed.to_string());
    }
    let mut record = container.clone();
    match record.set_labels(&changes).await {
        Ok(()) => {}
        // Removed meanwhile (`rm -f`, the agent's `-d --rm`): nothing left to record on.
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    match task.delete().await {
        Ok(_) => Ok(Some(status)),
        Err(e) if gone(&e) => Ok(None),
        // Two deletes at once (lcd's agent's and a command's): containerd 1.7 answers the loser
        // with the shim's closed connection. Reaped all the same if the task is gone.
        Err(_) if task_went(container).await => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// [`reap_if_present`], taking the container's lock for it.
pub async fn reap_locked(
    ctx: &crate::context::Ctx,
    container: &Container,
    task: &Task,
    known: Option<libcontainerd::ExitStatus>,
) -> Result<Option<libcontainerd::ExitStatus>> {
    let lock = ContainerLock::acquire(ctx, container.id().as_str()).await?;
    let reaped = reap_if_present(&lock, container, task, known).await;
    if matches!(reaped, Ok(None)) {
        // Reaped by someone else, who may have removed the container.
        lock.release(container).await;
    }
    reaped
}

/// Whether `e` says the task or container no longer exists.
pub fn is_gone(e: &anyhow::Error) -> bool {
    e.chain()
        .find_map(|c| c.downcast_ref::<libcontainerd::Error>())
        .is_some_and(|e| e.kind() == ErrorKind::NotFound)
}

/// Whether the container's task is gone, or goes within half a second (a racing delete that is
/// under way).
pub async fn task_went(container: &Container) -> bool {
    for _ in 0..50 {
        match container.task().await {
            Err(lookup) if lookup.kind() == ErrorKind::NotFound => return true,
            Err(_) => return false,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    false
}

/// A container's state as lcd shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Created, never started (or its last run was reaped and it has no record of it).
    Created,
    /// Running (or paused) with this pid.
    Up { pid: u32, status: TaskStatus },
    /// Ended with this code.
    Exited {
        code: u32,
        finished_at: Option<SystemTime>,
    },
}

impl State {
    /// From the container's labels and its task, if it has one.
    pub fn of(labels: &HashMap<String, String>, task: Option<&TaskInfo>) -> State {
        match task {
            Some(t) if t.status == TaskStatus::Stopped => State::Exited {
                code: t.exit_status.map(|s| s.code).unwrap_or(0),
                finished_at: t.exit_status.and_then(|s| s.exited_at),
            },
            Some(t) if t.status != TaskStatus::Created => State::Up {
                pid: t.pid,
                status: t.status,
            },
            _ => match labels.get(LABEL_EXIT_CODE).and_then(|c| c.parse().ok()) {
                Some(code) => State::Exited {
                    code,
                    finished_at: labels.get(LABEL_FINISHED_AT).and_then(|s| parse_time(s)),
                },
                None => State::Created,
            },
        }
    }

    /// docker's one-word state: created, running, paused, exited.
    pub fn name(&self) -> &'static str {
        match self {
            State::Created => "created",
            State::Up {
                status: TaskStatus::Paused | TaskStatus::Pausing,
                ..
            } => "paused",
            State::Up { .. } => "running",
            State::Exited { .. } => "exited",
        }
    }

    /// Running or paused.
    pub fn is_up(&self) -> bool {
        matches!(self, State::Up { .. })
    }
}

/// `secs.nanos` since the epoch, as [`LABEL_FINISHED_AT`] keeps it.
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// docker's CreatedAt in `ps` and `images`: `2006-01-02 15:04:05 +0000 UTC`.
pub fn docker_time(t: SystemTime) -> String {
    // 2006-01-02T15:04:05.000000000Z
    let rfc = libcontainerd::time::rfc3339(t);
    format!("{} {} +0000 UTC", &rfc[..10], &rfc[11..19])
}

/// The inverse of [`format_time`]; whole seconds too.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = text.split_once('.').unwrap_or((text, "0"));
    let secs: u64 = secs.parse().ok()?;
    let digits = &nanos[..nanos.len().min(9)];
    let nanos: u32 = format!("{digits:0<9}").parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

/// Load the container a user means by `given`, as docker finds it: the container named `given`,
/// else the one of that id, else the one whose id starts with `given` (see [`crate::names`]). No
/// match is containerd's "no such container"; several are an error naming them. Every command that
/// takes a container finds it through this, [`load_with_task`] or [`locked_load_with_task`]. The
/// common case, an id that is its container's name, is one RPC.
pub async fn load(client: &libcontainerd::Client, given: &str) -> Result<Container> {
    let id = Id::new(given)?;
    let other = match client.load_container(&id).await {
        Ok(exact) => match names::named_instead(client, given, &exact).await? {
            None => return Ok(exact),
            Some(other) => other,
        },
        Err(e) if e.kind() == ErrorKind::NotFound => names::find(client, given, e).await?,
        Err(e) => return Err(e.into()),
    };
    Ok(client.load_container(&other).await?)
}

/// Load a container (by name, id or id prefix, see [`load`]) and its task with the task's status,
/// both lookups at once; the task is None if the container has none.
pub async fn load_with_task(
    client: &libcontainerd::Client,
    given: &str,
) -> Result<(Container, Option<(Task, TaskStatus)>)> {
    let id = Id::new(given)?;
    let (container, task) = match client.load_container_and_task(&id).await {
        Ok((exact, task)) => match names::named_instead(client, given, &exact).await? {
            None => (exact, task),
            Some(other) => client.load_container_and_task(&other).await?,
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let other = names::find(client, given, e).await?;
            client.load_container_and_task(&other).await?
        }
        Err(e) => return Err(e.into()),
    };
    Ok((container, settle_unknown(task).await?))
}

/// [`load_with_task`] under the container's lock: the container is found (by name, id or
/// prefix), its lock taken, and both looked up again by its id, as whoever held the lock may have
/// changed them.
pub async fn locked_load_with_task(
    ctx: &crate::context::Ctx,
    client: &libcontainerd::Client,
    given: &str,
) -> Result<(ContainerLock, Container, Option<(Task, TaskStatus)>)> {
    let container = load(client, given).await?;
    let lock = ContainerLock::acquire(ctx, container.id().as_str()).await?;
    let (container, task) = match client.load_container_and_task(container.id()).await {
        Ok(found) => found,
        Err(e) => {
            // Removed while we waited: its lock file goes too.
            if e.kind() == ErrorKind::NotFound {
                lock.remove();
            }
            return Err(e.into());
        }
    };
    Ok((lock, container, settle_unknown(task).await?))
}

/// Release the execs of a live task whose `lcd exec` was killed: while the shim waits for such a
/// client to open the exec's output (up to 30 s), it answers nothing else, so stop, kill and even
/// the task's state hang or fail; containerd then says UNKNOWN (pid 0). A task that exists and has
/// not stopped counts as running everywhere in lcd, UNKNOWN included; after a release its state is
/// asked again.
async fn settle_unknown(task: Option<(Task, TaskStatus)>) -> Result<Option<(Task, TaskStatus)>> {
    match task {
        Some((task, status)) if status != TaskStatus::Stopped => {
            let released = task.release_abandoned_execs().await?;
            if released > 0 && status == TaskStatus::Unknown {
                let status = task.status().await?;
                return Ok(Some((task, status)));
            }
            Ok(Some((task, status)))
        }
        other => Ok(other),
    }
}

/// The task of a loaded container and its status now, or None if it has none (also when it is
/// deleted between the two lookups, as lcd's agent does once a detached container exits).
pub async fn task_with_status(container: &Container) -> Result<Option<(Task, TaskStatus)>> {
    let task = match container.task().await {
        Ok(task) => task,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match task.status().await {
        Ok(status) => settle_unknown(Some((task, status))).await,
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The task if it is running (or paused); otherwise docker's "is not running" error.
pub fn running(id: &Id, task: Option<(Task, TaskStatus)>) -> Result<Task> {
    match task {
        // UNKNOWN is a task that exists and has not stopped (see `settle_unknown`): as running.
        Some((
            task,
            TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing | TaskStatus::Unknown,
        )) => Ok(task),
        _ => anyhow::bail!("container {id} is not running"),
    }
}

/// The task of container `id` if it is running (or paused), or docker's "is not running" error.
pub async fn running_task(client: &libcontainerd::Client, id: &str) -> Result<Task> {
    let (container, task) = load_with_task(client, id).await?;
    running(container.id(), task)
}

/// "2 minutes", "3 hours": docker's rough durations.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".to_string(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate_id().unwrap();
        let b = generate_id().unwrap();
        assert_eq!(a.as_str().len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn state_from_labels_when_the_task_is_gone() {
        let mut labels = HashMap::new();
        assert_eq!(State::of(&labels, None), State::Created);
        labels.insert(LABEL_EXIT_CODE.into(), "3".into());
        labels.insert(LABEL_FINISHED_AT.into(), "100".into());
        let state = State::of(&labels, None);
        assert_eq!(state.name(), "exited");
        assert!(matches!(state, State::Exited { code: 3, .. }));
    }

    #[test]
    fn finish_times_keep_nanoseconds_and_read_whole_seconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 120_000_007);
        assert_eq!(format_time(t), "1700000000.120000007");
        assert_eq!(parse_time(&format_time(t)), Some(t));
        assert_eq!(
            parse_time("100"),
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100))
        );
        assert_eq!(parse_time("x"), None);
    }

    #[test]
    fn durations_read_like_dockers() {
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
    }
}
