//! `io.containerd.cgroups.v2.Metrics`: what containerd's runc shim reports on a cgroup v2 host.
//!
//! Declared by hand with the field numbers of containerd/cgroups `cgroup2/stats/metrics.proto`
//! (formerly `v2/stats/metrics.proto`); fields an older containerd does not send decode as defaults.

use prost::Message;

// The same messages in v1 and v2, so declared once for both (see `common`).
pub use super::common::{PidsStat, RdmaEntry, RdmaStat};

/// The full name containerd's `typeurl` registers these metrics under.
pub const TYPE_URL: &str = "io.containerd.cgroups.v2.Metrics";

/// Everything the unified hierarchy reports for one container.
#[derive(Clone, PartialEq, Message)]
pub struct Metrics {
    /// `pids.current` / `pids.max`.
    #[prost(message, optional, tag = "1")]
    pub pids: Option<PidsStat>,
    /// `cpu.stat`.
    #[prost(message, optional, tag = "2")]
    pub cpu: Option<CpuStat>,
    /// `memory.stat` plus the usage and limit files.
    #[prost(message, optional, tag = "4")]
    pub memory: Option<MemoryStat>,
    /// `rdma.current` / `rdma.max`.
    #[prost(message, optional, tag = "5")]
    pub rdma: Option<RdmaStat>,
    /// `io.stat`.
    #[prost(message, optional, tag = "6")]
    pub io: Option<IoStat>,
    /// One entry per huge page size.
    #[prost(message, repeated, tag = "7")]
    pub hugetlb: Vec<HugeTlbStat>,
    /// `memory.events`.
    #[prost(message, optional, tag = "8")]
    pub memory_events: Option<MemoryEvents>,
}

/// `cpu.stat`, in microseconds.
#[derive(Clone, PartialEq, Message)]
pub struct CpuStat {
    /// All CPU time used.
    #[prost(uint64, tag = "1")]
    pub usage_usec: u64,
    /// CPU time in user space.
    #[prost(uint64, tag = "2")]
    pub user_usec: u64,
    /// CPU time in the kernel.
    #[prost(uint64, tag = "3")]
    pub system_usec: u64,
    /// CFS enforcement periods that elapsed.
    #[prost(uint64, tag = "4")]
    pub nr_periods: u64,
    /// Periods in which the cgroup was throttled.
    #[prost(uint64, tag = "5")]
    pub nr_throttled: u64,
    /// Total time throttled.
    #[prost(uint64, tag = "6")]
    pub throttled_usec: u64,
}

/// `memory.stat` (bytes; `pg*`, `workingset_*` and `thp_*` are event counts) plus usage and limits.
#[derive(Clone, PartialEq, Message)]
pub struct MemoryStat {
    /// Anonymous memory (heap, stacks, anonymous mappings).
    #[prost(uint64, tag = "1")]
    pub anon: u64,
    /// Page cache, including tmpfs.
    #[prost(uint64, tag = "2")]
    pub file: u64,
    /// Kernel stacks of the cgroup's tasks.
    #[prost(uint64, tag = "3")]
    pub kernel_stack: u64,
    /// Kernel slab memory (reclaimable and not).
    #[prost(uint64, tag = "4")]
    pub slab: u64,
    /// Network transmission buffers.
    #[prost(uint64, tag = "5")]
    pub sock: u64,
    /// Shared memory and tmpfs.
    #[prost(uint64, tag = "6")]
    pub shmem: u64,
    /// Memory-mapped files.
    #[prost(uint64, tag = "7")]
    pub file_mapped: u64,
    /// File pages waiting to be written back.
    #[prost(uint64, tag = "8")]
    pub file_dirty: u64,
    /// File pages being written back now.
    #[prost(uint64, tag = "9")]
    pub file_writeback: u64,
    /// Anonymous transparent huge pages.
    #[prost(uint64, tag = "10")]
    pub anon_thp: u64,
    /// Anonymous memory on the inactive LRU list.
    #[prost(uint64, tag = "11")]
    pub inactive_anon: u64,
    /// Anonymous memory on the active LRU list.
    #[prost(uint64, tag = "12")]
    pub active_anon: u64,
    /// Page cache on the inactive LRU list.
    #[prost(uint64, tag = "13")]
    pub inactive_file: u64,
    /// Page cache on the active LRU list.
    #[prost(uint64, tag = "14")]
    pub active_file: u64,
    /// Memory that cannot be reclaimed (e.g. `mlock`ed).
    #[prost(uint64, tag = "15")]
    pub unevictable: u64,
    /// Slab memory that may be reclaimed (dentries, inodes...).
    #[prost(uint64, tag = "16")]
    pub slab_reclaimable: u64,
    /// Slab memory that cannot be reclaimed under pressure.
    #[prost(uint64, tag = "17")]
    pub slab_unreclaimable: u64,
    /// Page faults.
    #[prost(uint64, tag = "18")]
    pub pgfault: u64,
    /// Major page faults, which read from disk.
    #[prost(uint64, tag = "19")]
    pub pgmajfault: u64,
    /// Refaults of pages evicted earlier.
    #[prost(uint64, tag = "20")]
    pub workingset_refault: u64,
    /// Refaulted pages activated at once.
    #[prost(uint64, tag = "21")]
    pub workingset_activate: u64,
    /// Times a shadow node was reclaimed.
    #[prost(uint64, tag = "22")]
    pub workingset_nodereclaim: u64,
    /// Pages scanned on the active LRU list.
    #[prost(uint64, tag = "23")]
    pub pgrefill: u64,
    /// Pages scanned on the inactive LRU list.
    #[prost(uint64, tag = "24")]
    pub pgscan: u64,
    /// Pages reclaimed.
    #[prost(uint64, tag = "25")]
    pub pgsteal: u64,
    /// Pages moved to the active LRU list.
    #[prost(uint64, tag = "26")]
    pub pgactivate: u64,
    /// Pages moved to the inactive LRU list.
    #[prost(uint64, tag = "27")]
    pub pgdeactivate: u64,
    /// Pages postponed for freeing under pressure (`MADV_FREE`).
    #[prost(uint64, tag = "28")]
    pub pglazyfree: u64,
    /// Such lazily freed pages reclaimed.
    #[prost(uint64, tag = "29")]
    pub pglazyfreed: u64,
    /// Transparent huge pages allocated on a fault.
    #[prost(uint64, tag = "30")]
    pub thp_fault_alloc: u64,
    /// Transparent huge pages allocated by collapsing small pages.
    #[prost(uint64, tag = "31")]
    pub thp_collapse_alloc: u64,
    /// `memory.current`.
    #[prost(uint64, tag = "32")]
    pub usage: u64,
    /// `memory.max` (`u64::MAX` for `max`).
    #[prost(uint64, tag = "33")]
    pub usage_limit: u64,
    /// `memory.swap.current`: swap only, unlike v1's memsw.
    #[prost(uint64, tag = "34")]
    pub swap_usage: u64,
    /// `memory.swap.max`: swap only (`u64::MAX` for `max`).
    #[prost(uint64, tag = "35")]
    pub swap_limit: u64,
    /// `memory.peak`, where the kernel has it.
    #[prost(uint64, tag = "36")]
    pub max_usage: u64,
    /// `memory.swap.peak`, where the kernel has it.
    #[prost(uint64, tag = "37")]
    pub swap_max_usage: u64,
}

/// `memory.events`: how often each boundary was hit.
#[derive(Clone, PartialEq, Message)]
pub struct MemoryEvents {
    /// Reclaims while usage was under `memory.low` (the protection gave way).
    #[prost(uint64, tag = "1")]
    pub low: u64,
    /// Times usage went over `memory.high` and the cgroup was throttled.
    #[prost(uint64, tag = "2")]
    pub high: u64,
    /// Times usage was about to go over `memory.max`.
    #[prost(uint64, tag = "3")]
    pub max: u64,
    /// The cgroup ran out of memory.
    #[prost(uint64, tag = "4")]
    pub oom: u64,
    /// Processes the OOM killer killed.
    #[prost(uint64, tag = "5")]
    pub oom_kill: u64,
}

/// `io.stat`.
#[derive(Clone, PartialEq, Message)]
pub struct IoStat {
    /// One entry per device.
    #[prost(message, repeated, tag = "1")]
    pub usage: Vec<IoEntry>,
}

/// One device's line of `io.stat`.
#[derive(Clone, PartialEq, Message)]
pub struct IoEntry {
    /// The device's major number.
    #[prost(uint64, tag = "1")]
    pub major: u64,
    /// The device's minor number.
    #[prost(uint64, tag = "2")]
    pub minor: u64,
    /// Bytes read.
    #[prost(uint64, tag = "3")]
    pub rbytes: u64,
    /// Bytes written.
    #[prost(uint64, tag = "4")]
    pub wbytes: u64,
    /// Read operations.
    #[prost(uint64, tag = "5")]
    pub rios: u64,
    /// Write operations.
    #[prost(uint64, tag = "6")]
    pub wios: u64,
}

/// One huge page size's usage.
#[derive(Clone, PartialEq, Message)]
pub struct HugeTlbStat {
    /// Bytes in use.
    #[prost(uint64, tag = "1")]
    pub current: u64,
    /// `hugetlb.<size>.max`.
    #[prost(uint64, tag = "2")]
    pub max: u64,
    /// The page size, e.g. `2MB`.
    #[prost(string, tag = "3")]
    pub pagesize: String,
}
