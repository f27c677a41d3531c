//! Reconciling the table with containerd's view after a (re)connect: the exits the stream missed
//! while the monitor was not subscribed are found in a snapshot of the namespace's tasks and execs.
//!
//! Pure bookkeeping like the table; taking the snapshot (the RPCs) is the session's job.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::delivery::{key, unknown_status, Delivery, Found, Key, LOST_DISCONNECTED};
use super::table::{Life, Proc, Table};
use crate::task::{TaskInfo, TaskStatus};

/// What containerd reported when the monitor (re)connected.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Every task (init process) of the namespace.
    pub(crate) tasks: Vec<TaskInfo>,
    /// The execs the monitor asked about: those it knew running and those found in the tasks (their
    /// shims' files, `ListPids`); `None` when containerd does not have the process.
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

/// What the snapshot says of a known process of container `c`, whose task is `task` if listed.
fn observe<'a>(
    c: &str,
    p: &str,
    proc: Proc,
    task: Option<&'a TaskInfo>,
    snapshot: &'a Snapshot,
) -> Observed<'a> {
    if p == c {
        return match task {
            None => Observed::Gone,
            Some(t) if proc.pid == 0 || t.pid == proc.pid => Observed::Same(t),
            Some(_) => Observed::Gone,
        };
    }
    match snapshot.execs.get(&key(c, p)) {
        Some(Some(t)) if t.pid == proc.pid => Observed::Same(t),
        Some(_) => Observed::Gone,
        None if task.is_none() => Observed::Gone,
        None => Observed::Unknown,
    }
}

impl Table {
    /// Bring the table in line with what containerd reported after a (re)connect, delivering the exits
    /// the stream missed. `since` is the sequence number at which the subscription was known live:
    /// entries changed after it are the stream's business (it reports them in order, and they may be
    /// newer than the snapshot). Processes the monitor never saw (tasks, execs) are adopted; those that
    /// have stopped get an exit only when `deliver_unknown_stops` (after a reconnect; on the first
    /// connect they are history the caller learns from containerd).
    ///
    /// Per container, the execs come first and the init process last, so that exits found for a whole
    /// container end with the init process's, as when a container ends.
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
        let mut found: BTreeMap<&str, Vec<(&str, &TaskInfo)>> = BTreeMap::new();
        for ((c, e), info) in &snapshot.execs {
            if let Some(info) = info {
                found.entry(c).or_default().push((e, info));
            }
        }
        let mut containers: BTreeSet<String> = self.container_ids().into_iter().collect();
        containers.extend(listed.keys().map(|c| c.to_string()));
        containers.extend(found.keys().map(|c| c.to_string()));
        let mut out = Vec::new();
        for c in &containers {
            let task = listed.get(c.as_str()).copied();
            // Execs first, the init process last; what changed since the subscription was live is
            // the stream's business.
            let known = self.processes_of(c);
            let (init, execs): (Vec<_>, Vec<_>) = known.into_iter().partition(|(p, _)| p == c);
            for (p, proc) in execs.into_iter().filter(|(_, proc)| proc.seq <= since) {
                let observed = observe(c, &p, proc, task, snapshot);
                self.settle(c, &p, proc, observed, &mut out);
            }
            let mut execs_found = found.remove(c.as_str()).unwrap_or_default();
            execs_found.sort_by_key(|(e, _)| *e);
            for (e, info) in execs_found {
                self.adopt_exec(c, e, info, deliver_unknown_stops, &mut out);
            }
            for (p, proc) in init.into_iter().filter(|(_, proc)| proc.seq <= since) {
                let observed = observe(c, &p, proc, task, snapshot);
                self.settle(c, &p, proc, observed, &mut out);
            }
            if let Some(task) = task {
                self.adopt(c, c, task, deliver_unknown_stops, &mut out);
            }
        }
        out
    }

    /// Deliver the exit of a known process that the snapshot shows stopped, or that is gone.
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

    /// An exec found in a task with no entry: one that started (and maybe ended) while the monitor
    /// was not listening. One only added, not started (no pid), is left to the stream, which reports
    /// its start. So is one named after its container: its events cannot be told from the init
    /// process's, whose entry this would be.
    fn adopt_exec(
        &mut self,
        container_id: &str,
        exec_id: &str,
        info: &TaskInfo,
        deliver_stops: bool,
        out: &mut Vec<Delivery>,
    ) {
        if info.pid != 0 && !exec_id.is_empty() && exec_id != container_id {
            self.adopt(container_id, exec_id, info, deliver_stops, out);
        }
    }

    /// A listed process with no entry: one that started (and maybe ended) while the monitor was not
    /// listening. Track it; deliver its exit if it already stopped and `deliver_stops`. One whose
    /// exit was delivered already (a tombstone with its pid) is over.
    fn adopt(
        &mut self,
        container_id: &str,
        process_id: &str,
        info: &TaskInfo,
        deliver_stops: bool,
        out: &mut Vec<Delivery>,
    ) {
        let (c, p) = (container_id, process_id);
        if self.get(c, p).is_some() || self.is_forgotten(&key(c, p), info.pid) {
            return;
        }
        if info.status != TaskStatus::Stopped {
            self.set(c, p, info.pid, Life::Alive);
            return;
        }
        let status = info.exit_status.unwrap_or_else(unknown_status);
        if deliver_stops {
            tracing::info!(
                container = c,
                process = p,
                code = status.code,
                "delivering the exit of a process that ran while the event stream was disconnected"
            );
            self.set(c, p, info.pid, Life::Alive);
            let found = Found::Recovered { error: None };
            out.extend(self.exit(&key(c, p), info.pid, status, found));
        } else {
            self.set(c, p, info.pid, Life::Exited(status));
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

    /// A snapshot in which container `c` runs with pid `pid` and has the execs `execs`.
    fn with_execs(c: &str, pid: u32, execs: &[(&str, Option<TaskInfo>)]) -> Snapshot {
        Snapshot {
            tasks: vec![task(c, pid, TaskStatus::Running, None)],
            execs: execs
                .iter()
                .map(|(e, info)| (key(c, e), info.clone()))
                .collect(),
        }
    }

    #[test]
    fn execs_that_started_while_disconnected_are_adopted_and_delivered_once() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        t.apply(start("c1", 10));
        let since = t.seq();
        let snapshot = with_execs(
            "c1",
            10,
            &[
                // Started and exited while disconnected.
                ("done", Some(task("c1", 11, TaskStatus::Stopped, Some(5)))),
                // Started while disconnected, still running.
                ("running", Some(task("c1", 12, TaskStatus::Running, None))),
                // Added, not started: its start is the stream's.
                ("added", Some(task("c1", 0, TaskStatus::Created, None))),
                // Found, then deleted before containerd was asked.
                ("gone", None),
            ],
        );
        let d = t.reconcile(&snapshot, since, true);
        assert_eq!(kinds(&d), [(EventType::Exit, "done".into(), 5)]);
        assert_eq!(d[0].info.pid, 11);
        assert!(d[0].recovered && d[0].info.error.is_none());
        assert!(d[0].info.exited_at.is_some());
        // Its late TaskExit, and the same picture again, bring nothing.
        assert!(t.apply(exit("c1", "done", 11, 5)).is_empty());
        assert!(t.reconcile(&snapshot, t.seq(), true).is_empty());
        // The running one is known: its exit lost in a later disconnect is found...
        assert_eq!(t.alive_execs(), vec![key("c1", "running")]);
        let later = with_execs(
            "c1",
            10,
            &[(
                "running",
                Some(task("c1", 12, TaskStatus::Stopped, Some(137))),
            )],
        );
        let d = t.reconcile(&later, t.seq(), true);
        assert_eq!(kinds(&d), [(EventType::Exit, "running".into(), 137)]);
        assert_eq!(d[0].info.pid, 12);
        // ...and the one only added starts and exits through the stream, nothing made up.
        let d = t.apply(exec_started("c1", "added", 13));
        assert_eq!(kinds(&d), [(EventType::ExecStarted, "added".into(), 0)]);
        assert_eq!(
            kinds(&t.apply(exit("c1", "added", 13, 0))),
            [(EventType::Exit, "added".into(), 0)]
        );
    }

    #[test]
    fn an_exec_found_stopped_at_the_first_connect_is_history() {
        let mut t = Table::new();
        let snapshot = with_execs(
            "c1",
            10,
            &[("old", Some(task("c1", 11, TaskStatus::Stopped, Some(3))))],
        );
        assert!(t.reconcile(&snapshot, t.seq(), false).is_empty());
        assert!(matches!(
            t.register("c1", "old", Some(11)),
            Registered::Ready(s) if s.code == 3
        ));
    }

    #[test]
    fn an_exec_whose_exit_the_stream_brought_after_the_sync_is_not_adopted() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        let since = t.seq();
        // Its exit arrives between the sync and the snapshot's turn: delivered then.
        assert_eq!(t.apply(exit("c1", "e1", 11, 1)).len(), 1);
        let snapshot = with_execs(
            "c1",
            10,
            &[("e1", Some(task("c1", 11, TaskStatus::Stopped, Some(1))))],
        );
        assert!(t.reconcile(&snapshot, since, true).is_empty());
    }

    #[test]
    fn a_reused_exec_id_is_a_new_process() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        t.apply(exec_started("c1", "e1", 11));
        assert_eq!(t.apply(exit("c1", "e1", 11, 0)).len(), 1);
        let since = t.seq();
        // While disconnected, e1 was deleted and an exec of the same id started and exited.
        let snapshot = with_execs(
            "c1",
            10,
            &[("e1", Some(task("c1", 12, TaskStatus::Stopped, Some(4))))],
        );
        let d = t.reconcile(&snapshot, since, true);
        assert_eq!(kinds(&d), [(EventType::Exit, "e1".into(), 4)]);
        assert_eq!(d[0].info.pid, 12);
    }

    #[test]
    fn a_container_that_ended_while_disconnected_ends_with_its_init_exit() {
        let mut t = Table::new();
        t.apply(create("c1", 10));
        t.apply(start("c1", 10));
        t.apply(exec_started("c1", "known", 11));
        let since = t.seq();
        let mut snapshot = with_execs(
            "c1",
            10,
            &[
                (
                    "known",
                    Some(task("c1", 11, TaskStatus::Stopped, Some(137))),
                ),
                ("new", Some(task("c1", 12, TaskStatus::Stopped, Some(137)))),
            ],
        );
        snapshot.tasks = vec![task("c1", 10, TaskStatus::Stopped, Some(137))];
        let d = t.reconcile(&snapshot, since, true);
        assert_eq!(
            kinds(&d),
            [
                (EventType::Exit, "known".into(), 137),
                (EventType::Exit, "new".into(), 137),
                (EventType::Exit, "c1".into(), 137),
            ]
        );
    }
}
