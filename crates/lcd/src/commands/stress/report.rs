//! The summary of a run: a table, or one JSON object with `--json`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::histogram::{ms, Histogram};
use super::tally::{Tally, PHASES};
use super::usage::{memory_kib, Usage};
use crate::cli::StressArgs;

/// The client's usage at the start, after the warm-up, and at the end.
pub struct Snapshots {
    pub before: Usage,
    pub warm: Usage,
    pub warm_after: Duration,
    pub after: Usage,
}

/// Print the run's summary.
pub fn report(args: &StressArgs, tally: &Tally, elapsed: Duration, snaps: Snapshots) {
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
