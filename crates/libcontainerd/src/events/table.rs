//! What the monitor knows about the namespace's processes, and the decisions made from the stream:
//! which events to forward, which exit is a duplicate, which exit a delete or a replaced task tells of.
//! Reconciling with containerd's view after a reconnect is in `reconcile`; the waits in `waiters`.
//!
//! Pure bookkeeping, no I/O, so the rules are unit-tested here. The monitor keeps it under a mutex that
//! is only held for these synchronous calls (never across an RPC or an await).

use std::collections::HashMap;

use super::decode::TaskEvent;
use super::delivery::{key, unknown_status, Delivery, Found, Key, LOST_REPLACED, LOST_WITH_TASK};
use super::tombs::{Tomb, Tombs};
use super::waiters::{Registered, Waiters};
use super::EventType;
use crate::task::ExitStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    Alive,
    Exited(ExitStatus),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Proc {
    pub(crate) pid: u32,
    pub(crate) life: Life,
    /// The table's event sequence number when this entry last changed.
    pub(crate) seq: u64,
}

/// The monitor's knowledge; see the module documentation.
#[derive(Default)]
pub(crate) struct Table {
    /// container id → process id → process.
    containers: HashMap<String, HashMap<String, Proc>>,
    tombs: Tombs,
    waiters: Waiters,
    seq: u64,
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

    /// Count one more change (an event, a reconcile): entries set from now on carry the new number.
    pub(crate) fn tick(&mut self) {
        self.seq += 1;
    }

    /// How many processes and tombstones are held (for bounds checks).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.containers.values().map(HashMap::len).sum::<usize>() + self.tombs.len()
    }

    /// The ids of the containers with known processes.
    pub(crate) fn container_ids(&self) -> Vec<String> {
        self.containers.keys().cloned().collect()
    }

    /// Whether an exit of `pid` for `key` is that of a process already forgotten (see [`Tombs`]).
    pub(crate) fn is_forgotten(&self, key: &Key, pid: u32) -> bool {
        self.tombs.matches(key, pid)
    }

    pub(crate) fn get(&self, container_id: &str, process_id: &str) -> Option<Proc> {
        self.containers.get(container_id)?.get(process_id).copied()
    }

    pub(crate) fn set(&mut self, container_id: &str, process_id: &str, pid: u32, life: Life) {
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
    pub(crate) fn processes_of(&self, container_id: &str) -> Vec<(String, Proc)> {
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
    pub(crate) fn end_process(
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
    /// one is a duplicate and dropped. `pid` 0 is unknown: the exit is then delivered with the pid the
    /// table knows for the process, if any.
    pub(crate) fn exit(
        &mut self,
        key: &Key,
        pid: u32,
        status: ExitStatus,
        found: Found,
    ) -> Option<Delivery> {
        let seq = self.seq;
        let mut pid = pid;
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
                // Whichever side knows it: the event (for an entry made without a pid) or the table
                // (containerd reports the exit of a task whose shim died with the pid it could read
                // from the shim's files, or none).
                if p.pid == 0 {
                    p.pid = pid;
                }
                pid = p.pid;
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
        self.waiters.resolve(key, pid, status);
        Some(Delivery::exit(key, pid, status, found))
    }

    /// Register interest in the exit of `process_id` of `container_id` (of process `pid`, if given).
    /// Resolves at once if the monitor already knows that exit.
    pub(crate) fn register(
        &mut self,
        container_id: &str,
        process_id: &str,
        pid: Option<u32>,
    ) -> Registered {
        if self.waiters.is_closed() {
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
        self.waiters.add(k, pid)
    }

    /// Drop waiters whose futures were dropped.
    pub(crate) fn prune_waiters(&mut self) {
        self.waiters.prune();
    }

    /// The monitor stopped: pending waits fail, new ones fail at once.
    pub(crate) fn close(&mut self) {
        self.waiters.close();
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
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::tombs::TOMBSTONES;
    use super::super::UNKNOWN_EXIT_CODE;
    use super::*;
    use crate::task::{TaskInfo, TaskStatus};
    use std::time::{Duration, UNIX_EPOCH};
    use tokio::sync::oneshot;

    pub(crate) fn st(code: u32) -> ExitStatus {
        ExitStatus {
            code,
            exited_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    pub(crate) fn create(c: &str, pid: u32) -> TaskEvent {
        TaskEvent::Create {
            container_id: c.into(),
            pid,
        }
    }

    pub(crate) fn start(c: &str, pid: u32) -> TaskEvent {
        TaskEvent::Start {
            container_id: c.into(),
            pid,
        }
    }

    pub(crate) fn exit(c: &str, p: &str, pid: u32, code: u32) -> TaskEvent {
        TaskEvent::Exit {
            container_id: c.into(),
            process_id: p.into(),
            pid,
            status: st(code),
        }
    }

    pub(crate) fn delete(c: &str, p: &str, pid: u32, code: u32) -> TaskEvent {
        TaskEvent::Delete {
            container_id: c.into(),
            process_id: p.into(),
            pid,
            status: st(code),
        }
    }

    pub(crate) fn exec_started(c: &str, e: &str, pid: u32) -> TaskEvent {
        TaskEvent::ExecStarted {
            container_id: c.into(),
            exec_id: e.into(),
            pid,
        }
    }

    pub(crate) fn task(c: &str, pid: u32, status: TaskStatus, code: Option<u32>) -> TaskInfo {
        TaskInfo {
            container_id: c.into(),
            pid,
            status,
            exit_status: code.map(st),
        }
    }

    pub(crate) fn kinds(d: &[Delivery]) -> Vec<(EventType, String, u32)> {
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
    fn an_exit_or_delete_without_a_pid_carries_the_known_one() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        t.apply(start("c1", 10));
        t.apply(exec_started("c1", "e1", 11));
        let Registered::Pending(mut by_pid) = t.register("c1", "c1", Some(10)) else {
            panic!("pending")
        };
        let Registered::Pending(mut other_pid) = t.register("c1", "c1", Some(99)) else {
            panic!("pending")
        };
        // As containerd reports the exit of a task whose shim died and left no readable pid file.
        let d = t.apply(exit("c1", "c1", 0, 255));
        assert_eq!(kinds(&d), [(EventType::Exit, "c1".into(), 255)]);
        assert_eq!(d[0].info.pid, 10);
        assert_eq!(by_pid.try_recv().unwrap().code, 255);
        assert!(other_pid.try_recv().is_err(), "not the exit of pid 99");
        // A delete without a pid delivers the exit it carries with the known pid too.
        let d = t.apply(delete("c1", "e1", 0, 137));
        assert_eq!(kinds(&d), [(EventType::Exit, "e1".into(), 137)]);
        assert_eq!(d[0].info.pid, 11);
        // The real exits, late, are duplicates.
        assert!(t.apply(exit("c1", "c1", 10, 137)).is_empty());
        assert!(t.apply(exit("c1", "e1", 11, 137)).is_empty());
    }

    #[test]
    fn an_unknown_process_exit_is_delivered_once() {
        let mut t = Table::new();
        assert_eq!(t.apply(exit("x", "x", 5, 1)).len(), 1);
        assert!(t.apply(exit("x", "x", 5, 1)).is_empty());
        assert_eq!(t.containers.len(), 0, "remembered only as a tombstone");
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
