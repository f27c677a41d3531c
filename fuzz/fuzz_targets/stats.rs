//! Metrics decoding (`raw::stats_from_any`) on hostile payloads.
//!
//! Half the inputs are random bytes under one of the two metrics type URLs (or another one); the
//! other half are well-formed cgroup v1 / v2 metrics with random values (counters near `u64::MAX`
//! included, devices repeated), as a buggy or hostile shim could send. Checked, besides "no panic":
//! - only the two cgroup metrics types decode; every error explains itself on one line;
//! - the decoded message is kept unchanged in `raw`;
//! - no limit reads as 0 or as one of the kernel's "unlimited" values (the memory+swap sum: not 0);
//! - the derived numbers (totals, working set) are computed without overflow and serialise to JSON.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libcontainerd::raw::{cgroup1, cgroup2, Metrics as Raw};
use libcontainerd::Stats;
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use prost_types::Any;

/// Counters a shim might report: small, large, or at the edges.

/// Up to `max` random bytes as text.
fn text(u: &mut Unstructured<'_>, max: usize) -> ArbResult<String> {
    let len = u.int_in_range(0..=max)?;
    Ok(String::from_utf8_lossy(u.bytes(len)?).into_owned())
}

fn counter(u: &mut Unstructured<'_>) -> ArbResult<u64> {
    Ok(match u.int_in_range(0..=5)? {
        0 => 0,
        1 => u.int_in_range(1..=1 << 20)?,
        2 => u64::MAX,
        3 => 0x7FFF_FFFF_FFFF_F000, // cgroup v1's "unlimited"
        4 => u64::MAX - u.int_in_range(0..=1 << 20)?,
        _ => u.arbitrary()?,
    })
}

fn op(u: &mut Unstructured<'_>) -> ArbResult<String> {
    Ok(match u.int_in_range(0..=6)? {
        0 => "Read".into(),
        1 => "Write".into(),
        2 => "read".into(),
        3 => "WRITE".into(),
        4 => "Sync".into(),
        5 => "Total".into(),
        _ => text(u, 8)?,
    })
}

fn blkio_entries(u: &mut Unstructured<'_>) -> ArbResult<Vec<cgroup1::BlkIoEntry>> {
    let mut entries = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        entries.push(cgroup1::BlkIoEntry {
            op: op(u)?,
            device: String::new(),
            // Few devices, so that entries of one device add up.
            major: u.int_in_range(7..=8)?,
            minor: u.int_in_range(0..=1)?,
            value: counter(u)?,
        });
    }
    Ok(entries)
}

fn memory_entry(u: &mut Unstructured<'_>) -> ArbResult<Option<cgroup1::MemoryEntry>> {
    if !u.arbitrary()? {
        return Ok(None);
    }
    Ok(Some(cgroup1::MemoryEntry {
        limit: counter(u)?,
        usage: counter(u)?,
        max: counter(u)?,
        failcnt: counter(u)?,
    }))
}

fn v1(u: &mut Unstructured<'_>) -> ArbResult<cgroup1::Metrics> {
    let mut m = cgroup1::Metrics::default();
    if u.arbitrary()? {
        m.pids = Some(cgroup1::PidsStat {
            current: counter(u)?,
            limit: counter(u)?,
        });
    }
    if u.arbitrary()? {
        let mut per_cpu = Vec::new();
        for _ in 0..u.int_in_range(0..=4)? {
            per_cpu.push(counter(u)?);
        }
        m.cpu = Some(cgroup1::CpuStat {
            usage: Some(cgroup1::CpuUsage {
                total: counter(u)?,
                kernel: counter(u)?,
                user: counter(u)?,
                per_cpu,
            }),
            throttling: if u.arbitrary()? {
                Some(cgroup1::Throttle {
                    periods: counter(u)?,
                    throttled_periods: counter(u)?,
                    throttled_time: counter(u)?,
                })
            } else {
                None
            },
        });
    }
    if u.arbitrary()? {
        m.memory = Some(cgroup1::MemoryStat {
            total_cache: counter(u)?,
            total_rss: counter(u)?,
            total_inactive_file: counter(u)?,
            usage: memory_entry(u)?,
            swap: memory_entry(u)?,
            ..Default::default()
        });
    }
    if u.arbitrary()? {
        m.blkio = Some(cgroup1::BlkIoStat {
            io_service_bytes_recursive: blkio_entries(u)?,
            io_serviced_recursive: blkio_entries(u)?,
            ..Default::default()
        });
    }
    if u.arbitrary()? {
        m.memory_oom_control = Some(cgroup1::MemoryOomControl {
            oom_kill_disable: counter(u)?,
            under_oom: counter(u)?,
            oom_kill: counter(u)?,
        });
    }
    for _ in 0..u.int_in_range(0..=2)? {
        m.hugetlb.push(cgroup1::HugetlbStat {
            usage: counter(u)?,
            max: counter(u)?,
            failcnt: counter(u)?,
            pagesize: text(u, 4)?,
        });
    }
    Ok(m)
}

fn v2(u: &mut Unstructured<'_>) -> ArbResult<cgroup2::Metrics> {
    let mut m = cgroup2::Metrics::default();
    if u.arbitrary()? {
        m.pids = Some(cgroup2::PidsStat {
            current: counter(u)?,
            limit: counter(u)?,
        });
    }
    if u.arbitrary()? {
        m.cpu = Some(cgroup2::CpuStat {
            usage_usec: counter(u)?,
            user_usec: counter(u)?,
            system_usec: counter(u)?,
            nr_periods: counter(u)?,
            nr_throttled: counter(u)?,
            throttled_usec: counter(u)?,
        });
    }
    if u.arbitrary()? {
        m.memory = Some(cgroup2::MemoryStat {
            anon: counter(u)?,
            file: counter(u)?,
            inactive_file: counter(u)?,
            usage: counter(u)?,
            usage_limit: counter(u)?,
            swap_usage: counter(u)?,
            swap_limit: counter(u)?,
            max_usage: counter(u)?,
            ..Default::default()
        });
    }
    if u.arbitrary()? {
        let mut usage = Vec::new();
        for _ in 0..u.int_in_range(0..=4)? {
            usage.push(cgroup2::IoEntry {
                major: u.int_in_range(7..=8)?,
                minor: u.int_in_range(0..=1)?,
                rbytes: counter(u)?,
                wbytes: counter(u)?,
                rios: counter(u)?,
                wios: counter(u)?,
            });
        }
        m.io = Some(cgroup2::IoStat { usage });
    }
    if u.arbitrary()? {
        m.memory_events = Some(cgroup2::MemoryEvents {
            oom: counter(u)?,
            oom_kill: counter(u)?,
            ..Default::default()
        });
    }
    for _ in 0..u.int_in_range(0..=2)? {
        m.hugetlb.push(cgroup2::HugeTlbStat {
            current: counter(u)?,
            max: counter(u)?,
            pagesize: "2MB".into(),
        });
    }
    Ok(m)
}

fn type_url(u: &mut Unstructured<'_>) -> ArbResult<String> {
    Ok(match u.int_in_range(0..=6)? {
        0 | 1 => cgroup1::TYPE_URL.to_string(),
        2 | 3 => cgroup2::TYPE_URL.to_string(),
        4 => format!("type.googleapis.com/{}", cgroup1::TYPE_URL),
        5 => format!("/{}", cgroup2::TYPE_URL),
        _ => text(u, 40)?,
    })
}

fn known(type_url: &str) -> bool {
    let name = type_url.rsplit('/').next().unwrap_or_default();
    name == cgroup1::TYPE_URL || name == cgroup2::TYPE_URL
}

/// What must hold of any decoded sample.
fn check(stats: &Stats) {
    let unlimited = |v: Option<u64>| v.is_some_and(|v| v == 0 || v >= 1 << 62);
    assert!(!unlimited(stats.memory.limit), "{:?}", stats.memory);
    // memory + swap (v2 adds the two limits): only never 0.
    assert_ne!(
        stats.memory.memory_swap_limit,
        Some(0),
        "{:?}",
        stats.memory
    );
    assert!(!unlimited(stats.pids.limit), "{:?}", stats.pids);
    for h in &stats.hugetlb {
        assert!(!unlimited(h.limit), "{h:?}");
    }
    assert!(stats.memory.working_set() <= stats.memory.usage);
    // Totals over devices: must not overflow (a panic here in a debug build is a crash of lcd stats).
    let _ = stats.block_io.read_bytes();
    let _ = stats.block_io.write_bytes();
    let json = serde_json::to_string(stats).expect("stats serialise");
    assert!(json.starts_with('{'));
    let _ = format!("{stats:?}");
}

fn run(data: &[u8]) -> ArbResult<()> {
    let mut u = Unstructured::new(data);
    let read = UNIX_EPOCH + Duration::from_secs(u.int_in_range(0..=4_000_000_000)?);
    match u.int_in_range(0..=2)? {
        0 => {
            let url = type_url(&mut u)?;
            let any = Any {
                type_url: url.clone(),
                value: {
                    let len = u.arbitrary_len::<u8>()?;
                    u.bytes(len)?.to_vec()
                },
            };
            match libcontainerd::raw::stats_from_any(read, &any) {
                Ok(stats) => {
                    assert!(known(&url), "{url:?} decoded as metrics");
                    assert_eq!(stats.read, read);
                    check(&stats);
                }
                Err(e) => {
                    let text = e.to_string();
                    assert!(!text.contains('\n'), "{text:?}");
                    if !known(&url) {
                        assert!(text.starts_with("unexpected type of metrics"), "{text}");
                    }
                }
            }
        }
        1 => {
            let m = v1(&mut u)?;
            let any = Any {
                type_url: cgroup1::TYPE_URL.to_string(),
                value: m.encode_to_vec(),
            };
            let stats =
                libcontainerd::raw::stats_from_any(read, &any).expect("well-formed v1 metrics");
            check(&stats);
            assert_eq!(stats.raw, Raw::V1(Box::new(m)));
        }
        _ => {
            let m = v2(&mut u)?;
            let any = Any {
                type_url: cgroup2::TYPE_URL.to_string(),
                value: m.encode_to_vec(),
            };
            let stats =
                libcontainerd::raw::stats_from_any(read, &any).expect("well-formed v2 metrics");
            check(&stats);
            assert_eq!(stats.raw, Raw::V2(Box::new(m)));
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
