//! Commands that control running containers: pause, unpause, stats, top, update, checkpoint create.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context as _, Result};
use libcontainerd::oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use libcontainerd::stats::Stats;
use libcontainerd::{Client, Id, ProcessSummary, Task, TaskStatus};

use crate::context::Ctx;

/// How often `lcd stats` samples, and so the window its CPU % is measured over.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// How long `checkpoint create` waits for the checkpointed container to stop.
const CHECKPOINT_EXIT_WAIT: Duration = Duration::from_secs(10);

/// The CFS period docker uses for `--cpus`, in microseconds.
const CPU_PERIOD: u64 = 100_000;

/// Options of `lcd stats`.
#[derive(Debug, Clone, Default)]
pub struct StatsArgs {
    /// Print one sample and exit.
    pub no_stream: bool,
    /// One JSON object per container and sample instead of a table.
    pub json: bool,
    /// Containers to show; all running ones when empty.
    pub ids: Vec<String>,
}

/// Options of `lcd update`; sizes as docker takes them (`512m`, `1g`), `--memory-swap -1` for
/// unlimited swap.
#[derive(Debug, Clone, Default)]
pub struct UpdateArgs {
    /// `--memory`.
    pub memory: Option<String>,
    /// `--memory-swap`: memory plus swap.
    pub memory_swap: Option<String>,
    /// `--cpus`, e.g. `1.5`.
    pub cpus: Option<String>,
    /// `--cpu-shares` (relative weight).
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`, e.g. `0-2,4`.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`; 0 or less means unlimited.
    pub pids_limit: Option<i64>,
    /// Containers to update.
    pub ids: Vec<String>,
}

/// The task of container `id` if it is running (or paused), or docker's "is not running" error.
async fn running_task(client: &Client, id: &str) -> Result<Task> {
    let (container, task) = crate::state::load_with_task(client, id).await?;
    crate::state::running(container.id(), task)
}

/// `lcd pause ID...`: freeze every process of each container.
pub async fn pause(ctx: &Ctx, ids: Vec<String>) -> Result<i32> {
    let client = ctx.client().await?;
    crate::manage::for_each_id(&ids, |id| {
        let client = client.clone();
        async move {
            running_task(&client, &id).await?.pause().await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// `lcd unpause ID...`: thaw paused containers.
pub async fn unpause(ctx: &Ctx, ids: Vec<String>) -> Result<i32> {
    let client = ctx.client().await?;
    crate::manage::for_each_id(&ids, |id| {
        let client = client.clone();
        async move {
            running_task(&client, &id).await?.resume().await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// `lcd stats [--no-stream] [--format json] [ID...]`: CPU, memory, block IO and pids, like
/// `docker stats`. CPU % needs two samples, so even `--no-stream` takes a second.
pub async fn stats(ctx: &Ctx, args: StatsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    // Named containers must exist and run now; without names, whatever runs at each refresh.
    let mut named = Vec::new();
    for id in &args.ids {
        named.push(running_task(&client, id).await?);
    }
    let host_memory = host_memory().unwrap_or(0);
    let live = !args.no_stream && !args.json && std::io::stdout().is_terminal();
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
                    rows.push(StatsRow::new(&id, previous.get(&id), &sample, host_memory));
                    previous.insert(id, sample);
                }
                // A named container that stopped: say so once, as the table cannot show it.
                Err(e) if !args.ids.is_empty() && first => return Err(e.into()),
                Err(e) => tracing::debug!(container = %task.id(), error = %e, "no stats"),
            }
        }
        if !first {
            print_stats(&rows, args.json, live)?;
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
            cpu_percent,
            // docker shows usage without inactive page cache, and the host's memory when unlimited.
            memory_usage: current.memory.working_set(),
            memory_limit: current.memory.limit.unwrap_or(host_memory),
            block_read: current.block_io.read_bytes(),
            block_write: current.block_io.write_bytes(),
            pids: current.pids.current,
        }
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
            "ID": self.id,
            "Name": self.id,
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

fn print_stats(rows: &[StatsRow], json: bool, live: bool) -> Result<()> {
    let mut out = String::new();
    if json {
        for r in rows {
            out.push_str(&format!("{}\n", r.json()));
        }
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

/// The host's memory, shown as the limit of containers without one (as docker does).
fn host_memory() -> Option<u64> {
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

/// `lcd top ID`: the container's processes, like `docker top` (ps -ef columns).
pub async fn top(ctx: &Ctx, id: String) -> Result<i32> {
    let client = ctx.client().await?;
    let task = running_task(&client, &id).await?;
    let processes = task.summary().await?;
    print!("{}", format_top(&processes, SystemTime::now()));
    Ok(0)
}

fn format_top(processes: &[ProcessSummary], now: SystemTime) -> String {
    let mut out = format!(
        "{:<10} {:<8} {:<8} {:<3} {:<6} {:<8} {:<9} {}\n",
        "UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"
    );
    for p in processes {
        out.push_str(&format!(
            "{:<10} {:<8} {:<8} {:<3} {:<6} {:<8} {:<9} {}\n",
            user_name(p.uid),
            p.pid,
            p.ppid,
            cpu_utilisation(p, now),
            start_time(p.started, now),
            tty_name(p.tty),
            cpu_time(p.cpu_time),
            p.command
        ));
    }
    out
}

/// The host's name for `uid` (what ps shows), else the number.
fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// ps's C: CPU time over lifetime, in percent.
fn cpu_utilisation(p: &ProcessSummary, now: SystemTime) -> u64 {
    let alive = now
        .duration_since(p.started)
        .unwrap_or_default()
        .as_secs_f64();
    if alive <= 0.0 {
        0
    } else {
        (p.cpu_time.as_secs_f64() / alive * 100.0) as u64
    }
}

/// ps's STIME: the local time of day for processes started today, else the date.
fn start_time(started: SystemTime, now: SystemTime) -> String {
    let (Some(start), Some(today)) = (local_time(started), local_time(now)) else {
        return "?".to_string();
    };
    if (start.tm_year, start.tm_yday) == (today.tm_year, today.tm_yday) {
        format!("{:02}:{:02}", start.tm_hour, start.tm_min)
    } else {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = usize::try_from(start.tm_mon).unwrap_or(0).min(11);
        format!("{}{:02}", MONTHS[month], start.tm_mday)
    }
}

fn local_time(t: SystemTime) -> Option<libc::tm> {
    let secs =
        libc::time_t::try_from(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers point to live values owned by this frame; localtime_r is thread-safe.
    let result = unsafe { libc::localtime_r(&secs, &mut tm) };
    (!result.is_null()).then_some(tm)
}

/// `pts/N` for a pseudo-terminal, `?` for none (major/minor decoded as the kernel packs tty_nr).
fn tty_name(tty: u32) -> String {
    if tty == 0 {
        return "?".to_string();
    }
    let major = (tty >> 8) & 0xfff;
    let minor = (tty & 0xff) | ((tty >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        _ => format!("{major}:{minor}"),
    }
}

/// ps's TIME: `HH:MM:SS` of CPU time.
fn cpu_time(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `lcd update [OPTIONS] ID...`: change the limits of running containers.
pub async fn update(ctx: &Ctx, args: UpdateArgs) -> Result<i32> {
    // Validate every flag before touching any container.
    let resources = update_resources(&args)?;
    let client = ctx.client().await?;
    crate::manage::for_each_id(&args.ids, |id| {
        let client = client.clone();
        let resources = resources.clone();
        async move {
            let task = running_task(&client, &id).await?;
            task.update_resources(&resources).await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// The OCI resources `lcd update`'s flags ask for.
fn update_resources(args: &UpdateArgs) -> Result<LinuxResources> {
    let mut resources = LinuxResources::default();
    let mut any = false;

    let limit = args
        .memory
        .as_deref()
        .map(|m| size_flag("--memory", m))
        .transpose()?;
    let swap = args
        .memory_swap
        .as_deref()
        .map(|m| {
            if m == "-1" {
                Ok(-1)
            } else {
                size_flag("--memory-swap", m)
            }
        })
        .transpose()?;
    if let (Some(limit), Some(swap)) = (limit, swap) {
        if swap != -1 && swap < limit {
            bail!("--memory-swap must be at least --memory (it counts memory plus swap); use -1 for unlimited swap");
        }
    }
    if limit.is_some() || swap.is_some() {
        let mut memory = LinuxMemory::default();
        memory.set_limit(limit).set_swap(swap);
        resources.set_memory(Some(memory));
        any = true;
    }

    let mut cpu = LinuxCpu::default();
    let mut cpu_set = false;
    if let Some(cpus) = &args.cpus {
        let quota = cpu_quota(cpus)?;
        cpu.set_quota(Some(quota)).set_period(Some(CPU_PERIOD));
        cpu_set = true;
    }
    if let Some(shares) = args.cpu_shares {
        cpu.set_shares(Some(shares));
        cpu_set = true;
    }
    if let Some(list) = &args.cpuset_cpus {
        cpu.set_cpus(Some(list.clone()));
        cpu_set = true;
    }
    if cpu_set {
        resources.set_cpu(Some(cpu));
        any = true;
    }

    if let Some(n) = args.pids_limit {
        let mut pids = LinuxPids::default();
        // docker: 0 or a negative number means unlimited; runc's "unlimited" is -1.
        pids.set_limit(if n <= 0 { -1 } else { n });
        resources.set_pids(Some(pids));
        any = true;
    }
    if !any {
        bail!("give at least one of --memory, --memory-swap, --cpus, --cpu-shares, --cpuset-cpus, --pids-limit");
    }
    Ok(resources)
}

fn size_flag(flag: &str, value: &str) -> Result<i64> {
    libcontainerd::spec::parse_bytes(value).map_err(|e| anyhow!("{flag}: {e} (e.g. 512m or 1g)"))
}

/// `--cpus` as a CFS quota over docker's 100ms period; at least 0.01 and at most the host's CPUs.
fn cpu_quota(text: &str) -> Result<i64> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| anyhow!("--cpus: invalid number {text:?} (e.g. 1.5)"))?;
    let available = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    if !cpus.is_finite() || !(0.01..=available).contains(&cpus) {
        bail!("--cpus: {text} is out of range: give a number from 0.01 to {available:.2} (the host has {available} CPUs)");
    }
    Ok((cpus * CPU_PERIOD as f64).round() as i64)
}

/// `lcd checkpoint create [--leave-running] ID DIR`: CRIU-checkpoint a running container into DIR
/// (new or empty). Without `--leave-running` the container stops, ready for
/// `lcd start --checkpoint DIR ID`.
pub async fn checkpoint_create(
    ctx: &Ctx,
    leave_running: bool,
    id: String,
    dir: PathBuf,
) -> Result<i32> {
    // Refuse `..` as the user wrote it, before it is made absolute.
    libcontainerd::checkpoint::check_dir(&dir)?;
    let dir = std::path::absolute(&dir)
        .with_context(|| format!("resolve checkpoint directory {}", dir.display()))?;
    let client = ctx.client().await?;
    let task = running_task(&client, &id).await?;
    task.create_checkpoint(&dir, !leave_running).await?;
    if !leave_running {
        reap_checkpointed(&task).await?;
    }
    println!("{}", dir.display());
    Ok(0)
}

/// After a checkpoint with exit, record the container as exited so that `start` finds it stopped.
async fn reap_checkpointed(task: &Task) -> Result<()> {
    tokio::time::timeout(CHECKPOINT_EXIT_WAIT, task.wait())
        .await
        .map_err(|_| {
            anyhow!(
                "container {} did not stop after its checkpoint; stop it with `lcd stop {}`",
                task.id(),
                task.id()
            )
        })??;
    crate::state::reap(task.container(), task).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainerd::stats::{
        BlockIoDevice, BlockIoStats, CpuStats, MemoryStats, PidsStats, Raw,
    };

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

    #[test]
    fn update_flags_become_resources() {
        let args = UpdateArgs {
            memory: Some("100m".into()),
            memory_swap: Some("-1".into()),
            cpus: Some("0.5".into()),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(0),
            ids: vec!["c".into()],
        };
        let r = update_resources(&args).unwrap();
        let memory = r.memory().unwrap();
        assert_eq!(memory.limit(), Some(100 << 20));
        assert_eq!(memory.swap(), Some(-1));
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.cpus().as_deref(), Some("0"));
        assert_eq!(r.pids().unwrap().limit(), -1);
    }

    #[test]
    fn bad_update_flags_are_clear_errors() {
        let err = update_resources(&UpdateArgs {
            memory: Some("12q".into()),
            ..Default::default()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("--memory: invalid size \"12q\""), "{text}");
        assert!(!text.contains('\n'));

        for (memory, swap, cpus) in [
            (Some("64m"), Some("32m"), None),
            (None, Some("lots"), None),
            (None, None, Some("0")),
            (None, None, Some("abc")),
            (None, None, Some("100000")),
        ] {
            let args = UpdateArgs {
                memory: memory.map(Into::into),
                memory_swap: swap.map(Into::into),
                cpus: cpus.map(Into::into),
                ..Default::default()
            };
            assert!(update_resources(&args).is_err(), "{args:?}");
        }
        let err = update_resources(&UpdateArgs::default()).unwrap_err();
        assert!(err.to_string().contains("give at least one of"), "{err}");
    }

    #[test]
    fn top_columns_read_like_ps() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(34816), "pts/0");
        assert_eq!(tty_name(34817), "pts/1");
        assert_eq!(cpu_time(Duration::from_secs(3725)), "01:02:05");
        let now = SystemTime::now();
        let p = ProcessSummary {
            pid: 42,
            ppid: 1,
            exec_id: None,
            uid: 0,
            state: 'S',
            tty: 0,
            cpu_time: Duration::from_secs(5),
            started: now - Duration::from_secs(10),
            rss_bytes: 4096,
            command: "sleep 600".into(),
        };
        assert_eq!(cpu_utilisation(&p, now), 50);
        let table = format_top(std::slice::from_ref(&p), now);
        let line = table.lines().nth(1).unwrap();
        assert!(line.starts_with("root "), "{line}");
        assert!(line.ends_with(" sleep 600"), "{line}");
        assert!(line.contains(" 42 "), "{line}");
        let old = start_time(now - Duration::from_secs(400 * 86_400), now);
        assert_eq!(old.len(), 5, "{old}");
    }
}
