//! `lcd stress`: containerd-stress on our library. Workers loop a whole container lifecycle (or an
//! exec) for a set time and report rates, failures, per-phase latency percentiles, and what the
//! client itself spent (CPU time, file descriptors, memory). `lcd stress density` measures per-shim
//! memory.
//!
//! Memory is constant however long it runs: latencies go into fixed-size histograms
//! ([`Histogram`]), not a list of samples. To show whether the client grows, it snapshots its RSS
//! and fd count once the run is warm (see [`warmup`]) and again at the end, and reports both.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use libcontainerd::spec::SpecBuilder;
use libcontainerd::{Client, Container, Id, Output, Runtime, StdioConfig, Task};
use serde_json::json;

use crate::cli::{StressArgs, StressMode};
use crate::context::Ctx;

/// The phases of one container lifecycle, timed separately; together they cover the whole
/// lifecycle (all that is left out is building the spec and the id, microseconds):
/// `create` = `Client::new_container` (Containers.Create, bundle dir), `start` = `Container::start`
/// (FIFOs, Tasks.Create: shim and `runc create`, Tasks.Start), `wait` = `Task::wait` (until the
/// exit), `delete` = `Task::delete` (Tasks.Delete: `runc delete`, shim shutdown), `remove` =
/// `Container::delete` (Containers.Delete, bundle dir). The exec mode times `start` (exec and
/// start), `wait` and `delete` of the exec process only.
const PHASES: [&str; 5] = ["create", "start", "wait", "delete", "remove"];
const CREATE: usize = 0;
const START: usize = 1;
const WAIT: usize = 2;
const DELETE: usize = 3;
const REMOVE: usize = 4;

/// Sub-buckets per power of two: a bucket is at most 1/64 of its lower bound wide, so a bucket's
/// midpoint is within 1/128 (0.8%) of any value in it.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values at or above 2^30 us (~1074 s) all land in the last bucket.
const MAX_BITS: u32 = 30;
/// Buckets 0..2*SUB hold the values 0..2*SUB exactly (width 1); then SUB buckets per power of two
/// from 2^(SUB_BITS+1) up to 2^MAX_BITS.
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) << SUB_BITS;

/// A latency histogram in microseconds with log-linear buckets (HdrHistogram's layout, 64
/// sub-buckets per power of two): fixed size (1,600 counters) whatever the number of samples,
/// relative error of a reported percentile under 1%. Also keeps the exact count, sum (for the mean)
/// and maximum.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// The bucket of `us`.
    fn index(us: u64) -> usize {
        let v = us.min((1 << MAX_BITS) - 1);
        if v < 2 * SUB {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros(); // SUB_BITS + 1 ..= MAX_BITS - 1
        let shift = msb - SUB_BITS;
        (((shift + 1) as usize) << SUB_BITS) + ((v >> shift) - SUB) as usize
    }

    /// The lowest value of bucket `i` and its width.
    fn bounds(i: usize) -> (u64, u64) {
        if i < (2 * SUB) as usize {
            return (i as u64, 1);
        }
        let shift = (i >> SUB_BITS) as u32 - 1;
        let low = (SUB + (i as u64 & (SUB - 1))) << shift;
        (low, 1 << shift)
    }

    pub(crate) fn record(&mut self, us: u64) {
        self.counts[Self::index(us)] += 1;
        self.count += 1;
        self.sum += u128::from(us);
        self.max = self.max.max(us);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The `p`th percentile (nearest rank) in microseconds: the midpoint of the bucket holding
    /// that rank, never above the largest value seen; 0 when empty.
    pub(crate) fn percentile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.count as f64)
            .ceil()
            .clamp(1.0, self.count as f64) as u64;
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = Self::bounds(i);
                return (low + width / 2).min(self.max);
            }
        }
        self.max
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// `{"count", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms"}`.
    fn summary(&self) -> serde_json::Value {
        json!({
            "count": self.count,
            "p50_ms": ms(self.percentile(50.0)),
            "p95_ms": ms(self.percentile(95.0)),
            "p99_ms": ms(self.percentile(99.0)),
            "mean_ms": self.mean() / 1000.0,
            "max_ms": ms(self.max),
        })
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Per phase (index into [`PHASES`]).
    phases: Mutex<[Histogram; PHASES.len()]>,
    /// Whole successful operations (lifecycles or execs), end to end.
    ops: Mutex<Histogram>,
    first_error: Mutex<Option<String>>,
}

fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(u64::MAX)
}

impl Tally {
    fn record(&self, phase: usize, took: Duration) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        phases[phase].record(micros(took));
    }

    fn succeed(&self, took: Duration) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.record(micros(took));
    }

    fn fail(&self, e: &anyhow::Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| crate::exit::one_line(e));
    }
}

/// A snapshot of the client process's own use: CPU time (user + system), open fds, RSS.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: Duration,
    fds: usize,
    rss_kib: u64,
    /// Bytes the allocator counts as handed out: a leak grows it, while RSS also moves with
    /// fragmentation and pages the allocator keeps. glibc counts the chunks parked in per-thread
    /// caches as in use too, so it wobbles by some KiB with the threads tokio runs blocking calls on.
    heap_kib: u64,
}

fn usage() -> Usage {
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
fn memory_kib(field: &str) -> u64 {
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
pub(crate) fn warmup(duration: Duration) -> Duration {
    (duration / 10)
        .max(Duration::from_secs(2))
        .min(duration / 2)
}

/// A rootfs to run: the one given, or a busybox one made in a temp dir (removed afterwards).
fn rootfs(given: &Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = given {
        return Ok((
            std::fs::canonicalize(dir).with_context(|| format!("rootfs {}", dir.display()))?,
            None,
        ));
    }
    let tmp = tempfile::Builder::new().prefix("lcd-stress").tempdir()?;
    let dir = tmp.path().join("rootfs");
    libcontainerd::rootfs::busybox(&dir, Path::new(libcontainerd::rootfs::DEFAULT_BUSYBOX))?;
    Ok((dir, Some(tmp)))
}

/// `lcd stress [density]`.
pub async fn stress(ctx: &Ctx, args: StressArgs) -> Result<i32> {
    match &args.mode {
        Some(StressMode::Density {
            count,
            json,
            rootfs,
        }) => density(ctx, *count, *json, rootfs).await,
        None => lifecycles(ctx, &args).await,
    }
}

/// `lcd stress` without a mode: workers loop lifecycles (or execs) until the duration is up.
async fn lifecycles(ctx: &Ctx, args: &StressArgs) -> Result<i32> {
    if args.concurrency == 0 {
        bail!("-c must be at least 1");
    }
    let client = ctx.client().await?;
    let (rootfs, _keep) = rootfs(&args.rootfs)?;
    let tally = Arc::new(Tally::default());
    let run_id = std::process::id();
    let before = usage();
    let started = Instant::now();
    let deadline = started + args.duration;
    let warm_after = warmup(args.duration);
    let warm = tokio::spawn(async move {
        tokio::time::sleep_until((started + warm_after).into()).await;
        usage()
    });
    let exec_target = if args.exec {
        Some(exec_target(&client, ctx, &rootfs, run_id).await?)
    } else {
        None
    };
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| spawn_progress(tally.clone(), started));
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let client = client.clone();
        let tally = tally.clone();
        let rootfs = rootfs.clone();
        let target = exec_target.clone();
        let runtime = ctx.runtime();
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let name = format!("stress-{run_id}-{worker}-{n}");
                n += 1;
                let began = Instant::now();
                let result = match &target {
                    Some((_, task)) => one_exec(task, &name, &tally).await,
                    None => one_lifecycle(&client, &runtime, &rootfs, &name, &tally).await,
                };
                match result {
                    Ok(()) => tally.succeed(began.elapsed()),
                    Err(e) => tally.fail(&e),
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    if let Some((container, task)) = exec_target {
        let _ = task.force_delete().await;
        let _ = container.delete().await;
    }
    // The workers ran past the warm-up time (it is at most half the duration), so this is ready.
    let warm = warm.await?;
    let after = usage();
    report(
        args,
        &tally,
        elapsed,
        Snapshots {
            before,
            warm,
            warm_after,
            after,
        },
    );
    Ok(0)
}

fn spawn_progress(tally: Arc<Tally>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let ok = tally.ok.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64();
            let now = usage();
            eprint!(
                "\r{secs:6.1}s  {ok} done  {} failed  {:.1}/s  RSS {} KiB  heap {} KiB  {} fds   ",
                tally.failed.load(Ordering::Relaxed),
                ok as f64 / secs,
                now.rss_kib,
                now.heap_kib,
                now.fds
            );
        }
    })
}

async fn timed<T>(
    tally: &Tally,
    phase: usize,
    f: impl std::future::Future<Output = libcontainerd::Result<T>>,
) -> Result<T> {
    let start = Instant::now();
    let out = f.await.with_context(|| PHASES[phase])?;
    tally.record(phase, start.elapsed());
    Ok(out)
}

async fn one_lifecycle(
    client: &Client,
    runtime: &Runtime,
    rootfs: &Path,
    name: &str,
    tally: &Tally,
) -> Result<()> {
    let id = Id::new(name)?;
    let spec = SpecBuilder::new(rootfs).args(["/bin/true"]).build()?;
    let container = timed(
        tally,
        CREATE,
        client.new_container(&id, &spec, runtime, &Default::default()),
    )
    .await?;
    let result = run_task(&container, tally).await;
    if result.is_err() {
        // Count the failure, but leave nothing behind for the next iteration.
        if let Ok(task) = container.task().await {
            let _ = task.force_delete().await;
        }
    }
    // Always remove the container; its time counts only when the removal worked.
    let deleted = timed(tally, REMOVE, container.delete()).await;
    result?;
    deleted?;
    Ok(())
}

async fn run_task(container: &Container, tally: &Tally) -> Result<()> {
    let null = StdioConfig {
        output: Output::Null,
        ..Default::default()
    };
    let task = timed(tally, START, container.start(None, &null, |_| Ok(()))).await?;
    let status = timed(tally, WAIT, task.wait()).await?;
    timed(tally, DELETE, task.delete()).await?;
    if status.code != 0 {
        bail!("container {} exited with {}", container.id(), status.code);
    }
    Ok(())
}

async fn exec_target(
    client: &Client,
    ctx: &Ctx,
    rootfs: &Path,
    run_id: u32,
) -> Result<(Container, Task)> {
    let name = format!("stress-{run_id}-exec");
    let id = Id::new(name.as_str())?;
    let spec = SpecBuilder::new(rootfs)
        .args(["sleep", "2147483647"])
        .build()?;
    let container = client
        .new_container(&id, &spec, &ctx.runtime(), &Default::default())
        .await?;
    let null = StdioConfig {
        output: Output::Null,
        ..Default::default()
    };
    match container.start(None, &null, |_| Ok(())).await {
        Ok(task) => Ok((container, task)),
        Err(e) => {
            let _ = container.delete().await;
            Err(e.into())
        }
    }
}

async fn one_exec(task: &Task, name: &str, tally: &Tally) -> Result<()> {
    let id = Id::new(name)?;
    let process = libcontainerd::exec_process(task.container().spec(), ["/bin/true"]).build()?;
    let null = StdioConfig {
        output: Output::Null,
        ..Default::default()
    };
    let proc = timed(tally, START, task.exec(&id, process, &null, |_| Ok(()))).await?;
    let status = timed(tally, WAIT, proc.wait()).await?;
    timed(tally, DELETE, proc.delete()).await?;
    if status.code != 0 {
        bail!("exec {name} exited with {}", status.code);
    }
    Ok(())
}

/// The client's usage at the start, after the warm-up, and at the end.
struct Snapshots {
    before: Usage,
    warm: Usage,
    warm_after: Duration,
    after: Usage,
}

fn report(args: &StressArgs, tally: &Tally, elapsed: Duration, snaps: Snapshots) {
    let Snapshots {
        before,
        warm,
        warm_after,
        after,
    } = snaps;
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let rate = ok as f64 / elapsed.as_secs_f64();
    let cpu = after.cpu.saturating_sub(before.cpu);
    let cpu_per = if ok + failed > 0 {
        cpu.as_secs_f64() * 1000.0 / (ok + failed) as f64
    } else {
        0.0
    };
    let peak_kib = memory_kib("VmHWM:");
    let phases = tally
        .phases
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let ops = tally.ops.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let unit = if args.exec { "execs" } else { "containers" };
    let mut phase_json = serde_json::Map::new();
    for (name, hist) in PHASES.iter().zip(&phases) {
        // The exec mode has no create or remove phase.
        if hist.count() > 0 {
            phase_json.insert(name.to_string(), hist.summary());
        }
    }
    let first_error = tally
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let summary = json!({
        "mode": if args.exec { "exec" } else { "lifecycle" },
        "concurrency": args.concurrency,
        "duration_s": elapsed.as_secs_f64(),
        "ok": ok,
        "failures": failed,
        "per_second": rate,
        "phases": phase_json,
        "per_op": ops.summary(),
        "client_cpu_ms": cpu.as_secs_f64() * 1000.0,
        "client_cpu_ms_per_op": cpu_per,
        "warmup_s": warm_after.as_secs_f64(),
        "client_fds_before": before.fds,
        "client_fds_after_warmup": warm.fds,
        "client_fds_after": after.fds,
        "client_rss_kib_before": before.rss_kib,
        "client_rss_kib_after_warmup": warm.rss_kib,
        "client_rss_kib_end": after.rss_kib,
        "client_rss_kib": after.rss_kib,
        "client_peak_rss_kib": peak_kib,
        "client_heap_kib_before": before.heap_kib,
        "client_heap_kib_after_warmup": warm.heap_kib,
        "client_heap_kib_end": after.heap_kib,
        "first_error": first_error,
    });
    if args.json {
        println!("{summary}");
        return;
    }
    println!(
        "{ok} {unit} in {:.1}s at concurrency {}: {rate:.1}/s, {failed} failures",
        elapsed.as_secs_f64(),
        args.concurrency
    );
    println!(
        "{:<9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "PHASE", "COUNT", "P50 ms", "P95 ms", "P99 ms", "MEAN ms", "MAX ms"
    );
    let row = |name: &str, hist: &Histogram| {
        println!(
            "{:<9} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            hist.count(),
            ms(hist.percentile(50.0)),
            ms(hist.percentile(95.0)),
            ms(hist.percentile(99.0)),
            hist.mean() / 1000.0,
            ms(hist.max())
        );
    };
    for (name, hist) in PHASES.iter().zip(&phases) {
        if hist.count() > 0 {
            row(name, hist);
        }
    }
    row(if args.exec { "(exec)" } else { "(whole)" }, &ops);
    println!(
        "client: {:.1} ms CPU ({cpu_per:.3} ms per {}), fds {} at the start, {} after warm-up ({:.0}s in), {} at the end",
        cpu.as_secs_f64() * 1000.0,
        if args.exec { "exec" } else { "container" },
        before.fds,
        warm.fds,
        warm_after.as_secs_f64(),
        after.fds,
    );
    println!(
        "client RSS: {} KiB at the start, {} KiB after warm-up, {} KiB at the end (peak {peak_kib} KiB)",
        before.rss_kib, warm.rss_kib, after.rss_kib
    );
    println!(
        "client heap in use: {} KiB at the start, {} KiB after warm-up, {} KiB at the end",
        before.heap_kib, warm.heap_kib, after.heap_kib
    );
    if let Some(e) = first_error {
        println!("first failure: {e}");
    }
}

/// `lcd stress density --count N`: start N idle containers and report each shim's memory.
async fn density(
    ctx: &Ctx,
    count: usize,
    json_out: bool,
    rootfs_dir: &Option<PathBuf>,
) -> Result<i32> {
    let client = ctx.client().await?;
    let (rootfs, _keep) = rootfs(rootfs_dir)?;
    let run_id = std::process::id();
    let mut started: Vec<(Container, Task)> = Vec::new();
    let mut result: Result<()> = Ok(());
    for i in 0..count {
        let name = format!("density-{run_id}-{i}");
        let id = Id::new(name.as_str())?;
        let spec = SpecBuilder::new(&rootfs)
            .args(["sleep", "2147483647"])
            .build()?;
        let container = match client
            .new_container(&id, &spec, &ctx.runtime(), &Default::default())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                result = Err(e.into());
                break;
            }
        };
        let null = StdioConfig {
            output: Output::Null,
            ..Default::default()
        };
        match container.start(None, &null, |_| Ok(())).await {
            Ok(task) => started.push((container, task)),
            Err(e) => {
                let _ = container.delete().await;
                result = Err(e.into());
                break;
            }
        }
    }
    let mut rss = Vec::new();
    let mut pss = Vec::new();
    for (_, task) in &started {
        // The shim is the parent of the container's init (it is its subreaper).
        if let Some(shim) = parent_pid(task.pid()) {
            let (r, p) = smaps_rollup(shim);
            rss.push(r);
            pss.push(p);
        }
    }
    for (container, task) in &started {
        let _ = task.force_delete().await;
        let _ = container.delete().await;
    }
    result?;
    let mean = |v: &[u64]| {
        if v.is_empty() {
            0
        } else {
            v.iter().sum::<u64>() / v.len() as u64
        }
    };
    if json_out {
        println!(
            "{}",
            json!({"count": started.len(), "shim_rss_kib_mean": mean(&rss), "shim_pss_kib_mean": mean(&pss), "shim_rss_kib": rss, "shim_pss_kib": pss})
        );
    } else {
        println!(
            "{} containers: per shim RSS {} KiB, PSS {} KiB (means)",
            started.len(),
            mean(&rss),
            mean(&pss)
        );
    }
    Ok(0)
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn smaps_rollup(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest-rank percentile of sorted samples, exactly.
    fn exact(sorted: &[u64], p: f64) -> u64 {
        let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank.min(sorted.len()) - 1]
    }

    /// Every percentile from 1 to 99 (and 99.9) of `samples`, from a histogram, is within
    /// `bound` (relative) of the exact one.
    fn check(mut samples: Vec<u64>, bound: f64) {
        let mut hist = Histogram::default();
        for &v in &samples {
            hist.record(v);
        }
        samples.sort_unstable();
        assert_eq!(hist.count(), samples.len() as u64);
        let ps = (1..=99).map(f64::from).chain([99.9]);
        for p in ps {
            let want = exact(&samples, p) as f64;
            let got = hist.percentile(p) as f64;
            let err = (got - want).abs() / want.max(1.0);
            assert!(err <= bound, "p{p}: {got} for {want} ({err:.4})");
        }
        let mean = samples.iter().map(|&v| v as f64).sum::<f64>() / samples.len() as f64;
        assert!((hist.mean() - mean).abs() <= mean * 1e-9, "mean");
        assert_eq!(hist.max(), *samples.last().unwrap_or(&0));
    }

    /// A deterministic pseudo-random sequence in [0, 1) (xorshift64*).
    fn uniform(n: usize, mut seed: u64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn small_values_are_exact() {
        let mut hist = Histogram::default();
        for v in 0..128 {
            hist.record(v);
        }
        assert_eq!(hist.percentile(50.0), 63);
        assert_eq!(hist.percentile(100.0), 127);
        assert_eq!(hist.percentile(0.0), 0);
    }

    #[test]
    fn percentiles_of_a_linear_ramp() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        let mut hist = Histogram::default();
        v.iter().for_each(|&x| hist.record(x));
        // Nearest rank: p50 of 1..=100 ms is 50 ms, p99 is 99 ms (within a bucket's half-width).
        assert!((hist.percentile(50.0) as f64 - 50_000.0).abs() <= 50_000.0 / 128.0);
        assert!((hist.percentile(99.0) as f64 - 99_000.0).abs() <= 99_000.0 / 128.0);
        check(v, 1.0 / 128.0);
        check((1..=200_000).collect(), 1.0 / 128.0);
    }

    #[test]
    fn percentiles_of_uniform_exponential_and_heavy_tailed_samples() {
        let u = uniform(100_000, 0x9e37_79b9_7f4a_7c15);
        // Uniform 0..10 s.
        check(u.iter().map(|x| (x * 1e7) as u64).collect(), 1.0 / 128.0);
        // Exponential with a 20 ms mean, as lifecycle latencies roughly are.
        check(
            u.iter()
                .map(|x| (-(1.0 - x).ln() * 20_000.0) as u64)
                .collect(),
            1.0 / 128.0,
        );
        // Log-uniform over nine decades, 1 us to 1000 s: every bucket size in use.
        check(
            u.iter().map(|x| 10f64.powf(x * 9.0) as u64).collect(),
            1.0 / 128.0,
        );
    }

    #[test]
    fn an_empty_histogram_reports_zero() {
        let hist = Histogram::default();
        assert_eq!(hist.count(), 0);
        assert_eq!(hist.percentile(50.0), 0);
        assert_eq!(hist.percentile(99.0), 0);
        assert_eq!(hist.mean(), 0.0);
        assert_eq!(hist.max(), 0);
        assert_eq!(hist.summary()["p99_ms"], 0.0);
    }

    #[test]
    fn huge_values_land_in_the_last_bucket() {
        let mut hist = Histogram::default();
        hist.record(micros(Duration::MAX));
        hist.record(u64::MAX);
        assert_eq!(hist.count(), 2);
        assert_eq!(hist.max(), u64::MAX);
        let top = hist.percentile(99.0);
        assert!(
            ((1 << MAX_BITS) - (1 << (MAX_BITS - SUB_BITS))..1 << MAX_BITS).contains(&top),
            "{top}"
        );
        assert_eq!(Histogram::index(u64::MAX), BUCKETS - 1);
        // Never above the largest value seen: a bucket's midpoint is capped by it.
        let mut one = Histogram::default();
        one.record(1_048_577); // just above 2^20: its bucket's midpoint is 8 ms higher
        assert_eq!(one.percentile(50.0), 1_048_577);
    }

    #[test]
    fn buckets_tile_the_range_and_the_size_is_fixed() {
        let mut next = 0;
        for i in 0..BUCKETS {
            let (low, width) = Histogram::bounds(i);
            assert_eq!(low, next, "bucket {i} starts where the previous ended");
            assert_eq!(Histogram::index(low), i);
            assert_eq!(Histogram::index(low + width - 1), i);
            // At most 1/64 of its lower bound wide (or 1 for the exact ones).
            assert!(width == 1 || width * SUB <= low, "bucket {i}");
            next = low + width;
        }
        assert_eq!(next, 1 << MAX_BITS);
        let mut hist = Histogram::default();
        for v in 0..1_000_000u64 {
            hist.record(v * 997);
        }
        assert_eq!(hist.counts.len(), BUCKETS);
        assert_eq!(BUCKETS, 1600);
    }

    #[test]
    fn the_warm_up_snapshot_comes_early_but_not_at_the_end() {
        assert_eq!(warmup(Duration::from_secs(10)), Duration::from_secs(2));
        assert_eq!(warmup(Duration::from_secs(120)), Duration::from_secs(12));
        assert_eq!(warmup(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(warmup(Duration::ZERO), Duration::ZERO);
    }
}
