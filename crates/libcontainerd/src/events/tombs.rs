//! A bounded memory of forgotten processes, so that their late exits are recognised as duplicates
//! and late waits for them still resolve.

use std::collections::{HashMap, VecDeque};

use super::delivery::Key;
use crate::task::ExitStatus;

/// How many forgotten processes are remembered to recognise late duplicate exits. A late exit comes
/// seconds after the first, so a few thousand entries cover far more than any realistic window while
/// bounding memory.
pub(crate) const TOMBSTONES: usize = 4096;

/// A forgotten process: enough to drop its late exits and answer late waiters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tomb {
    pub(crate) pid: u32,
    pub(crate) status: ExitStatus,
}

/// The oldest tombstone is dropped first.
#[derive(Default)]
pub(crate) struct Tombs {
    map: HashMap<Key, (u64, Tomb)>,
    order: VecDeque<(Key, u64)>,
    next: u64,
}

impl Tombs {
    pub(crate) fn insert(&mut self, key: Key, tomb: Tomb) {
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

    pub(crate) fn get(&self, key: &Key) -> Option<Tomb> {
        self.map.get(key).map(|(_, t)| *t)
    }

    /// Whether an exit of `pid` for `key` is one already delivered (pid 0 means unknown: match).
    pub(crate) fn matches(&self, key: &Key, pid: u32) -> bool {
        self.get(key)
            .is_some_and(|t| pid == 0 || t.pid == 0 || t.pid == pid)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::delivery::{key, unknown_status};
    use super::*;

    fn tomb(pid: u32) -> Tomb {
        Tomb {
            pid,
            status: unknown_status(),
        }
    }

    #[test]
    fn a_reinserted_key_survives_the_eviction_of_its_older_insertion() {
        let mut t = Tombs::default();
        t.insert(key("c", "old"), tomb(1));
        t.insert(key("c", "again"), tomb(2));
        // "again" is inserted a second time: its first insertion is evicted below, not the entry.
        t.insert(key("c", "again"), tomb(3));
        for i in 0..(TOMBSTONES - 1) {
            t.insert(key("filler", &i.to_string()), tomb(9));
        }
        assert!(t.get(&key("c", "old")).is_none());
        assert_eq!(t.get(&key("c", "again")).map(|t| t.pid), Some(3));
        assert!(t.len() <= TOMBSTONES);
    }

    #[test]
    fn an_unknown_pid_matches_either_way() {
        let mut t = Tombs::default();
        t.insert(key("c", "p"), tomb(5));
        assert!(t.matches(&key("c", "p"), 5));
        assert!(t.matches(&key("c", "p"), 0));
        assert!(!t.matches(&key("c", "p"), 6));
        t.insert(key("c", "q"), tomb(0));
        assert!(t.matches(&key("c", "q"), 6));
        assert!(!t.matches(&key("c", "r"), 0));
    }
}
