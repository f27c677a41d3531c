//! `lcd stress`: containerd-stress on our library. Workers loop a whole container lifecycle (or an
//! exec) for a set time and report rates, failures, per-phase latency percentiles, and what the
//! client itself spent (CPU time, file descriptors, memory). `lcd stress density` measures per-shim
//! memory.
//!
//! Memory is constant however long it runs: latencies go into fixed-size histograms
//! ([`histogram::Histogram`]), not a list of samples. To show whether the client grows, it
//! snapshots its RSS and fd count once the run is warm (see [`usage::warmup`]) and again at the
//! end, and reports both.
//!
//! One module per job: [`workload`] is what a worker does once, [`tally`] what it records (into
//! [`histogram`]s), [`usage`] the client's own snapshots, [`report`] the summary, [`density`] the
//! other mode. This module runs the workers.

mod density;
mod histogram;
mod report;
mod tally;
mod usage;
mod workload;

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::cli::{StressArgs, StressMode};
use crate::context::Ctx;
use report::{report, Snapshots};
use tally::Tally;
use usage::{usage, warmup};
use workload::{exec_target, one_exec, one_lifecycle, rootfs};

/// `lcd stress [density]`.
pub async fn stress(ctx: &Ctx, args: StressArgs) -> Result<i32> {
    match &args.mode {
        Some(StressMode::Density {
            count,
            json,
            rootfs,
        }) => density::density(ctx, *count, *json, rootfs).await,
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
