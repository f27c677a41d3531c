//! Which containerd the agent serves: its pid and start time (a pid alone may be reused), to
//! notice that it exited (the agent then exits too) and that the one found at start is not the one
//! served last time (containerd started again: docker's daemon-start rule applies).

use std::path::Path;
use std::time::Duration;

/// A process: its pid and its start time in clock ticks since boot (`/proc/PID/stat`, field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub pid: u32,
    pub started: u64,
}

impl Instance {
    /// The process `pid` now, if it exists.
    pub fn of(pid: u32) -> Option<Instance> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start at field 3.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let started = after_name.split_whitespace().nth(19)?.parse().ok()?;
        Some(Instance { pid, started })
    }

    /// Whether this process still runs (and is not a zombie).
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let zombie = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X");
        !zombie && Instance::of(self.pid) == Some(*self)
    }

    /// Whether the agent served this containerd before: `served` names the last one.
    pub fn was_served(&self, served: &Path) -> bool {
        std::fs::read_to_string(served).is_ok_and(|text| text.trim() == self.record())
    }

    /// Note that the agent serves this containerd (written once its start-up rule is applied).
    pub fn mark_served(&self, served: &Path) -> std::io::Result<()> {
        let temp = served.with_extension("tmp");
        std::fs::write(&temp, self.record())?;
        std::fs::rename(temp, served)
    }

    fn record(&self) -> String {
        format!("{} {}", self.pid, self.started)
    }

    /// Returns once the process is gone (checked four times a second: the agent has nothing to
    /// do with a containerd that is gone, and the next lcd command starts both again, waiting for
    /// this agent to go first).
    pub async fn exited(self) {
        while self.is_alive() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
