//! `lcd update [OPTIONS] ID...`: change containers' resource limits (a running one's at once, and
//! for every later start), with docker's flags
//! and units (`--memory 512m`, `--memory-swap -1` for unlimited swap, `--cpus 1.5`).

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use libcontainerd::oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::cli::UpdateArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::options;
use crate::state;

/// The CFS period docker uses for `--cpus`, in microseconds.
const CPU_PERIOD: u64 = 100_000;

/// `lcd update [OPTIONS] ID...`: change the limits of containers.
pub async fn update(ctx: &Ctx, args: UpdateArgs) -> Result<i32> {
    // Validate every flag before touching any container.
    let resources = update_resources(&args)?;
    let client = ctx.client().await?;
    let force_kubernetes = ctx.force_kubernetes;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        let resources = resources.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            cri::refuse_change(&container, "update", force_kubernetes)?;
            // A running (or paused) container's cgroup changes now; a stopped or created one's
            // limits apply at its next start, as docker's.
            if let Ok(task) = state::running(container.id(), task) {
                task.update_resources(&resources).await?;
            }
            // Kept in the container's spec, so that `start`, `restart` and the agent's restarts
            // run it with them, and `inspect` shows them.
            let now = options::merge_resources(
                options::resources(container.spec(), container.labels()),
                &resources,
            );
            let mut container = container;
            container.set_resources(&now).await?;
            // Limits recorded by an earlier lcd in a label give way to the spec's.
            if container.labels().contains_key(options::LABEL_RESOURCES) {
                let stale = HashMap::from([(options::LABEL_RESOURCES.to_string(), String::new())]);
                container.set_labels(&stale).await?;
            }
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// The OCI resources `lcd update`'s flags ask for. Public for the fuzz target, which feeds it every
/// command line clap accepts.
pub fn update_resources(args: &UpdateArgs) -> Result<LinuxResources> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
