//! Resource usage of a running task, decoded from containerd's cgroup v1 or v2 metrics.
//!
//! containerd's `Tasks.Metrics` answers with an `Any` that is either `io.containerd.cgroups.v1.Metrics`
//! or `io.containerd.cgroups.v2.Metrics`, depending on the host's cgroup hierarchy. [`Stats`] is one
//! typed view of both (CPU time in nanoseconds, memory in bytes, ...); the decoded message itself stays
//! reachable as [`Stats::raw`] for whatever the typed view leaves out.

pub(crate) mod cgroup1;
pub(crate) mod cgroup2;
mod common;

use std::time::SystemTime;

use containerd_client::services::v1::MetricsRequest;
use containerd_client::types::Metric;
use prost::Message;

use crate::error::{Error, ErrorKind, Result};
use crate::task::{Task, TaskStatus};
use crate::time::from_timestamp;

/// Limits at or above this many bytes mean "no limit": cgroup v1 reports an unlimited memory limit as
/// `0x7FFFFFFFFFFFF000` and containerd turns v2's `max` into `u64::MAX`.
const UNLIMITED: u64 = 1 << 62;

/// One sample of a task's resource usage.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    /// When containerd took the sample (the metric's own timestamp, not when it arrived).
    #[serde(serialize_with = "serialize_time")]
    pub read: SystemTime,
    /// CPU time.
    pub cpu: CpuStats,
    /// Memory.
    pub memory: MemoryStats,
    /// Processes and threads.
    pub pids: PidsStats,
    /// Block device traffic.
    pub block_io: BlockIoStats,
    /// Huge pages, one entry per page size (empty where the controller is absent).
    pub hugetlb: Vec<HugetlbStats>,
    /// The decoded metrics message, for fields the typed view does not carry.
    #[serde(skip)]
    pub raw: Raw,
}

/// The metrics message as containerd sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// A cgroup v1 host.
    V1(Box<cgroup1::Metrics>),
    /// A cgroup v2 (unified) host.
    V2(Box<cgroup2::Metrics>),
}

/// CPU time used by the task's cgroup, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuStats {
    /// All CPU time.
    pub total_ns: u64,
    /// Time in user space.
    pub user_ns: u64,
    /// Time in the kernel.
    pub system_ns: u64,
    /// Time per CPU (cgroup v1 only; empty on v2).
    pub per_cpu_ns: Vec<u64>,
    /// CFS bandwidth throttling, where reported.
    pub throttling: Option<Throttling>,
}

/// CFS bandwidth throttling counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Throttling {
    /// Enforcement periods that elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    pub throttled_time_ns: u64,
}

/// Memory of the task's cgroup, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryStats {
    /// Memory charged to the cgroup now, page cache and tmpfs included.
    pub usage: u64,
    /// Peak usage, where the kernel reports it.
    pub max_usage: Option<u64>,
    /// The memory limit; `None` when unlimited.
    pub limit: Option<u64>,
    /// How often usage hit the limit (cgroup v1 only).
    pub failcnt: Option<u64>,
    /// Page cache (v1 `total_cache`, v2 `file`); tmpfs pages count here.
    pub cache: u64,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub rss: u64,
    /// Inactive file-backed pages, which the kernel reclaims first.
    pub inactive_file: u64,
    /// Swap in use, where swap is accounted.
    pub swap_usage: Option<u64>,
    /// The limit on memory plus swap (docker's `--memory-swap`); `None` when unlimited or unknown.
    pub memory_swap_limit: Option<u64>,
    /// How often the cgroup ran out of memory (cgroup v2 `memory.events` `oom`).
    pub oom_events: Option<u64>,
    /// Processes killed by the OOM killer (v1 `memory.oom_control`, v2 `memory.events`), where
    /// reported.
    pub oom_kills: Option<u64>,
}

impl MemoryStats {
    /// Usage without inactive page cache: what `docker stats` shows as MEM USAGE.
    pub fn working_set(&self) -> u64 {
        self.usage.saturating_sub(self.inactive_file)
    }
}

/// Processes (and threads) in the task's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PidsStats {
    /// How many there are.
    pub current: u64,
    /// The pids limit; `None` when unlimited.
    pub limit: Option<u64>,
}

/// Block device traffic of the task's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlockIoStats {
    /// One entry per device, in the order the kernel lists them.
    pub devices: Vec<BlockIoDevice>,
}

impl BlockIoStats {
    /// Bytes read from all devices.
    pub fn read_bytes(&self) -> u64 {
        self.devices
            .iter()
            .fold(0, |total: u64, d| total.saturating_add(d.read_bytes))
    }

    /// Bytes written to all devices.
    pub fn write_bytes(&self) -> u64 {
        self.devices
            .iter()
            .fold(0, |total: u64, d| total.saturating_add(d.write_bytes))
    }
}

/// One block device's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlockIoDevice {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Read operations.
    pub read_ops: u64,
    /// Write operations.
    pub write_ops: u64,
}

/// Huge pages of one size.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HugetlbStats {
    /// The page size as the kernel names it, e.g. `2MB`.
    pub page_size: String,
    /// Bytes in use.
    pub usage: u64,
    /// Peak bytes in use (cgroup v1 only).
    pub max_usage: Option<u64>,
    /// The limit (cgroup v2 only); `None` when unlimited or not reported.
    pub limit: Option<u64>,
    /// How often the limit was hit (cgroup v1 only).
    pub failcnt: Option<u64>,
}

fn serialize_time<S: serde::Serializer>(
    t: &SystemTime,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::rfc3339(*t))
}

impl Stats {
    /// Decode one metric from `Tasks.Metrics`. A payload of any type but the two cgroup metrics is
    /// [`ErrorKind::InvalidArgument`] ("unexpected type of metrics ...").
    pub(crate) fn from_metric(metric: &Metric) -> Result<Stats> {
        let data = metric.data.as_ref().ok_or_else(|| {
            Error::internal(format!(
                "containerd sent metrics for {} without data",
                metric.id
            ))
        })?;
        // containerd always stamps its samples; fall back to the time of receipt rather than fail a
        // sample whose numbers are fine.
        let read = metric
            .timestamp
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_else(SystemTime::now);
        Stats::from_any(read, data)
    }

    /// Decode a metrics `Any` sampled at `read` ([`raw::stats_from_any`](crate::raw::stats_from_any)).
    pub(crate) fn from_any(read: SystemTime, data: &prost_types::Any) -> Result<Stats> {
        // typeurl writes bare full names; other encoders prefix `type.googleapis.com/`.
        let name = data.type_url.rsplit('/').next().unwrap_or_default();
        let decode_error = |e: prost::DecodeError| {
            Error::internal(format!("decode metrics of type {name}: {e}")).with_source(e)
        };
        match name {
            cgroup1::TYPE_URL => {
                let raw = cgroup1::Metrics::decode(data.value.as_slice()).map_err(decode_error)?;
                Ok(from_v1(read, raw))
            }
            cgroup2::TYPE_URL => {
                let raw = cgroup2::Metrics::decode(data.value.as_slice()).map_err(decode_error)?;
                Ok(from_v2(read, raw))
            }
            _ => Err(Error::invalid(format!(
                "unexpected type of metrics {:?}: want {} or {}",
                data.type_url,
                cgroup1::TYPE_URL,
                cgroup2::TYPE_URL
            ))),
        }
    }
}

/// `None` for the values the kernel and containerd use to say "no limit".
fn limit(value: u64) -> Option<u64> {
    (value != 0 && value < UNLIMITED).then_some(value)
}

fn from_v1(read: SystemTime, raw: cgroup1::Metrics) -> Stats {
    Stats {
        read,
        cpu: raw.cpu.as_ref().map(v1_cpu).unwrap_or_default(),
        memory: raw
            .memory
            .as_ref()
            .map(|m| v1_memory(m, raw.memory_oom_control.as_ref()))
            .unwrap_or_default(),
        pids: raw
            .pids
            .as_ref()
            .map(|p| PidsStats {
                current: p.current,
                limit: limit(p.limit),
            })
            .unwrap_or_default(),
        block_io: raw.blkio.as_ref().map(v1_block_io).unwrap_or_default(),
        hugetlb: raw
            .hugetlb
            .iter()
            .map(|h| HugetlbStats {
                page_size: h.pagesize.clone(),
                usage: h.usage,
                max_usage: Some(h.max),
                limit: None,
                failcnt: Some(h.failcnt),
            })
            .collect(),
        raw: Raw::V1(Box::new(raw)),
    }
}

fn v1_cpu(cpu: &cgroup1::CpuStat) -> CpuStats {
    let usage = cpu.usage.clone().unwrap_or_default();
    CpuStats {
        total_ns: usage.total,
        user_ns: usage.user,
        system_ns: usage.kernel,
        per_cpu_ns: usage.per_cpu,
        throttling: cpu.throttling.as_ref().map(|t| Throttling {
            periods: t.periods,
            throttled_periods: t.throttled_periods,
            throttled_time_ns: t.throttled_time,
        }),
    }
}

fn v1_memory(memory: &cgroup1::MemoryStat, oom: Option<&cgroup1::MemoryOomControl>) -> MemoryStats {
    let usage = memory.usage.clone().unwrap_or_default();
    // v1's "swap" entry is memsw: memory and swap together. It is all zero without swap accounting.
    let memsw = memory
        .swap
        .as_ref()
        .filter(|s| s.limit != 0 || s.usage != 0);
    MemoryStats {
        usage: usage.usage,
        max_usage: Some(usage.max),
        limit: limit(usage.limit),
        failcnt: Some(usage.failcnt),
        // The total_* counters include child cgroups, like the usage files do.
        cache: memory.total_cache,
        rss: memory.total_rss,
        inactive_file: memory.total_inactive_file,
        swap_usage: memsw.map(|s| s.usage.saturating_sub(usage.usage)),
        memory_swap_limit: memsw.and_then(|s| limit(s.limit)),
        oom_events: None,
        oom_kills: oom.map(|o| o.oom_kill),
    }
}

fn v1_block_io(blkio: &cgroup1::BlkIoStat) -> BlockIoStats {
    let mut stats = BlockIoStats::default();
    for entry in &blkio.io_service_bytes_recursive {
        let device = device_entry(&mut stats.devices, entry.major, entry.minor);
        match entry.op.to_ascii_lowercase().as_str() {
            "read" => device.read_bytes = device.read_bytes.saturating_add(entry.value),
            "write" => device.write_bytes = device.write_bytes.saturating_add(entry.value),
            _ => {}
        }
    }
    for entry in &blkio.io_serviced_recursive {
        let device = device_entry(&mut stats.devices, entry.major, entry.minor);
        match entry.op.to_ascii_lowercase().as_str() {
            "read" => device.read_ops = device.read_ops.saturating_add(entry.value),
            "write" => device.write_ops = device.write_ops.saturating_add(entry.value),
            _ => {}
        }
    }
    stats
}

/// The entry for device `major:minor`, added if it is new (v1 spreads a device over several lines).
fn device_entry(devices: &mut Vec<BlockIoDevice>, major: u64, minor: u64) -> &mut BlockIoDevice {
    let index = match devices
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(index) => index,
        None => {
            devices.push(BlockIoDevice {
                major,
                minor,
                ..Default::default()
            });
            devices.len() - 1
        }
    };
    &mut devices[index]
}

fn from_v2(read: SystemTime, raw: cgroup2::Metrics) -> Stats {
    Stats {
        read,
        cpu: raw.cpu.as_ref().map(v2_cpu).unwrap_or_default(),
        memory: raw
            .memory
            .as_ref()
            .map(|m| v2_memory(m, raw.memory_events.as_ref()))
            .unwrap_or_default(),
        pids: raw
            .pids
            .as_ref()
            .map(|p| PidsStats {
                current: p.current,
                limit: limit(p.limit),
            })
            .unwrap_or_default(),
        block_io: BlockIoStats {
            devices: raw
                .io
                .iter()
                .flat_map(|io| io.usage.iter())
                .map(|e| BlockIoDevice {
                    major: e.major,
                    minor: e.minor,
                    read_bytes: e.rbytes,
                    write_bytes: e.wbytes,
                    read_ops: e.rios,
                    write_ops: e.wios,
                })
                .collect(),
        },
        hugetlb: raw
            .hugetlb
            .iter()
            .map(|h| HugetlbStats {
                page_size: h.pagesize.clone(),
                usage: h.current,
                max_usage: None,
                limit: limit(h.max),
                failcnt: None,
            })
            .collect(),
        raw: Raw::V2(Box::new(raw)),
    }
}

fn v2_cpu(cpu: &cgroup2::CpuStat) -> CpuStats {
    CpuStats {
        total_ns: cpu.usage_usec.saturating_mul(1000),
        user_ns: cpu.user_usec.saturating_mul(1000),
        system_ns: cpu.system_usec.saturating_mul(1000),
        per_cpu_ns: Vec::new(),
        throttling: Some(Throttling {
            periods: cpu.nr_periods,
            throttled_periods: cpu.nr_throttled,
            throttled_time_ns: cpu.throttled_usec.saturating_mul(1000),
        }),
    }
}

fn v2_memory(memory: &cgroup2::MemoryStat, events: Option<&cgroup2::MemoryEvents>) -> MemoryStats {
    let memory_limit = limit(memory.usage_limit);
    MemoryStats {
        usage: memory.usage,
        // memory.peak is recent (Linux 5.19); older kernels leave it 0.
        max_usage: (memory.max_usage != 0).then_some(memory.max_usage),
        limit: memory_limit,
        failcnt: None,
        cache: memory.file,
        rss: memory.anon,
        inactive_file: memory.inactive_file,
        swap_usage: Some(memory.swap_usage),
        // v2 limits swap on its own; docker's --memory-swap is the sum of both limits.
        memory_swap_limit: memory_limit
            .zip(limit(memory.swap_limit))
            .map(|(m, s)| m.saturating_add(s)),
        oom_events: events.map(|e| e.oom),
        oom_kills: events.map(|e| e.oom_kill),
    }
}

impl Task {
    /// One sample of the task's resource usage. A task that is not running (or paused) is
    /// [`ErrorKind::FailedPrecondition`]; a container without a task is [`ErrorKind::NotFound`].
    pub async fn stats(&self) -> Result<Stats> {
        let client = self.container().client();
        let response = client
            .tasks()
            .metrics(client.request(MetricsRequest {
                filters: vec![format!("id=={}", self.id())],
            }))
            .await
            .map_err(|s| Error::from_status(format!("stats of container {}", self.id()), s))?
            .into_inner();
        let metric = response.metrics.iter().find(|m| m.id == self.id().as_str());
        match metric {
            Some(metric) => self.sampled_stats(metric).await,
            // containerd skips the tasks it cannot sample and answers with an empty list: say why.
            None => Err(self.stats_unavailable().await),
        }
    }

    /// Decode `metric`, unless the task has stopped: an exited task's cgroup can outlive it, empty.
    async fn sampled_stats(&self, metric: &Metric) -> Result<Stats> {
        let stats = Stats::from_metric(metric)?;
        if stats.pids.current == 0 {
            let status = self.status().await?;
            if !matches!(
                status,
                TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing
            ) {
                return Err(self.stats_not_running(status));
            }
        }
        Ok(stats)
    }

    async fn stats_unavailable(&self) -> Error {
        match self.status().await {
            Ok(status) => self.stats_not_running(status),
            Err(e) if e.kind() == ErrorKind::NotFound => Error::not_found(format!(
                "cannot get stats of container {}: it has no task (is it started?)",
                self.id()
            )),
            Err(e) => e,
        }
    }

    fn stats_not_running(&self, status: TaskStatus) -> Error {
        Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "cannot get stats of container {}: it is {status}, not running",
                self.id()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn metric(type_url: &str, value: Vec<u8>) -> Metric {
        Metric {
            timestamp: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            id: "c1".into(),
            data: Some(prost_types::Any {
                type_url: type_url.into(),
                value,
            }),
        }
    }

    fn sample_time() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_700_000_000, 5)
    }

    /// A v2 payload as a cgroup v2 host's shim would send it, built field by field.
    fn v2_payload() -> cgroup2::Metrics {
        cgroup2::Metrics {
            pids: Some(cgroup2::PidsStat {
                current: 3,
                limit: 10,
            }),
            cpu: Some(cgroup2::CpuStat {
                usage_usec: 1_500,
                user_usec: 1_000,
                system_usec: 500,
                nr_periods: 40,
                nr_throttled: 4,
                throttled_usec: 20,
            }),
            memory: Some(cgroup2::MemoryStat {
                anon: 10 << 20,
                file: 52 << 20,
                shmem: 50 << 20,
                inactive_file: 1 << 20,
                usage: 63 << 20,
                usage_limit: 128 << 20,
                swap_usage: 2 << 20,
                swap_limit: 64 << 20,
                max_usage: 70 << 20,
                ..Default::default()
            }),
            rdma: None,
            io: Some(cgroup2::IoStat {
                usage: vec![
                    cgroup2::IoEntry {
                        major: 8,
                        minor: 0,
                        rbytes: 4096,
                        wbytes: 8192,
                        rios: 1,
                        wios: 2,
                    },
                    cgroup2::IoEntry {
                        major: 253,
                        minor: 1,
                        rbytes: 100,
                        wbytes: 0,
                        rios: 1,
                        wios: 0,
                    },
                ],
            }),
            hugetlb: vec![cgroup2::HugeTlbStat {
                current: 2 << 20,
                max: u64::MAX,
                pagesize: "2MB".into(),
            }],
            memory_events: Some(cgroup2::MemoryEvents {
                oom: 2,
                oom_kill: 1,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn v2_metrics_decode_into_the_typed_view() {
        let raw = v2_payload();
        let stats = Stats::from_metric(&metric(cgroup2::TYPE_URL, raw.encode_to_vec())).unwrap();
        assert_eq!(stats.read, sample_time());
        assert_eq!(stats.cpu.total_ns, 1_500_000);
        assert_eq!(stats.cpu.user_ns, 1_000_000);
        assert_eq!(stats.cpu.system_ns, 500_000);
        assert!(stats.cpu.per_cpu_ns.is_empty());
        assert_eq!(
            stats.cpu.throttling,
            Some(Throttling {
                periods: 40,
                throttled_periods: 4,
                throttled_time_ns: 20_000
            })
        );
        let m = &stats.memory;
        assert_eq!(m.usage, 63 << 20);
        assert_eq!(m.limit, Some(128 << 20));
        assert_eq!(m.max_usage, Some(70 << 20));
        assert_eq!(m.cache, 52 << 20);
        assert_eq!(m.rss, 10 << 20);
        assert_eq!(m.working_set(), 62 << 20);
        assert_eq!(m.swap_usage, Some(2 << 20));
        assert_eq!(m.memory_swap_limit, Some(192 << 20));
        assert_eq!(m.oom_events, Some(2));
        assert_eq!(m.oom_kills, Some(1));
        assert_eq!(m.failcnt, None);
        assert_eq!(
            stats.pids,
            PidsStats {
                current: 3,
                limit: Some(10)
            }
        );
        assert_eq!(stats.block_io.devices.len(), 2);
        assert_eq!(stats.block_io.read_bytes(), 4196);
        assert_eq!(stats.block_io.write_bytes(), 8192);
        assert_eq!(stats.block_io.devices[0].write_ops, 2);
        assert_eq!(stats.hugetlb[0].page_size, "2MB");
        assert_eq!(stats.hugetlb[0].usage, 2 << 20);
        assert_eq!(stats.hugetlb[0].limit, None);
        assert_eq!(stats.raw, Raw::V2(Box::new(raw)));
    }

    /// Protobuf wire bytes written field by field with the numbers of containerd/cgroups'
    /// `cgroup2/stats/metrics.proto`, independent of the struct declarations they check.
    mod wire {
        use prost::encoding::{encode_key, encode_varint, WireType};

        pub fn uint(tag: u32, value: u64) -> Vec<u8> {
            let mut buf = Vec::new();
            encode_key(tag, WireType::Varint, &mut buf);
            encode_varint(value, &mut buf);
            buf
        }

        pub fn bytes(tag: u32, value: &[u8]) -> Vec<u8> {
            let mut buf = Vec::new();
            encode_key(tag, WireType::LengthDelimited, &mut buf);
            encode_varint(value.len() as u64, &mut buf);
            buf.extend_from_slice(value);
            buf
        }

        pub fn message(tag: u32, fields: &[Vec<u8>]) -> Vec<u8> {
            bytes(tag, &fields.concat())
        }
    }

    #[test]
    fn v2_field_numbers_match_containerds_proto() {
        use wire::{bytes, message, uint};
        let payload = [
            message(1, &[uint(1, 4), uint(2, 64)]),
            message(
                2,
                &[uint(1, 7), uint(2, 5), uint(3, 2), uint(5, 3), uint(6, 9)],
            ),
            message(
                4,
                &[
                    uint(1, 11),
                    uint(2, 22),
                    uint(13, 1),
                    uint(32, 50 << 20),
                    uint(33, 100 << 20),
                    uint(34, 3),
                    uint(35, 1 << 20),
                ],
            ),
            message(
                6,
                &[message(
                    1,
                    &[uint(1, 8), uint(2, 16), uint(3, 300), uint(4, 400)],
                )],
            ),
            message(7, &[uint(1, 2 << 20), uint(2, 4 << 20), bytes(3, b"2MB")]),
            message(8, &[uint(4, 6), uint(5, 5)]),
        ]
        .concat();
        let stats = Stats::from_metric(&metric(cgroup2::TYPE_URL, payload)).unwrap();
        assert_eq!(
            stats.pids,
            PidsStats {
                current: 4,
                limit: Some(64)
            }
        );
        assert_eq!(stats.cpu.total_ns, 7_000);
        assert_eq!(stats.cpu.user_ns, 5_000);
        assert_eq!(stats.cpu.system_ns, 2_000);
        let throttling = stats.cpu.throttling.clone().unwrap();
        assert_eq!(
            (throttling.throttled_periods, throttling.throttled_time_ns),
            (3, 9_000)
        );
        assert_eq!(stats.memory.rss, 11);
        assert_eq!(stats.memory.cache, 22);
        assert_eq!(stats.memory.inactive_file, 1);
        assert_eq!(stats.memory.usage, 50 << 20);
        assert_eq!(stats.memory.limit, Some(100 << 20));
        assert_eq!(stats.memory.swap_usage, Some(3));
        assert_eq!(stats.memory.memory_swap_limit, Some(101 << 20));
        assert_eq!(stats.memory.oom_events, Some(6));
        assert_eq!(stats.memory.oom_kills, Some(5));
        let device = &stats.block_io.devices[0];
        assert_eq!((device.major, device.minor), (8, 16));
        assert_eq!((device.read_bytes, device.write_bytes), (300, 400));
        assert_eq!(stats.hugetlb[0].page_size, "2MB");
        assert_eq!(stats.hugetlb[0].usage, 2 << 20);
        assert_eq!(stats.hugetlb[0].limit, Some(4 << 20));
    }

    #[test]
    fn v2_max_limits_are_none() {
        let mut raw = v2_payload();
        if let Some(m) = raw.memory.as_mut() {
            m.usage_limit = u64::MAX;
            m.swap_limit = u64::MAX;
            m.max_usage = 0;
        }
        raw.pids = Some(cgroup2::PidsStat {
            current: 1,
            limit: 0,
        });
        let stats = Stats::from_metric(&metric(cgroup2::TYPE_URL, raw.encode_to_vec())).unwrap();
        assert_eq!(stats.memory.limit, None);
        assert_eq!(stats.memory.memory_swap_limit, None);
        assert_eq!(stats.memory.max_usage, None);
        assert_eq!(stats.pids.limit, None);
    }

    #[test]
    fn v1_metrics_decode_into_the_typed_view() {
        let entry = |limit, usage, max, failcnt| cgroup1::MemoryEntry {
            limit,
            usage,
            max,
            failcnt,
        };
        let raw = cgroup1::Metrics {
            pids: Some(cgroup1::PidsStat {
                current: 2,
                limit: 0,
            }),
            cpu: Some(cgroup1::CpuStat {
                usage: Some(cgroup1::CpuUsage {
                    total: 900,
                    kernel: 300,
                    user: 600,
                    per_cpu: vec![400, 500],
                }),
                throttling: Some(cgroup1::Throttle {
                    periods: 7,
                    throttled_periods: 1,
                    throttled_time: 99,
                }),
            }),
            memory: Some(cgroup1::MemoryStat {
                total_cache: 50 << 20,
                total_rss: 1 << 20,
                total_inactive_file: 0,
                usage: Some(entry(0x7FFF_FFFF_FFFF_F000, 52 << 20, 53 << 20, 0)),
                swap: Some(entry(100 << 20, 54 << 20, 54 << 20, 0)),
                ..Default::default()
            }),
            blkio: Some(cgroup1::BlkIoStat {
                io_service_bytes_recursive: ["Read", "Write", "Sync", "Total"]
                    .iter()
                    .map(|op| cgroup1::BlkIoEntry {
                        op: op.to_string(),
                        major: 8,
                        minor: 0,
                        value: 10,
                        ..Default::default()
                    })
                    .collect(),
                io_serviced_recursive: vec![cgroup1::BlkIoEntry {
                    op: "Write".into(),
                    major: 8,
                    minor: 0,
                    value: 3,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            memory_oom_control: Some(cgroup1::MemoryOomControl {
                oom_kill_disable: 0,
                under_oom: 0,
                oom_kill: 4,
            }),
            hugetlb: vec![cgroup1::HugetlbStat {
                usage: 0,
                max: 2 << 20,
                failcnt: 1,
                pagesize: "2MB".into(),
            }],
            ..Default::default()
        };
        let stats = Stats::from_metric(&metric(cgroup1::TYPE_URL, raw.encode_to_vec())).unwrap();
        assert_eq!(stats.cpu.total_ns, 900);
        assert_eq!(stats.cpu.system_ns, 300);
        assert_eq!(stats.cpu.per_cpu_ns, vec![400, 500]);
        assert_eq!(stats.cpu.throttling.as_ref().unwrap().throttled_time_ns, 99);
        assert_eq!(stats.memory.usage, 52 << 20);
        assert_eq!(stats.memory.limit, None, "v1's unlimited is no limit");
        assert_eq!(stats.memory.swap_usage, Some(2 << 20));
        assert_eq!(stats.memory.memory_swap_limit, Some(100 << 20));
        assert_eq!(stats.memory.oom_kills, Some(4));
        assert_eq!(stats.pids.limit, None);
        assert_eq!(stats.block_io.devices.len(), 1);
        assert_eq!(stats.block_io.read_bytes(), 10);
        assert_eq!(stats.block_io.write_bytes(), 10);
        assert_eq!(stats.block_io.devices[0].write_ops, 3);
        assert_eq!(stats.hugetlb[0].max_usage, Some(2 << 20));
        assert_eq!(stats.hugetlb[0].failcnt, Some(1));
        assert!(matches!(stats.raw, Raw::V1(_)));
    }

    #[test]
    fn prefixed_type_urls_decode_and_unknown_ones_are_errors() {
        let raw = v2_payload().encode_to_vec();
        let prefixed = format!("type.googleapis.com/{}", cgroup2::TYPE_URL);
        assert!(Stats::from_metric(&metric(&prefixed, raw.clone())).is_ok());

        let err = Stats::from_metric(&metric("io.containerd.windows.Stats", raw)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.to_string().starts_with("unexpected type of metrics"),
            "{err}"
        );

        let err = Stats::from_metric(&metric(cgroup1::TYPE_URL, vec![0xff, 0xff])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");

        let mut empty = metric(cgroup1::TYPE_URL, vec![]);
        empty.data = None;
        assert!(Stats::from_metric(&empty).is_err());
    }

    #[test]
    fn stats_serialise_without_the_raw_message() {
        let stats =
            Stats::from_metric(&metric(cgroup2::TYPE_URL, v2_payload().encode_to_vec())).unwrap();
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["read"], "2023-11-14T22:13:20.000000005Z");
        assert_eq!(json["memory"]["limit"], 128 << 20);
        assert!(json.get("raw").is_none());
    }

    /// The messages v1 and v2 share one declaration (`stats/common.rs`); each version must still put
    /// them under its own `Metrics` field numbers, and their own fields keep containerd's numbers.
    #[test]
    fn shared_messages_encode_with_containerds_numbers_in_both_versions() {
        use wire::{bytes, message, uint};
        let entry = |device: &str, handles: u32, objects: u32| cgroup1::RdmaEntry {
            device: device.into(),
            hca_handles: handles,
            hca_objects: objects,
        };
        let pids = cgroup1::PidsStat {
            current: 7,
            limit: u64::MAX,
        };
        let rdma = cgroup1::RdmaStat {
            current: vec![entry("mlx0", 1, 2)],
            limit: vec![entry("mlx0", 3, u32::MAX)],
        };
        let pids_fields = [uint(1, 7), uint(2, u64::MAX)];
        let rdma_fields = [
            message(1, &[bytes(1, b"mlx0"), uint(2, 1), uint(3, 2)]),
            message(
                2,
                &[bytes(1, b"mlx0"), uint(2, 3), uint(3, u64::from(u32::MAX))],
            ),
        ];
        let v1 = cgroup1::Metrics {
            pids: Some(pids.clone()),
            rdma: Some(rdma.clone()),
            ..Default::default()
        };
        assert_eq!(
            v1.encode_to_vec(),
            [message(2, &pids_fields), message(6, &rdma_fields)].concat()
        );
        let v2 = cgroup2::Metrics {
            pids: Some(pids),
            rdma: Some(rdma),
            ..Default::default()
        };
        assert_eq!(
            v2.encode_to_vec(),
            [message(1, &pids_fields), message(5, &rdma_fields)].concat()
        );
    }
}
