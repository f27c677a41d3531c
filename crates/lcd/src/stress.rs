//! `lcd stress`: containerd-stress on our library. Workers loop a whole container lifecycle (or an
//! exec) for a set time and report rates, failures, per-phase latency percentiles, and what the
//! client itself spent (CPU time, file descriptors). `lcd stress density` measures per-shim memory.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use libcontainerd::spec::SpecBuilder;
use libcontainerd::{Client, Container, Id, Output, Runtime, StdioConfig, Task};
use serde_json::json;

/// The phases of one container lifecycle, timed separately.
const PHASES: [&str; 4] = ["create", "start", "wait", "delete"];

/// Options of `lcd stress`.
#[derive(Debug, Clone)]
pub struct StressArgs {
    pub concurrency: usize,
    pub duration: Duration,
    pub exec: bool,
    pub json: bool,
    pub rootfs: Option<PathBuf>,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Per phase, every sample in microseconds.
    phases: Mutex<Vec<Vec<u64>>>,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, phase: usize, took: Duration) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        if phases.len() < PHASES.len() {
            phases.resize(PHASES.len(), Vec::new());
        }
        phases[phase].push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    fn fail(&self, e: &anyhow::Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| crate::one_line(e));
    }
}

/// The client process's own use: CPU time (user + system) and open fds.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: Duration,
    fds: usize,
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
    }
}

/// Our RSS in KiB (VmHWM is the peak).
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

/// `lcd stress`.
pub async fn stress(ctx: &crate::context::Ctx, args: StressArgs) -> Result<i32> {
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
        let ns = ctx.namespace.clone();
        let rootfs = rootfs.clone();
        let target = exec_target.clone();
        let runtime = ctx.runtime();
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let name = format!("stress-{run_id}-{worker}-{n}");
                n += 1;
                let result = match &target {
                    Some((_, task)) => one_exec(task, &name, &tally).await,
                    None => one_lifecycle(&client, &runtime, &ns, &rootfs, &name, &tally).await,
                };
                match result {
                    Ok(()) => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                    }
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
    let after = usage();
    report(&args, &tally, elapsed, before, after);
    Ok(0)
}

fn spawn_progress(tally: Arc<Tally>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let ok = tally.ok.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64();
            eprint!(
                "\r{secs:6.1}s  {ok} done  {} failed  {:.1}/s   ",
                tally.failed.load(Ordering::Relaxed),
                ok as f64 / secs
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
    ns: &str,
    rootfs: &Path,
    name: &str,
    tally: &Tally,
) -> Result<()> {
    let id = Id::new(name)?;
    let spec = SpecBuilder::new(ns, name, rootfs)
        .args(["/bin/true"])
        .build()?;
    let container = timed(
        tally,
        0,
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
    let deleted = container.delete().await;
    result?;
    deleted?;
    Ok(())
}

async fn run_task(container: &Container, tally: &Tally) -> Result<()> {
    let null = StdioConfig {
        output: Output::Null,
        ..Default::default()
    };
    let task = timed(tally, 1, container.start(None, &null, |_| Ok(()))).await?;
    let status = timed(tally, 2, task.wait()).await?;
    let start = Instant::now();
    task.delete().await.context("delete")?;
    tally.record(3, start.elapsed());
    if status.code != 0 {
        bail!("container {} exited with {}", container.id(), status.code);
    }
    Ok(())
}

async fn exec_target(
    client: &Client,
    ctx: &crate::context::Ctx,
    rootfs: &Path,
    run_id: u32,
) -> Result<(Container, Task)> {
    let name = format!("stress-{run_id}-exec");
    let id = Id::new(name.as_str())?;
    let spec = SpecBuilder::new(&ctx.namespace, &name, rootfs)
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
    let proc = timed(tally, 1, task.exec(&id, process, &null, |_| Ok(()))).await?;
    let status = timed(tally, 2, proc.wait()).await?;
    timed(tally, 3, proc.delete()).await?;
    if status.code != 0 {
        bail!("exec {name} exited with {}", status.code);
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

fn report(args: &StressArgs, tally: &Tally, elapsed: Duration, before: Usage, after: Usage) {
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let rate = ok as f64 / elapsed.as_secs_f64();
    let cpu = after.cpu.saturating_sub(before.cpu);
    let cpu_per = if ok + failed > 0 {
        cpu.as_secs_f64() * 1000.0 / (ok + failed) as f64
    } else {
        0.0
    };
    let mut phases = tally
        .phases
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let unit = if args.exec { "execs" } else { "containers" };
    let mut phase_json = serde_json::Map::new();
    for (i, samples) in phases.iter_mut().enumerate() {
        samples.sort_unstable();
        // The exec mode has no create phase.
        if samples.is_empty() {
            continue;
        }
        phase_json.insert(
            PHASES[i].to_string(),
            json!({"count": samples.len(), "p50_ms": percentile(samples, 50.0), "p95_ms": percentile(samples, 95.0), "p99_ms": percentile(samples, 99.0)}),
        );
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
        "client_cpu_ms": cpu.as_secs_f64() * 1000.0,
        "client_cpu_ms_per_op": cpu_per,
        "client_fds_before": before.fds,
        "client_fds_after": after.fds,
        "client_rss_kib": memory_kib("VmRSS:"),
        "client_peak_rss_kib": memory_kib("VmHWM:"),
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
        "{:<8} {:>8} {:>9} {:>9} {:>9}",
        "PHASE", "COUNT", "P50 ms", "P95 ms", "P99 ms"
    );
    for (i, samples) in phases.iter().enumerate() {
        if !samples.is_empty() {
            println!(
                "{:<8} {:>8} {:>9.2} {:>9.2} {:>9.2}",
                PHASES[i],
                samples.len(),
                percentile(samples, 50.0),
                percentile(samples, 95.0),
                percentile(samples, 99.0)
            );
        }
    }
    println!(
        "client: {:.1} ms CPU ({cpu_per:.3} ms per {}), fds {} -> {}, RSS {} KiB (peak {} KiB)",
        cpu.as_secs_f64() * 1000.0,
        if args.exec { "exec" } else { "container" },
        before.fds,
        after.fds,
        memory_kib("VmRSS:"),
        memory_kib("VmHWM:")
    );
    if let Some(e) = first_error {
        println!("first failure: {e}");
    }
}

/// `lcd stress density --count N`: start N idle containers and report each shim's memory.
pub async fn density(
    ctx: &crate::context::Ctx,
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
        let spec = SpecBuilder::new(&ctx.namespace, &name, &rootfs)
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

    #[test]
    fn percentiles_pick_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
