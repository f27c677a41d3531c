//! `io.containerd.cgroups.v1.Metrics`: what containerd's runc shim reports on a cgroup v1 host.
//!
//! The proto (containerd/cgroups `stats/v1/metrics.proto`, later `cgroup1/stats/metrics.proto`) is not
//! part of containerd's API crate, so the messages are declared here with the same field numbers.
//! Fields a given containerd does not fill (e.g. `memory_oom_control` before cgroups v1.1) decode as
//! their defaults.

use prost::Message;

// The same messages in v1 and v2, so declared once for both (see `common`).
pub use super::common::{PidsStat, RdmaEntry, RdmaStat};

/// The full name containerd's `typeurl` registers these metrics under.
pub const TYPE_URL: &str = "io.containerd.cgroups.v1.Metrics";

/// Everything the v1 controllers report for one container.
#[derive(Clone, PartialEq, Message)]
pub struct Metrics {
    /// One entry per huge page size.
    #[prost(message, repeated, tag = "1")]
    pub hugetlb: Vec<HugetlbStat>,
    /// The pids controller.
    #[prost(message, optional, tag = "2")]
    pub pids: Option<PidsStat>,
    /// The cpu and cpuacct controllers.
    #[prost(message, optional, tag = "3")]
    pub cpu: Option<CpuStat>,
    /// The memory controller (`memory.stat` and the usage files).
    #[prost(message, optional, tag = "4")]
    pub memory: Option<MemoryStat>,
    /// The blkio controller.
    #[prost(message, optional, tag = "5")]
    pub blkio: Option<BlkIoStat>,
    /// The rdma controller.
    #[prost(message, optional, tag = "6")]
    pub rdma: Option<RdmaStat>,
    /// Network interfaces (not filled by the runc shim).
    #[prost(message, repeated, tag = "7")]
    pub network: Vec<NetworkStat>,
    /// Task states in the cgroup.
    #[prost(message, optional, tag = "8")]
    pub cgroup_stats: Option<CgroupStats>,
    /// `memory.oom_control`.
    #[prost(message, optional, tag = "9")]
    pub memory_oom_control: Option<MemoryOomControl>,
}

/// One huge page size's usage.
#[derive(Clone, PartialEq, Message)]
pub struct HugetlbStat {
    /// Bytes in use.
    #[prost(uint64, tag = "1")]
    pub usage: u64,
    /// Peak bytes in use.
    #[prost(uint64, tag = "2")]
    pub max: u64,
    /// How often the limit was hit.
    #[prost(uint64, tag = "3")]
    pub failcnt: u64,
    /// The page size, e.g. `2MB`.
    #[prost(string, tag = "4")]
    pub pagesize: String,
}

/// The cpu and cpuacct controllers.
#[derive(Clone, PartialEq, Message)]
pub struct CpuStat {
    /// CPU time used.
    #[prost(message, optional, tag = "1")]
    pub usage: Option<CpuUsage>,
    /// CFS throttling.
    #[prost(message, optional, tag = "2")]
    pub throttling: Option<Throttle>,
}

/// CPU time, in nanoseconds.
#[derive(Clone, PartialEq, Message)]
pub struct CpuUsage {
    /// All CPU time.
    #[prost(uint64, tag = "1")]
    pub total: u64,
    /// Time in the kernel.
    #[prost(uint64, tag = "2")]
    pub kernel: u64,
    /// Time in user space.
    #[prost(uint64, tag = "3")]
    pub user: u64,
    /// Time per CPU.
    #[prost(uint64, repeated, tag = "4")]
    pub per_cpu: Vec<u64>,
}

/// CFS throttling counters.
#[derive(Clone, PartialEq, Message)]
pub struct Throttle {
    /// Enforcement periods that elapsed.
    #[prost(uint64, tag = "1")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[prost(uint64, tag = "2")]
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    #[prost(uint64, tag = "3")]
    pub throttled_time: u64,
}

/// `memory.stat` plus the usage/limit files, in bytes (page counts for the `pg*` fields).
#[derive(Clone, PartialEq, Message)]
pub struct MemoryStat {
    /// Page cache, including tmpfs (`shmem`).
    #[prost(uint64, tag = "1")]
    pub cache: u64,
    /// Anonymous memory and swap cache (not tmpfs).
    #[prost(uint64, tag = "2")]
    pub rss: u64,
    /// Anonymous transparent huge pages.
    #[prost(uint64, tag = "3")]
    pub rss_huge: u64,
    /// Memory-mapped files, including tmpfs.
    #[prost(uint64, tag = "4")]
    pub mapped_file: u64,
    /// File pages waiting to be written back.
    #[prost(uint64, tag = "5")]
    pub dirty: u64,
    /// File pages being written back now.
    #[prost(uint64, tag = "6")]
    pub writeback: u64,
    /// `pgpgin`: pages charged to the cgroup (a count, not bytes).
    #[prost(uint64, tag = "7")]
    pub pg_pg_in: u64,
    /// `pgpgout`: pages uncharged from the cgroup (a count).
    #[prost(uint64, tag = "8")]
    pub pg_pg_out: u64,
    /// `pgfault`: page faults (a count).
    #[prost(uint64, tag = "9")]
    pub pg_fault: u64,
    /// `pgmajfault`: major page faults, which read from disk (a count).
    #[prost(uint64, tag = "10")]
    pub pg_maj_fault: u64,
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
    /// The memory limit in force, the lowest of this cgroup's and its ancestors'.
    #[prost(uint64, tag = "16")]
    pub hierarchical_memory_limit: u64,
    /// `hierarchical_memsw_limit`: the memory plus swap limit in force, likewise.
    #[prost(uint64, tag = "17")]
    pub hierarchical_swap_limit: u64,
    /// [`cache`](Self::cache) of this cgroup and its descendants.
    #[prost(uint64, tag = "18")]
    pub total_cache: u64,
    /// [`rss`](Self::rss) of this cgroup and its descendants.
    #[prost(uint64, tag = "19")]
    pub total_rss: u64,
    /// [`rss_huge`](Self::rss_huge) of this cgroup and its descendants.
    #[prost(uint64, tag = "20")]
    pub total_rss_huge: u64,
    /// [`mapped_file`](Self::mapped_file) of this cgroup and its descendants.
    #[prost(uint64, tag = "21")]
    pub total_mapped_file: u64,
    /// [`dirty`](Self::dirty) of this cgroup and its descendants.
    #[prost(uint64, tag = "22")]
    pub total_dirty: u64,
    /// [`writeback`](Self::writeback) of this cgroup and its descendants.
    #[prost(uint64, tag = "23")]
    pub total_writeback: u64,
    /// [`pg_pg_in`](Self::pg_pg_in) of this cgroup and its descendants.
    #[prost(uint64, tag = "24")]
    pub total_pg_pg_in: u64,
    /// [`pg_pg_out`](Self::pg_pg_out) of this cgroup and its descendants.
    #[prost(uint64, tag = "25")]
    pub total_pg_pg_out: u64,
    /// [`pg_fault`](Self::pg_fault) of this cgroup and its descendants.
    #[prost(uint64, tag = "26")]
    pub total_pg_fault: u64,
    /// [`pg_maj_fault`](Self::pg_maj_fault) of this cgroup and its descendants.
    #[prost(uint64, tag = "27")]
    pub total_pg_maj_fault: u64,
    /// [`inactive_anon`](Self::inactive_anon) of this cgroup and its descendants.
    #[prost(uint64, tag = "28")]
    pub total_inactive_anon: u64,
    /// [`active_anon`](Self::active_anon) of this cgroup and its descendants.
    #[prost(uint64, tag = "29")]
    pub total_active_anon: u64,
    /// [`inactive_file`](Self::inactive_file) of this cgroup and its descendants.
    #[prost(uint64, tag = "30")]
    pub total_inactive_file: u64,
    /// [`active_file`](Self::active_file) of this cgroup and its descendants.
    #[prost(uint64, tag = "31")]
    pub total_active_file: u64,
    /// [`unevictable`](Self::unevictable) of this cgroup and its descendants.
    #[prost(uint64, tag = "32")]
    pub total_unevictable: u64,
    /// `memory.{usage_in_bytes,limit_in_bytes,max_usage_in_bytes,failcnt}`.
    #[prost(message, optional, tag = "33")]
    pub usage: Option<MemoryEntry>,
    /// `memory.memsw.*`: memory **plus** swap (absent without swap accounting).
    #[prost(message, optional, tag = "34")]
    pub swap: Option<MemoryEntry>,
    /// `memory.kmem.*`.
    #[prost(message, optional, tag = "35")]
    pub kernel: Option<MemoryEntry>,
    /// `memory.kmem.tcp.*`.
    #[prost(message, optional, tag = "36")]
    pub kernel_tcp: Option<MemoryEntry>,
}

/// One family of memory counters.
#[derive(Clone, PartialEq, Message)]
pub struct MemoryEntry {
    /// The limit in bytes (a huge number, about 2^63, when unlimited).
    #[prost(uint64, tag = "1")]
    pub limit: u64,
    /// Bytes in use.
    #[prost(uint64, tag = "2")]
    pub usage: u64,
    /// Peak bytes in use.
    #[prost(uint64, tag = "3")]
    pub max: u64,
    /// How often the limit was hit.
    #[prost(uint64, tag = "4")]
    pub failcnt: u64,
}

/// `memory.oom_control`.
#[derive(Clone, PartialEq, Message)]
pub struct MemoryOomControl {
    /// 1 when the OOM killer is disabled for the cgroup.
    #[prost(uint64, tag = "1")]
    pub oom_kill_disable: u64,
    /// 1 while the cgroup is under OOM.
    #[prost(uint64, tag = "2")]
    pub under_oom: u64,
    /// Processes killed by the OOM killer.
    #[prost(uint64, tag = "3")]
    pub oom_kill: u64,
}

/// The blkio controller's recursive counters.
#[derive(Clone, PartialEq, Message)]
pub struct BlkIoStat {
    /// Bytes transferred, per device and operation.
    #[prost(message, repeated, tag = "1")]
    pub io_service_bytes_recursive: Vec<BlkIoEntry>,
    /// Operations, per device and operation.
    #[prost(message, repeated, tag = "2")]
    pub io_serviced_recursive: Vec<BlkIoEntry>,
    /// Requests queued, per device and operation.
    #[prost(message, repeated, tag = "3")]
    pub io_queued_recursive: Vec<BlkIoEntry>,
    /// Time between dispatch and completion of requests, in nanoseconds.
    #[prost(message, repeated, tag = "4")]
    pub io_service_time_recursive: Vec<BlkIoEntry>,
    /// Time requests waited in the scheduler's queues, in nanoseconds.
    #[prost(message, repeated, tag = "5")]
    pub io_wait_time_recursive: Vec<BlkIoEntry>,
    /// Requests merged into others, per device and operation.
    #[prost(message, repeated, tag = "6")]
    pub io_merged_recursive: Vec<BlkIoEntry>,
    /// Disk time given to the cgroup, per device, in milliseconds.
    #[prost(message, repeated, tag = "7")]
    pub io_time_recursive: Vec<BlkIoEntry>,
    /// Sectors transferred, per device.
    #[prost(message, repeated, tag = "8")]
    pub sectors_recursive: Vec<BlkIoEntry>,
}

/// One blkio counter line.
#[derive(Clone, PartialEq, Message)]
pub struct BlkIoEntry {
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total` (empty for single-value files).
    #[prost(string, tag = "1")]
    pub op: String,
    /// Device name, when known.
    #[prost(string, tag = "2")]
    pub device: String,
    /// The device's major number.
    #[prost(uint64, tag = "3")]
    pub major: u64,
    /// The device's minor number.
    #[prost(uint64, tag = "4")]
    pub minor: u64,
    /// The counter's value.
    #[prost(uint64, tag = "5")]
    pub value: u64,
}

/// One network interface's counters.
#[derive(Clone, PartialEq, Message)]
pub struct NetworkStat {
    /// The interface's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Bytes received.
    #[prost(uint64, tag = "2")]
    pub rx_bytes: u64,
    /// Packets received.
    #[prost(uint64, tag = "3")]
    pub rx_packets: u64,
    /// Receive errors.
    #[prost(uint64, tag = "4")]
    pub rx_errors: u64,
    /// Received packets dropped.
    #[prost(uint64, tag = "5")]
    pub rx_dropped: u64,
    /// Bytes sent.
    #[prost(uint64, tag = "6")]
    pub tx_bytes: u64,
    /// Packets sent.
    #[prost(uint64, tag = "7")]
    pub tx_packets: u64,
    /// Send errors.
    #[prost(uint64, tag = "8")]
    pub tx_errors: u64,
    /// Outgoing packets dropped.
    #[prost(uint64, tag = "9")]
    pub tx_dropped: u64,
}

/// Task states in the cgroup.
#[derive(Clone, PartialEq, Message)]
pub struct CgroupStats {
    /// Tasks sleeping.
    #[prost(uint64, tag = "1")]
    pub nr_sleeping: u64,
    /// Tasks running.
    #[prost(uint64, tag = "2")]
    pub nr_running: u64,
    /// Tasks stopped.
    #[prost(uint64, tag = "3")]
    pub nr_stopped: u64,
    /// Tasks in uninterruptible sleep.
    #[prost(uint64, tag = "4")]
    pub nr_uninterruptible: u64,
    /// Tasks waiting for IO.
    #[prost(uint64, tag = "5")]
    pub nr_io_wait: u64,
}
