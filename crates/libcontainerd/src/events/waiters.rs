//! Who waits for which exit. A wait is a oneshot channel registered under its process, resolved when
//! the table decides that process's exit; whether the exit is already known is the table's call.

use std::collections::HashMap;

use tokio::sync::oneshot;

use super::delivery::Key;
use crate::task::ExitStatus;

/// The outcome of registering a wait.
pub(crate) enum Registered {
    /// The exit is already known.
    Ready(ExitStatus),
    /// Resolved when the exit is decided; dropped (an error) when the monitor stops.
    Pending(oneshot::Receiver<ExitStatus>),
    /// The monitor has stopped.
    Closed,
}

struct Waiter {
    /// Only the exit of this pid resolves it; `None`: any exit of the process id.
    pid: Option<u32>,
    tx: oneshot::Sender<ExitStatus>,
}

/// The pending waits, by process.
#[derive(Default)]
pub(crate) struct Waiters {
    map: HashMap<Key, Vec<Waiter>>,
    closed: bool,
}

impl Waiters {
    /// Whether the monitor stopped (no wait can be added any more).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Wait for the next exit of `key` (of process `pid` only, if given).
    pub(crate) fn add(&mut self, key: Key, pid: Option<u32>) -> Registered {
        if self.closed {
            return Registered::Closed;
        }
        let (tx, rx) = oneshot::channel();
        let waiters = self.map.entry(key).or_default();
        waiters.retain(|w| !w.tx.is_closed());
        waiters.push(Waiter { pid, tx });
        Registered::Pending(rx)
    }

    /// The exit of `key`'s process `pid` (0: not known) was decided: resolve the waits it answers.
    pub(crate) fn resolve(&mut self, key: &Key, pid: u32, status: ExitStatus) {
        let Some(waiters) = self.map.remove(key) else {
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
            self.map.insert(key.clone(), keep);
        }
    }

    /// Drop waits whose futures were dropped.
    pub(crate) fn prune(&mut self) {
        self.map.retain(|_, ws| {
            ws.retain(|w| !w.tx.is_closed());
            !ws.is_empty()
        });
    }

    /// The monitor stopped: pending waits fail (their senders are dropped), new ones fail at once.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.map.clear();
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::delivery::key;
    use super::*;

    fn code(code: u32) -> ExitStatus {
        ExitStatus {
            code,
            exited_at: None,
        }
    }

    fn pending(r: Registered) -> oneshot::Receiver<ExitStatus> {
        match r {
            Registered::Pending(rx) => rx,
            _ => panic!("should be pending"),
        }
    }

    #[test]
    fn an_exit_resolves_the_waits_for_its_pid_or_any() {
        let mut w = Waiters::default();
        let mut any = pending(w.add(key("c", "p"), None));
        let mut mine = pending(w.add(key("c", "p"), Some(7)));
        let mut other = pending(w.add(key("c", "p"), Some(8)));
        w.resolve(&key("c", "p"), 7, code(1));
        assert_eq!(any.try_recv().unwrap().code, 1);
        assert_eq!(mine.try_recv().unwrap().code, 1);
        assert!(other.try_recv().is_err(), "another pid's wait stays");
        w.resolve(&key("c", "p"), 8, code(2));
        assert_eq!(other.try_recv().unwrap().code, 2);
        assert!(w.is_empty());
    }

    #[test]
    fn dropped_waits_are_pruned_and_closing_fails_the_rest() {
        let mut w = Waiters::default();
        drop(w.add(key("c", "gone"), None));
        let mut kept = pending(w.add(key("c", "kept"), None));
        w.prune();
        assert_eq!(w.map.len(), 1);
        w.close();
        assert!(matches!(
            kept.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert!(matches!(w.add(key("c", "p"), None), Registered::Closed));
    }
}
