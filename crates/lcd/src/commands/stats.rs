//! `lcd stats [--no-stream] [--format json] [ID...]`: live CPU, memory, block IO and pids of
//! containers, in `docker stats`' columns and units.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use libcontainerd::stats::Stats;
use libcontainerd::{Client, Id, Task, TaskStatus};

use crate::cli::StatsArgs;
use crate::context::Ctx;
use crate::names;
use crate::state;
use crate::template::Format;

/// How often `lcd stats` samples, and so the window its CPU % is measured over.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// `lcd stats [--no-stream] [--format json] [ID...]`: CPU, memory, block IO and pids, like
/// `docker stats`. CPU % needs two samples, so even `--no-stream` takes a second.
pub async fn stats(ctx: &Ctx, args: StatsArgs) -> Result<i32> {
    // Decide on the format before starting or contacting any containerd.
    let format = Format::parse(args.format.as_deref(), "table")?;
    let json = !matches!(format, Format::Default);
    let client = ctx.client().await?;
    // Named containers must exist and run now; without names, whatever runs at each refresh.
    let mut named = Vec::new();
    for id in &args.ids {
        named.push(state::running_task(&client, id).await?);
    }
    let host_memory = host_memory().unwrap_or(0);
    let live = !args.no_stream && !json && std::io::stdout().is_terminal();
    let mut previous: HashMap<String, Stats> = HashMap::new();
    let mut first = true;
    loop {
        let tasks = if args.ids.is_empty() {
            running_tasks(&client).await?
        } else {
            named.clone()
        };
        let mut rows = Vec::new();
        for task in &tasks {
            match task.stats().await {
                Ok(sample) => {
                    let id = task.id().to_string();
                    let name = names::name_of(&id, task.container().labels());
                    let row = StatsRow::new(&id, previous.get(&id), &sample, host_memory);
                    rows.push(row.named(name));
                    previous.insert(id, sample);
                }
                // A named container that stopped: say so once, as the table cannot show it.
                Err(e) if !args.ids.is_empty() && first => return Err(e.into()),
                Err(e) => tracing::debug!(container = %task.id(), error = %e, "no stats"),
            }
        }
        if !first {
            print_stats(&rows, &format, live)?;
            if args.no_stream {
                return Ok(0);
            }
        }
        first = false;
        tokio::time::sleep(STATS_INTERVAL).await;
    }
}

/// Tasks that are running or paused, in id order.
async fn running_tasks(client: &Client) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    let mut infos = client.list_tasks().await?;
    infos.sort_by(|a, b| a.container_id.cmp(&b.container_id));
    for info in infos {
        if !matches!(info.status, TaskStatus::Running | TaskStatus::Paused) {
            continue;
        }
        let id = Id::new(info.container_id.as_str())?;
        // A container removed between the two calls is simply not shown.
        if let Ok(container) = client.load_container(&id).await {
            if let Ok(task) = container.task().await {
                tasks.push(task);
            }
        }
    }
    Ok(tasks)
}

/// One line of `lcd stats`.
#[derive(Debug, Clone, PartialEq)]
struct StatsRow {
    id: String,
    /// The container's current name (see [`crate::names`]).
    name: String,
    /// `None` until there are two samples.
    cpu_percent: Option<f64>,
    memory_usage: u64,
    memory_limit: u64,
    block_read: u64,
    block_write: u64,
    pids: u64,
}

impl StatsRow {
    /// CPU % is the CPU time used between two samples over the time between them (100% = one CPU
    /// busy), both taken from the samples' own timestamps.
    fn new(id: &str, previous: Option<&Stats>, current: &Stats, host_memory: u64) -> StatsRow {
        let cpu_percent = previous.and_then(|p| {
            let wall = current.read.duration_since(p.read).ok()?.as_nanos() as f64;
            let used = current.cpu.total_ns.checked_sub(p.cpu.total_ns)? as f64;
            (wall > 0.0).then(|| used / wall * 100.0)
        });
        StatsRow {
            id: id.to_string(),
            name: id.to_string(),
            cpu_percent,
            // docker shows usage without inactive page cache, and the host's memory when unlimited.
            memory_usage: current.memory.working_set(),
            memory_limit: current.memory.limit.unwrap_or(host_memory),
            block_read: current.block_io.read_bytes(),
            block_write: current.block_io.write_bytes(),
            pids: current.pids.current,
        }
    }

    /// The row of a container whose name is not its id.
    fn named(self, name: String) -> StatsRow {
        StatsRow { name, ..self }
    }

    fn memory_percent(&self) -> f64 {
        if self.memory_limit == 0 {
            0.0
        } else {
            self.memory_usage as f64 / self.memory_limit as f64 * 100.0
        }
    }

    fn cpu_text(&self) -> String {
        self.cpu_percent
            .map(|p| format!("{p:.2}%"))
            .unwrap_or_else(|| "--".to_string())
    }

    fn memory_text(&self) -> String {
        format!(
            "{} / {}",
            binary_size(self.memory_usage),
            binary_size(self.memory_limit)
        )
    }

    fn block_text(&self) -> String {
        format!(
            "{} / {}",
            decimal_size(self.block_read),
            decimal_size(self.block_write)
        )
    }

    /// The fields of `docker stats --format json`.
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "Container": self.id,
            "ID": self.id,
            "Name": self.name,
            // lcd's containers share the host's network unless a network is set up for them.
            "NetIO": "--",
            "CPUPerc": self.cpu_text(),
            "MemUsage": self.memory_text(),
            "MemPerc": format!("{:.2}%", self.memory_percent()),
            "BlockIO": self.block_text(),
            "PIDs": self.pids.to_string(),
        })
    }
}

fn format_stats_table(rows: &[StatsRow]) -> String {
    let mut out = format!(
        "{:<18} {:<8} {:<22} {:<8} {:<20} {}\n",
        "CONTAINER ID", "CPU %", "MEM USAGE / LIMIT", "MEM %", "BLOCK I/O", "PIDS"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<18} {:<8} {:<22} {:<8} {:<20} {}\n",
            r.id,
            r.cpu_text(),
            r.memory_text(),
            format!("{:.2}%", r.memory_percent()),
            r.block_text(),
            r.pids
        ));
    }
    out
}

/// Column titles of the `stats` fields in a `table` template, as docker's.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
];

fn print_stats(rows: &[StatsRow], format: &Format, live: bool) -> Result<()> {
    let mut out = String::new();
    let values: Vec<serde_json::Value> = rows.iter().map(StatsRow::json).collect();
    if let Some(text) = format.render(&values, HEADERS)? {
        out.push_str(&text);
    } else {
        if live {
            // Clear the screen and go home: the table redraws in place, like docker's.
            out.push_str("\x1b[2J\x1b[H");
        }
        out.push_str(&format_stats_table(rows));
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// The host's memory (from /proc/meminfo): the limit `stats` shows for containers without one, as
/// docker does, and `info`'s MemTotal.
pub(crate) fn host_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Up to 4 significant digits, trailing zeros dropped (Go's `%.4g`, as docker formats sizes).
fn significant(value: f64) -> String {
    let digits = if value >= 1.0 {
        value.log10().floor() as i32 + 1
    } else {
        1
    };
    let decimals = (4 - digits).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Memory sizes like docker: binary units (`50.02MiB`).
fn binary_size(bytes: u64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
}

/// Block IO like docker: decimal units (`52.4MB`).
fn decimal_size(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"])
}

fn scaled(bytes: u64, base: f64, units: &[&str]) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit + 1 < units.len() {
        value /= base;
        unit += 1;
    }
    format!("{}{}", significant(value), units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainerd::stats::{
        BlockIoDevice, BlockIoStats, CpuStats, MemoryStats, PidsStats, Raw,
    };
    use std::time::SystemTime;

    /// A sample as `Task::stats` would return it (lcd does not depend on prost to encode one).
    fn sample(at_ms: u64, cpu_ns: u64, usage: u64, limit: Option<u64>) -> Stats {
        Stats {
            read: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + at_ms),
            cpu: CpuStats {
                total_ns: cpu_ns,
                ..Default::default()
            },
            memory: MemoryStats {
                usage,
                limit,
                inactive_file: 1 << 20,
                ..Default::default()
            },
            pids: PidsStats {
                current: 3,
                limit: None,
            },
            block_io: BlockIoStats {
                devices: vec![BlockIoDevice {
                    read_bytes: 52_400_000,
                    write_bytes: 4_100,
                    ..Default::default()
                }],
            },
            hugetlb: vec![],
            raw: Raw::V2(Box::default()),
        }
    }

    #[test]
    fn cpu_percent_needs_two_samples() {
        let first = sample(0, 0, 51 << 20, None);
        let second = sample(1000, 500_000_000, 51 << 20, None);
        let row = StatsRow::new("c1", None, &first, 8 << 30);
        assert_eq!(row.cpu_percent, None);
        assert_eq!(row.cpu_text(), "--");
        let row = StatsRow::new("c1", Some(&first), &second, 8 << 30);
        assert!((row.cpu_percent.unwrap() - 50.0).abs() < 0.01, "{row:?}");
        assert_eq!(row.memory_usage, 50 << 20);
        assert_eq!(
            row.memory_limit,
            8 << 30,
            "unlimited shows the host's memory"
        );
        assert_eq!(row.memory_text(), "50MiB / 8GiB");
        assert_eq!(row.block_text(), "52.4MB / 4.1kB");
        let json = row.json();
        assert_eq!(json["CPUPerc"], "50.00%");
        assert_eq!(json["PIDs"], "3");
        let table = format_stats_table(&[row]);
        assert!(table.starts_with("CONTAINER ID"), "{table}");
        assert!(table.contains("c1 "), "{table}");
    }

    #[test]
    fn memory_percent_uses_the_limit() {
        let s = sample(0, 0, (64 << 20) + (1 << 20), Some(128 << 20));
        let row = StatsRow::new("c", None, &s, 8 << 30);
        assert_eq!(row.memory_limit, 128 << 20);
        assert!((row.memory_percent() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1023), "1023B");
        assert_eq!(binary_size(52_449_280), "50.02MiB");
        assert_eq!(binary_size(1 << 30), "1GiB");
        assert_eq!(binary_size(25_288_767_488), "23.55GiB");
        assert_eq!(decimal_size(0), "0B");
        assert_eq!(decimal_size(4_096), "4.096kB");
        assert_eq!(decimal_size(52_428_800), "52.43MB");
    }
}
