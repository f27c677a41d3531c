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
    #[prost(uint64, tag = "1")]
    pub cache: u64,
    #[prost(uint64, tag = "2")]
    pub rss: u64,
    #[prost(uint64, tag = "3")]
    pub rss_huge: u64,
    #[prost(uint64, tag = "4")]
    pub mapped_file: u64,
    #[prost(uint64, tag = "5")]
    pub dirty: u64,
    #[prost(uint64, tag = "6")]
    pub writeback: u64,
    #[prost(uint64, tag = "7")]
    pub pg_pg_in: u64,
    #[prost(uint64, tag = "8")]
    pub pg_pg_out: u64,
    #[prost(uint64, tag = "9")]
    pub pg_fault: u64,
    #[prost(uint64, tag = "10")]
    pub pg_maj_fault: u64,
    #[prost(uint64, tag = "11")]
    pub inactive_anon: u64,
    #[prost(uint64, tag = "12")]
    pub active_anon: u64,
    #[prost(uint64, tag = "13")]
    pub inactive_file: u64,
    #[prost(uint64, tag = "14")]
    pub active_file: u64,
    #[prost(uint64, tag = "15")]
    pub unevictable: u64,
    #[prost(uint64, tag = "16")]
    pub hierarchical_memory_limit: u64,
    #[prost(uint64, tag = "17")]
    pub hierarchical_swap_limit: u64,
    #[prost(uint64, tag = "18")]
    pub total_cache: u64,
    #[prost(uint64, tag = "19")]
    pub total_rss: u64,
    #[prost(uint64, tag = "20")]
    pub total_rss_huge: u64,
    #[prost(uint64, tag = "21")]
    pub total_mapped_file: u64,
    #[prost(uint64, tag = "22")]
    pub total_dirty: u64,
    #[prost(uint64, tag = "23")]
    pub total_writeback: u64,
    #[prost(uint64, tag = "24")]
    pub total_pg_pg_in: u64,
    #[prost(uint64, tag = "25")]
    pub total_pg_pg_out: u64,
    #[prost(uint64, tag = "26")]
    pub total_pg_fault: u64,
    #[prost(uint64, tag = "27")]
    pub total_pg_maj_fault: u64,
    #[prost(uint64, tag = "28")]
    pub total_inactive_anon: u64,
    #[prost(uint64, tag = "29")]
    pub total_active_anon: u64,
    #[prost(uint64, tag = "30")]
    pub total_inactive_file: u64,
    #[prost(uint64, tag = "31")]
    pub total_active_file: u64,
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
    #[prost(message, repeated, tag = "3")]
    pub io_queued_recursive: Vec<BlkIoEntry>,
    #[prost(message, repeated, tag = "4")]
    pub io_service_time_recursive: Vec<BlkIoEntry>,
    #[prost(message, repeated, tag = "5")]
    pub io_wait_time_recursive: Vec<BlkIoEntry>,
    #[prost(message, repeated, tag = "6")]
    pub io_merged_recursive: Vec<BlkIoEntry>,
    #[prost(message, repeated, tag = "7")]
    pub io_time_recursive: Vec<BlkIoEntry>,
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
    #[prost(uint64, tag = "3")]
    pub major: u64,
    #[prost(uint64, tag = "4")]
    pub minor: u64,
    #[prost(uint64, tag = "5")]
    pub value: u64,
}

/// One network interface's counters.
#[derive(Clone, PartialEq, Message)]
pub struct NetworkStat {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint64, tag = "2")]
    pub rx_bytes: u64,
    #[prost(uint64, tag = "3")]
    pub rx_packets: u64,
    #[prost(uint64, tag = "4")]
    pub rx_errors: u64,
    #[prost(uint64, tag = "5")]
    pub rx_dropped: u64,
    #[prost(uint64, tag = "6")]
    pub tx_bytes: u64,
    #[prost(uint64, tag = "7")]
    pub tx_packets: u64,
    #[prost(uint64, tag = "8")]
    pub tx_errors: u64,
    #[prost(uint64, tag = "9")]
    pub tx_dropped: u64,
}

/// Task states in the cgroup.
#[derive(Clone, PartialEq, Message)]
pub struct CgroupStats {
    #[prost(uint64, tag = "1")]
    pub nr_sleeping: u64,
    #[prost(uint64, tag = "2")]
    pub nr_running: u64,
    #[prost(uint64, tag = "3")]
    pub nr_stopped: u64,
    #[prost(uint64, tag = "4")]
    pub nr_uninterruptible: u64,
    #[prost(uint64, tag = "5")]
    pub nr_io_wait: u64,
}
