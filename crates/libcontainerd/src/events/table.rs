//! What the monitor knows about the namespace's processes, and the decisions made from it: which
//! events to forward, which exit is a duplicate, which exits a reconnect missed, who waits for what.
//!
//! Pure bookkeeping, no I/O, so the rules are unit-tested here. The monitor keeps it under a mutex that
//! is only held for these synchronous calls (never across an RPC or an await).

use std::collections::{HashMap, VecDeque};

use tokio::sync::oneshot;

use super::decode::TaskEvent;
use super::{EventInfo, EventType, UNKNOWN_EXIT_CODE};
use crate::task::{ExitStatus, TaskInfo, TaskStatus};

/// (container id, process id).
pub(crate) type Key = (String, String);

/// How many forgotten processes are remembered to recognise late duplicate exits. A late exit comes
/// seconds after the first, so a few thousand entries cover far more than any realistic window while
/// bounding memory.
const TOMBSTONES: usize = 4096;

const LOST_DISCONNECTED: &str =
    "exit status lost: the process ended and was removed while the event stream was disconnected";
const LOST_REPLACED: &str =
    "exit status lost: the task was replaced by a new one before its exit was reported";
const LOST_WITH_TASK: &str =
    "exit status lost: the exec process ended with its task before its exit was reported";

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
enum Found {
    /// A `TaskExit` event.
    Event,
    /// Anything else; `error` when the real status is lost.
    Recovered { error: Option<&'static str> },
}

impl Delivery {
    fn new(event: EventType, container_id: &str, process_id: &str, pid: u32) -> Delivery {
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

    fn exit(key: &Key, pid: u32, status: ExitStatus, found: Found) -> Delivery {
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

/// What containerd reported when the monitor (re)connected.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Every task (init process) of the namespace.
    pub(crate) tasks: Vec<TaskInfo>,
    /// The execs the monitor asked about; `None` when containerd no longer has the process.
    pub(crate) execs: HashMap<Key, Option<TaskInfo>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Alive,
    Exited(ExitStatus),
}

#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: u32,
    life: Life,
    /// The table's event sequence number when this entry last changed.
    seq: u64,
}

/// What a snapshot says about a process the monitor knows.
enum Observed<'a> {
    /// The same process (same pid), in this state.
    Same(&'a TaskInfo),
    /// containerd no longer has it, or has another process under its id.
    Gone,
    /// The snapshot does not say.
    Unknown,
}

/// A forgotten process: enough to drop its late exits and answer late waiters.
#[derive(Debug, Clone, Copy)]
struct Tomb {
    pid: u32,
    status: ExitStatus,
}

/// A bounded memory of forgotten processes: the oldest is dropped first.
#[derive(Default)]
struct Tombs {
    map: HashMap<Key, (u64, Tomb)>,
    order: VecDeque<(Key, u64)>,
    next: u64,
}

impl Tombs {
    fn insert(&mut self, key: Key, tomb: Tomb) {
        self.next += 1;
        self.map.insert(key.clone(), (self.next, tomb));
        self.order.push_back((key, self.next));
        while self.order.len() > TOMBSTONES {
            if let Some((old, generation)) = self.order.pop_front() {
                // Only the latest insertion of a key owns the map entry.
                if self.map.get(&old).is_some_and(|(g, _)| *g == generation) {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn get(&self, key: &Key) -> Option<Tomb> {
        self.map.get(key).map(|(_, t)| *t)
    }

    /// Whether an exit of `pid` for `key` is one already delivered (pid 0 means unknown: match).
    fn matches(&self, key: &Key, pid: u32) -> bool {
        self.get(key)
            .is_some_and(|t| pid == 0 || t.pid == 0 || t.pid == pid)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

struct Waiter {
    pid: Option<u32>,
    tx: oneshot::Sender<ExitStatus>,
}

/// The outcome of [`Table::register`].
pub(crate) enum Registered {
    /// The exit is already known.
    Ready(ExitStatus),
    /// Resolved when the exit is decided; dropped (an error) when the monitor stops.
    Pending(oneshot::Receiver<ExitStatus>),
    /// The monitor has stopped.
    Closed,
}

/// The monitor's knowledge; see the module documentation.
#[derive(Default)]
pub(crate) struct Table {
    /// container id → process id → process.
    containers: HashMap<String, HashMap<String, Proc>>,
    tombs: Tombs,
    waiters: HashMap<Key, Vec<Waiter>>,
    seq: u64,
    closed: bool,
}

fn unknown_status() -> ExitStatus {
    ExitStatus {
        code: UNKNOWN_EXIT_CODE,
        exited_at: None,
    }
}

fn key(container_id: &str, process_id: &str) -> Key {
    (container_id.to_string(), process_id.to_string())
}

impl Table {
    pub(crate) fn new() -> Table {
        Table::default()
    }

    /// The number of events applied so far; entries changed after a given value are newer than
    /// anything a snapshot taken after that point can contradict.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// How many processes and tombstones are held (for bounds checks).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.containers.values().map(HashMap::len).sum::<usize>() + self.tombs.len()
    }

    fn get(&self, container_id: &str, process_id: &str) -> Option<Proc> {
        self.containers.get(container_id)?.get(process_id).copied()
    }

    fn set(&mut self, container_id: &str, process_id: &str, pid: u32, life: Life) {
        let seq = self.seq;
        self.containers
            .entry(container_id.to_string())
            .or_default()
            .insert(process_id.to_string(), Proc { pid, life, seq });
    }

    /// Forget one process, keeping a tombstone so its late exit is recognised.
    fn remove(&mut self, container_id: &str, process_id: &str) {
        let Some(procs) = self.containers.get_mut(container_id) else {
            return;
        };
        if let Some(p) = procs.remove(process_id) {
            let status = match p.life {
                Life::Exited(s) => s,
                Life::Alive => unknown_status(),
            };
            self.tombs
                .insert(key(container_id, process_id), Tomb { pid: p.pid, status });
        }
        if procs.is_empty() {
            self.containers.remove(container_id);
        }
    }

    /// The container's processes, execs first (sorted) and the init process last, so that exits
    /// synthesised for a whole container end with the init process's, as when a container ends.
    fn processes_of(&self, container_id: &str) -> Vec<(String, Proc)> {
        let Some(procs) = self.containers.get(container_id) else {
            return vec![];
        };
        let mut list: Vec<_> = procs.iter().map(|(p, v)| (p.clone(), *v)).collect();
        list.sort_by(|a, b| (a.0 == container_id, &a.0).cmp(&(b.0 == container_id, &b.0)));
        list
    }

    /// Apply one event from the stream; returns what to forward, in order.
    pub(crate) fn apply(&mut self, event: TaskEvent) -> Vec<Delivery> {
        self.seq += 1;
        let mut out = Vec::new();
        match event {
            TaskEvent::Create { container_id, pid } => {
                self.new_incarnation(&container_id, pid, &mut out);
                self.set(&container_id, &container_id, pid, Life::Alive);
                out.push(Delivery::new(
                    EventType::Create,
                    &container_id,
                    &container_id,
                    pid,
                ));
            }
            TaskEvent::Start { container_id, pid } => {
                if self.get(&container_id, &container_id).is_none() {
                    self.set(&container_id, &container_id, pid, Life::Alive);
                }
                out.push(Delivery::new(
                    EventType::Start,
                    &container_id,
                    &container_id,
                    pid,
                ));
            }
            TaskEvent::Exit {
                container_id,
                process_id,
                pid,
                status,
            } => out.extend(self.exit(&key(&container_id, &process_id), pid, status, Found::Event)),
            TaskEvent::Oom { container_id } => {
                out.push(Delivery::new(EventType::Oom, &container_id, "", 0));
            }
            TaskEvent::ExecAdded {
                container_id,
                exec_id,
            } => {
                // An exec id can be reused once its process is deleted: whatever was known under it
                // is over.
                self.end_process(&container_id, &exec_id, LOST_REPLACED, &mut out);
                out.push(Delivery::new(
                    EventType::ExecAdded,
                    &container_id,
                    &exec_id,
                    0,
                ));
            }
            TaskEvent::ExecStarted {
                container_id,
                exec_id,
                pid,
            } => {
                if self
                    .get(&container_id, &exec_id)
                    .is_some_and(|p| p.pid != pid)
                {
                    self.end_process(&container_id, &exec_id, LOST_REPLACED, &mut out);
                }
                self.set(&container_id, &exec_id, pid, Life::Alive);
                out.push(Delivery::new(
                    EventType::ExecStarted,
                    &container_id,
                    &exec_id,
                    pid,
                ));
            }
            TaskEvent::Paused { container_id } => {
                out.push(Delivery::new(EventType::Paused, &container_id, "", 0));
            }
            TaskEvent::Resumed { container_id } => {
                out.push(Delivery::new(EventType::Resumed, &container_id, "", 0));
            }
            TaskEvent::Delete {
                container_id,
                process_id,
                pid,
                status,
            } => self.delete(&container_id, &process_id, pid, status, &mut out),
        }
        out
    }

    /// A task is created under `container_id`: a previous task of that id (whose delete the monitor
    /// missed) is over, with all its execs.
    fn new_incarnation(&mut self, container_id: &str, pid: u32, out: &mut Vec<Delivery>) {
        // The same process may already be known from a task list taken just before this event.
        if self
            .get(container_id, container_id)
            .is_some_and(|p| p.pid == pid || p.pid == 0)
        {
            return;
        }
        for (process_id, _) in self.processes_of(container_id) {
            self.end_process(container_id, &process_id, LOST_REPLACED, out);
        }
    }

    /// Deliver a lost exit for a process still thought alive, then forget it.
    fn end_process(
        &mut self,
        container_id: &str,
        process_id: &str,
        reason: &'static str,
        out: &mut Vec<Delivery>,
    ) {
        let Some(p) = self.get(container_id, process_id) else {
            return;
        };
        if p.life == Life::Alive {
            tracing::info!(
                container = container_id,
                process = process_id,
                pid = p.pid,
                reason,
                "delivering an exit that containerd did not report"
            );
            out.extend(self.exit(
                &key(container_id, process_id),
                p.pid,
                unknown_status(),
                Found::Recovered {
                    error: Some(reason),
                },
            ));
        }
        self.remove(container_id, process_id);
    }

    /// A process was deleted. Its delete carries its exit status: if the exit itself was lost, it is
    /// delivered now from there. Deleting the init process deletes the task with its execs.
    fn delete(
        &mut self,
        container_id: &str,
        process_id: &str,
        pid: u32,
        status: ExitStatus,
        out: &mut Vec<Delivery>,
    ) {
        let known = self.get(container_id, process_id);
        if known.is_some_and(|k| pid != 0 && k.pid != 0 && pid != k.pid) {
            // About a process the monitor already replaced: nothing of the current one changes.
            tracing::debug!(
                container = container_id,
                process = process_id,
                pid,
                "ignoring the delete of an earlier process"
            );
            return;
        }
        let init = process_id == container_id;
        if init {
            for (exec_id, p) in self.processes_of(container_id) {
                if exec_id != container_id && p.life == Life::Alive {
                    self.end_process(container_id, &exec_id, LOST_WITH_TASK, out);
                }
            }
        }
        if known.is_some() {
            let found = Found::Recovered { error: None };
            out.extend(self.exit(&key(container_id, process_id), pid, status, found));
        }
        if init {
            for (p, _) in self.processes_of(container_id) {
                self.remove(container_id, &p);
            }
        } else {
            self.remove(container_id, process_id);
        }
    }

    /// Decide on an exit: the first for a process is delivered (and resolves its waiters), any later
    /// one is a duplicate and dropped.
    fn exit(&mut self, key: &Key, pid: u32, status: ExitStatus, found: Found) -> Option<Delivery> {
        let seq = self.seq;
        let known = self
            .containers
            .get_mut(&key.0)
            .and_then(|procs| procs.get_mut(&key.1));
        match known {
            Some(p) => {
                if pid != 0 && p.pid != 0 && pid != p.pid {
                    // An exit of an earlier process under this id, whose end was already handled
                    // when the current one replaced it.
                    tracing::debug!(container = %key.0, process = %key.1, pid, current = p.pid, "dropping the exit of an earlier process");
                    return None;
                }
                if let Life::Exited(_) = p.life {
                    tracing::debug!(container = %key.0, process = %key.1, pid, "dropping a duplicate exit");
                    return None;
                }
                p.life = Life::Exited(status);
                p.seq = seq;
                if p.pid == 0 {
                    p.pid = pid;
                }
            }
            None => {
                if self.tombs.matches(key, pid) {
                    tracing::debug!(container = %key.0, process = %key.1, pid, "dropping a late exit of a forgotten process");
                    return None;
                }
                // Unknown to the monitor (it started before we knew): remember only in the bounded
                // tombstones, as its task may already be gone.
                self.tombs.insert(key.clone(), Tomb { pid, status });
            }
        }
        self.resolve(key, pid, status);
        Some(Delivery::exit(key, pid, status, found))
    }

    fn resolve(&mut self, key: &Key, pid: u32, status: ExitStatus) {
        let Some(waiters) = self.waiters.remove(key) else {
            return;
        };
        let keep: Vec<Waiter> = waiters
            .into_iter()
            .filter_map(|w| {
                if w.pid.is_none_or(|want| want == pid || pid == 0) {
                    let _ = w.tx.send(status);
                    None
                } else {
                    Some(w)
                }
            })
            .filter(|w| !w.tx.is_closed())
            .collect();
        if !keep.is_empty() {
            self.waiters.insert(key.clone(), keep);
        }
    }

    /// The execs the monitor thinks are running, to ask containerd about after a reconnect.
    pub(crate) fn alive_execs(&self) -> Vec<Key> {
        let mut keys = vec![];
        for (c, procs) in &self.containers {
            for (p, proc) in procs {
                if p != c && proc.life == Life::Alive {
                    keys.push(key(c, p));
                }
            }
        }
        keys
    }

    /// Bring the table in line with what containerd reported after a (re)connect, delivering the exits
    /// the stream missed. `since` is the sequence number at which the subscription was known live:
    /// entries changed after it are the stream's business (it reports them in order, and they may be
    /// newer than the snapshot). Tasks the monitor never saw that have stopped get an exit only when
    /// `deliver_unknown_stops` (after a reconnect; on the first connect they are history the caller
    /// learns from `list_tasks`).
    pub(crate) fn reconcile(
        &mut self,
        snapshot: &Snapshot,
        since: u64,
        deliver_unknown_stops: bool,
    ) -> Vec<Delivery> {
        self.seq += 1;
        let listed: HashMap<&str, &TaskInfo> = snapshot
            .tasks
            .iter()
            .map(|t| (t.container_id.as_str(), t))
            .collect();
        let mut out = Vec::new();
        let mut known: Vec<String> = self.containers.keys().cloned().collect();
        known.sort();
        for container_id in known {
            let task = listed.get(container_id.as_str()).copied();
            self.reconcile_container(&container_id, task, snapshot, since, &mut out);
        }
        for task in &snapshot.tasks {
            self.adopt(task, deliver_unknown_stops, &mut out);
        }
        out
    }

    fn reconcile_container(
        &mut self,
        container_id: &str,
        task: Option<&TaskInfo>,
        snapshot: &Snapshot,
        since: u64,
        out: &mut Vec<Delivery>,
    ) {
        for (process_id, proc) in self.processes_of(container_id) {
            if proc.seq > since {
                continue;
            }
            let observed = if process_id == container_id {
                match task {
                    None => Observed::Gone,
                    Some(t) if proc.pid == 0 || t.pid == proc.pid => Observed::Same(t),
                    Some(_) => Observed::Gone,
                }
            } else {
                match snapshot.execs.get(&key(container_id, &process_id)) {
                    Some(Some(t)) if t.pid == proc.pid => Observed::Same(t),
                    Some(_) => Observed::Gone,
                    None if task.is_none() => Observed::Gone,
                    None => Observed::Unknown,
                }
            };
            self.settle(container_id, &process_id, proc, observed, out);
        }
    }

    fn settle(
        &mut self,
        container_id: &str,
        process_id: &str,
        proc: Proc,
        observed: Observed<'_>,
        out: &mut Vec<Delivery>,
    ) {
        match observed {
            Observed::Unknown => {}
            Observed::Same(info) => {
                if proc.life == Life::Alive && info.status == TaskStatus::Stopped {
                    let status = info.exit_status.unwrap_or_else(unknown_status);
                    tracing::info!(
                        container = container_id,
                        process = process_id,
                        code = status.code,
                        "delivering an exit the event stream missed"
                    );
                    let found = Found::Recovered { error: None };
                    out.extend(self.exit(&key(container_id, process_id), proc.pid, status, found));
                }
            }
            Observed::Gone => {
                self.end_process(container_id, process_id, LOST_DISCONNECTED, out);
            }
        }
    }

    /// A listed task with no entry: one that started (and maybe ended) while the monitor was not
    /// listening. Track it; deliver its exit if it already stopped and `deliver_stops`.
    fn adopt(&mut self, task: &TaskInfo, deliver_stops: bool, out: &mut Vec<Delivery>) {
        let c = task.container_id.as_str();
        if self.get(c, c).is_some() || self.tombs.matches(&key(c, c), task.pid) {
            return;
        }
        if task.status != TaskStatus::Stopped {
            self.set(c, c, task.pid, Life::Alive);
            return;
        }
        let status = task.exit_status.unwrap_or_else(unknown_status);
        if deliver_stops {
            tracing::info!(
                container = c,
                code = status.code,
                "delivering the exit of a task that ran while the event stream was disconnected"
            );
            self.set(c, c, task.pid, Life::Alive);
            let found = Found::Recovered { error: None };
            out.extend(self.exit(&key(c, c), task.pid, status, found));
        } else {
            self.set(c, c, task.pid, Life::Exited(status));
        }
    }

    /// Register interest in the exit of `process_id` of `container_id` (of process `pid`, if given).
    /// Resolves at once if the monitor already knows that exit.
    pub(crate) fn register(
        &mut self,
        container_id: &str,
        process_id: &str,
        pid: Option<u32>,
    ) -> Registered {
        if self.closed {
            return Registered::Closed;
        }
        if let Some(p) = self.get(container_id, process_id) {
            if let Life::Exited(status) = p.life {
                if pid.is_none_or(|want| want == p.pid) {
                    return Registered::Ready(status);
                }
            }
        }
        let k = key(container_id, process_id);
        if let (Some(want), Some(tomb)) = (pid, self.tombs.get(&k)) {
            if tomb.pid == want {
                return Registered::Ready(tomb.status);
            }
        }
        let (tx, rx) = oneshot::channel();
        let waiters = self.waiters.entry(k).or_default();
        waiters.retain(|w| !w.tx.is_closed());
        waiters.push(Waiter { pid, tx });
        Registered::Pending(rx)
    }

    /// Drop waiters whose futures were dropped.
    pub(crate) fn prune_waiters(&mut self) {
        self.waiters.retain(|_, ws| {
            ws.retain(|w| !w.tx.is_closed());
            !ws.is_empty()
        });
    }

    /// The monitor stopped: pending waits fail, new ones fail at once.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.waiters.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn st(code: u32) -> ExitStatus {
        ExitStatus {
            code,
            exited_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    fn create(c: &str, pid: u32) -> TaskEvent {
        TaskEvent::Create {
            container_id: c.into(),
            pid,
        }
    }

    fn start(c: &str, pid: u32) -> TaskEvent {
        TaskEvent::Start {
            container_id: c.into(),
            pid,
        }
    }

    fn exit(c: &str, p: &str, pid: u32, code: u32) -> TaskEvent {
        TaskEvent::Exit {
            container_id: c.into(),
            process_id: p.into(),
            pid,
            status: st(code),
        }
    }

    fn delete(c: &str, p: &str, pid: u32, code: u32) -> TaskEvent {
        TaskEvent::Delete {
            container_id: c.into(),
            process_id: p.into(),
            pid,
            status: st(code),
        }
    }

    fn exec_started(c: &str, e: &str, pid: u32) -> TaskEvent {
        TaskEvent::ExecStarted {
            container_id: c.into(),
            exec_id: e.into(),
            pid,
        }
    }

    fn task(c: &str, pid: u32, status: TaskStatus, code: Option<u32>) -> TaskInfo {
        TaskInfo {
            container_id: c.into(),
            pid,
            status,
            exit_status: code.map(st),
        }
    }

    fn kinds(d: &[Delivery]) -> Vec<(EventType, String, u32)> {
        d.iter()
            .map(|d| (d.event, d.info.process_id.clone(), d.info.exit_code))
            .collect()
    }

    #[test]
    fn a_lifecycle_is_forwarded_and_a_duplicate_exit_dropped() {
        let mut t = Table::new();
        let mut all = vec![];
        all.extend(t.apply(create("c1", 10)));
        all.extend(t.apply(start("c1", 10)));
        all.extend(t.apply(exit("c1", "c1", 10, 3)));
        all.extend(t.apply(exit("c1", "c1", 10, 3)));
        assert_eq!(
            kinds(&all),
            [
                (EventType::Create, "c1".into(), 0),
                (EventType::Start, "c1".into(), 0),
                (EventType::Exit, "c1".into(), 3),
            ]
        );
        assert_eq!(all[2].info.pid, 10);
        assert!(all[2].info.exited_at.is_some());
        assert!(!all[2].recovered);
        // The delete repeats the status; nothing more is forwarded and the process is forgotten.
        assert!(t.apply(delete("c1", "c1", 10, 3)).is_empty());
        assert_eq!(t.containers.len(), 0);
        // A late exit after the delete is still recognised.
        assert!(t.apply(exit("c1", "c1", 10, 3)).is_empty());
    }

    #[test]
    fn an_exec_exit_after_the_init_exit_is_its_own() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        t.apply(start("c1", 10));
        t.apply(exec_started("c1", "e1", 11));
        let init = t.apply(exit("c1", "c1", 10, 0));
        let exec = t.apply(exit("c1", "e1", 11, 137));
        assert_eq!(kinds(&init), [(EventType::Exit, "c1".into(), 0)]);
        assert_eq!(kinds(&exec), [(EventType::Exit, "e1".into(), 137)]);
        assert!(exec[0].info.error.is_none());
    }

    #[test]
    fn a_delete_delivers_an_exit_that_never_came() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        t.apply(exec_started("c1", "e1", 11));
        let d = t.apply(delete("c1", "c1", 10, 9));
        assert_eq!(
            kinds(&d),
            [
                (EventType::Exit, "e1".into(), UNKNOWN_EXIT_CODE),
                (EventType::Exit, "c1".into(), 9)
            ]
        );
        assert_eq!(d[0].info.error.as_deref(), Some(LOST_WITH_TASK));
        assert!(d[1].info.error.is_none());
        // Their real exits arriving late are dropped.
        assert!(t.apply(exit("c1", "e1", 11, 137)).is_empty());
        assert!(t.apply(exit("c1", "c1", 10, 9)).is_empty());
    }

    #[test]
    fn a_new_task_under_the_same_id_ends_the_old_one_first() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        t.apply(start("c1", 10));
        let d = t.apply(create("c1", 20));
        assert_eq!(
            kinds(&d),
            [
                (EventType::Exit, "c1".into(), UNKNOWN_EXIT_CODE),
                (EventType::Create, "c1".into(), 0)
            ]
        );
        assert_eq!(d[0].info.pid, 10);
        // The old process's exit, arriving late, is not taken for the new one's.
        assert!(t.apply(exit("c1", "c1", 10, 0)).is_empty());
        let d = t.apply(exit("c1", "c1", 20, 4));
        assert_eq!(kinds(&d), [(EventType::Exit, "c1".into(), 4)]);
    }

    #[test]
    fn an_unknown_process_exit_is_delivered_once() {
        let mut t = Table::new();
        assert_eq!(t.apply(exit("x", "x", 5, 1)).len(), 1);
        assert!(t.apply(exit("x", "x", 5, 1)).is_empty());
        assert_eq!(t.containers.len(), 0, "remembered only as a tombstone");
    }

    #[test]
    fn reconcile_delivers_missed_exits_with_the_real_status() {
        let mut t = Table::new();
        // Known before the disconnect: c1 running, c2 running with an exec, c3 running.
        for (c, pid) in [("c1", 10), ("c2", 20), ("c3", 30)] {
            t.apply(create(c, pid));
            t.apply(start(c, pid));
        }
        t.apply(exec_started("c2", "e1", 21));
        let since = t.seq();
        assert_eq!(t.alive_execs(), vec![key("c2", "e1")]);
        let snapshot = Snapshot {
            tasks: vec![
                task("c1", 10, TaskStatus::Stopped, Some(7)),
                task("c2", 20, TaskStatus::Running, None),
                // c3 is gone: deleted while disconnected.
                // c4: created and stopped while disconnected.
                task("c4", 40, TaskStatus::Stopped, Some(2)),
                // c5: created while disconnected and still running.
                task("c5", 50, TaskStatus::Running, None),
            ],
            execs: HashMap::from([(
                key("c2", "e1"),
                Some(task("c2", 21, TaskStatus::Stopped, Some(5))),
            )]),
        };
        let d = t.reconcile(&snapshot, since, true);
        let mut got = kinds(&d);
        got.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
        assert_eq!(
            got,
            [
                (EventType::Exit, "c1".into(), 7),
                (EventType::Exit, "c3".into(), UNKNOWN_EXIT_CODE),
                (EventType::Exit, "c4".into(), 2),
                (EventType::Exit, "e1".into(), 5),
            ]
        );
        assert!(d.iter().all(|d| d.recovered));
        let c3 = d.iter().find(|d| d.info.process_id == "c3").unwrap();
        assert_eq!(c3.info.error.as_deref(), Some(LOST_DISCONNECTED));
        // The real exits arriving late (the shim's retries) are dropped.
        assert!(t.apply(exit("c1", "c1", 10, 7)).is_empty());
        assert!(t.apply(exit("c2", "e1", 21, 5)).is_empty());
        assert!(t.apply(exit("c4", "c4", 40, 2)).is_empty());
        // A second reconcile with the same picture changes nothing.
        assert!(t.reconcile(&snapshot, t.seq(), true).is_empty());
        // c5 is tracked: an exit lost in a later disconnect is found.
        let later = Snapshot {
            tasks: vec![task("c5", 50, TaskStatus::Stopped, Some(1))],
            execs: HashMap::new(),
        };
        let d = t.reconcile(&later, t.seq(), true);
        assert_eq!(
            kinds(&d)
                .into_iter()
                .filter(|k| k.1 == "c5")
                .collect::<Vec<_>>(),
            [(EventType::Exit, "c5".into(), 1)]
        );
    }

    #[test]
    fn the_first_snapshot_is_history_not_news() {
        let mut t = Table::new();
        let snapshot = Snapshot {
            tasks: vec![
                task("old", 10, TaskStatus::Stopped, Some(3)),
                task("run", 11, TaskStatus::Running, None),
            ],
            execs: HashMap::new(),
        };
        assert!(t.reconcile(&snapshot, t.seq(), false).is_empty());
        // But a wait for it resolves at once, and the running one is tracked.
        match t.register("old", "old", None) {
            Registered::Ready(s) => assert_eq!(s.code, 3),
            _ => panic!("should be ready"),
        }
        assert_eq!(kinds(&t.apply(exit("run", "run", 11, 0))).len(), 1);
    }

    #[test]
    fn entries_the_stream_changed_after_the_sync_are_left_to_the_stream() {
        let mut t = Table::new();
        let since = t.seq();
        // Created after the subscription was live, so possibly after the list was taken.
        t.apply(create("new", 10));
        let snapshot = Snapshot::default();
        assert!(t.reconcile(&snapshot, since, true).is_empty());
        assert_eq!(kinds(&t.apply(exit("new", "new", 10, 0))).len(), 1);
    }

    #[test]
    fn waiters_resolve_once_by_process_and_pid() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        let Registered::Pending(mut any) = t.register("c1", "c1", None) else {
            panic!("pending")
        };
        let Registered::Pending(mut other_pid) = t.register("c1", "c1", Some(99)) else {
            panic!("pending")
        };
        let Registered::Pending(mut exec) = t.register("c1", "e1", None) else {
            panic!("pending")
        };
        t.apply(exit("c1", "c1", 10, 6));
        assert_eq!(any.try_recv().unwrap().code, 6);
        assert!(other_pid.try_recv().is_err());
        assert!(exec.try_recv().is_err());
        // Registered after the fact: ready at once.
        assert!(matches!(
            t.register("c1", "c1", Some(10)),
            Registered::Ready(s) if s.code == 6
        ));
        // After the delete, a wait for that pid still resolves from the tombstone.
        t.apply(delete("c1", "c1", 10, 6));
        assert!(matches!(
            t.register("c1", "c1", Some(10)),
            Registered::Ready(_)
        ));
        t.close();
        assert!(matches!(
            exec.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert!(matches!(t.register("c1", "c1", None), Registered::Closed));
    }

    #[test]
    fn memory_stays_bounded_over_many_lifecycles() {
        let mut t = Table::new();
        for i in 0..(3 * TOMBSTONES as u32) {
            let c = format!("c{i}");
            t.apply(create(&c, i + 1));
            t.apply(start(&c, i + 1));
            t.apply(exit(&c, &c, i + 1, 0));
            t.apply(delete(&c, &c, i + 1, 0));
            // Dropped waits do not pile up either.
            drop(t.register(&c, "never", None));
        }
        t.prune_waiters();
        assert!(t.len() <= TOMBSTONES, "{}", t.len());
        assert!(t.waiters.is_empty());
    }
}
