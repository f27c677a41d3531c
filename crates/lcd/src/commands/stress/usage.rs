//! Snapshots of the client's own use (CPU time, fds, RSS, heap), taken at the start, after the
//! warm-up and at the end of a run, to show whether lcd and the library grow.

use std::time::Duration;

/// A snapshot of the client process's own use: CPU time (user + system), open fds, RSS.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub fds: usize,
    pub rss_kib: u64,
    /// Bytes the allocator counts as handed out: a leak grows it, while RSS also moves with
    /// fragmentation and pages the allocator keeps. glibc counts the chunks parked in per-thread
    /// caches as in use too, so it wobbles by some KiB with the threads tokio runs blocking calls on.
    pub heap_kib: u64,
}

/// The client process's use now.
pub fn usage() -> Usage {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is always valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Usage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        fds: std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0),
        rss_kib: memory_kib("VmRSS:"),
        heap_kib: heap_in_use_kib(),
    }
}

/// The C allocator's bytes in use (small chunks plus mmapped ones), in KiB.
#[cfg(target_env = "gnu")]
fn heap_in_use_kib() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters (glibc 2.33 and later).
    let info = unsafe { libc::mallinfo2() };
    ((info.uordblks + info.hblkhd) / 1024) as u64
}

#[cfg(not(target_env = "gnu"))]
fn heap_in_use_kib() -> u64 {
    0
}

/// A field of /proc/self/status in KiB (VmRSS: the current RSS, VmHWM: its peak); 0 if unreadable.
pub fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// When the client's warm-up snapshot is taken, counted from the start of the run: 10% of the
/// duration but at least 2 s (the first seconds grow the runtime's worker threads, the connection's
/// buffers and the allocator's arenas to their working size), and at most half the duration, so
/// that even a short run has a snapshot before its end. Growth between this snapshot and the end is
/// what a leak would show. The warm-up snapshot is taken mid-run, so its fd count can include
/// descriptors of operations in flight (the stress containers' output is discarded by the shim, so
/// they have no FIFOs, but a call can briefly hold one); the end count is taken once every worker
/// has finished.
pub fn warmup(duration: Duration) -> Duration {
    (duration / 10)
        .max(Duration::from_secs(2))
        .min(duration / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_snapshot_comes_early_but_not_at_the_end() {
        assert_eq!(warmup(Duration::from_secs(10)), Duration::from_secs(2));
        assert_eq!(warmup(Duration::from_secs(120)), Duration::from_secs(12));
        assert_eq!(warmup(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(warmup(Duration::ZERO), Duration::ZERO);
    }
}
