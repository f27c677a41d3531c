//! `lcd stress density`: how much memory each container's shim takes.

use std::path::PathBuf;

use anyhow::Result;
use libcontainerd::spec::SpecBuilder;
use libcontainerd::{Container, Id, Output, StdioConfig, Task};
use serde_json::json;

use super::workload::rootfs;
use crate::context::Ctx;

/// `lcd stress density --count N`: start N idle containers and report each shim's memory.
pub async fn density(
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
