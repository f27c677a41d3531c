//! Reconciling the table with containerd's view after a (re)connect: the exits the stream missed
//! while the monitor was not subscribed are found in a snapshot of the namespace's tasks and execs.
//!
//! Pure bookkeeping like the table; taking the snapshot (the RPCs) is the session's job.

use std::collections::HashMap;

use super::delivery::{key, unknown_status, Delivery, Found, Key, LOST_DISCONNECTED};
use super::table::{Life, Proc, Table};
use crate::task::{TaskInfo, TaskStatus};

/// What containerd reported when the monitor (re)connected.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Every task (init process) of the namespace.
    pub(crate) tasks: Vec<TaskInfo>,
    /// The execs the monitor asked about; `None` when containerd no longer has the process.
    pub(crate) execs: HashMap<Key, Option<TaskInfo>>,
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

impl Table {
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
        self.tick();
        let listed: HashMap<&str, &TaskInfo> = snapshot
            .tasks
            .iter()
            .map(|t| (t.container_id.as_str(), t))
            .collect();
        let mut out = Vec::new();
        let mut known = self.container_ids();
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
                    // An entry made without a pid learns it from containerd.
                    let pid = if proc.pid != 0 { proc.pid } else { info.pid };
                    out.extend(self.exit(&key(container_id, process_id), pid, status, found));
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
        if self.get(c, c).is_some() || self.is_forgotten(&key(c, c), task.pid) {
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::table::tests::{create, exec_started, exit, kinds, start, task};
    use super::super::waiters::Registered;
    use super::super::{EventType, UNKNOWN_EXIT_CODE};
    use super::*;

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
    fn an_entry_without_a_pid_takes_containerds_for_its_exit() {
        let mut t = Table::new();
        // A create event without a pid.
        t.apply(create("c1", 0));
        let since = t.seq();
        let snapshot = Snapshot {
            tasks: vec![task("c1", 12, TaskStatus::Stopped, Some(3))],
            execs: HashMap::new(),
        };
        let d = t.reconcile(&snapshot, since, true);
        assert_eq!(kinds(&d), [(EventType::Exit, "c1".into(), 3)]);
        assert_eq!(d[0].info.pid, 12);
    }
}
