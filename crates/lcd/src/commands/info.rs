//! `lcd info` (and `lcd system info`): what lcd runs on, as `docker info` shows it: containerd's
//! version, the runtimes `--runtime` can name and the default one, the snapshotter, the cgroup
//! version and driver, how many containers are running, paused and stopped, how many images there
//! are, and lcd's directories. `--format json` prints one object with docker's keys.

use std::collections::HashSet;

use anyhow::Result;
use libcontainerd::Client;
use libcontainerd_images::Platform;
use serde_json::{json, Value};

use crate::cli::InfoArgs;
use crate::context::Ctx;
use crate::inventory;
use crate::runtimes;
use crate::template::Format;

/// How many containers are in each of docker's three groups.
#[derive(Debug, Default)]
struct Counts {
    running: usize,
    paused: usize,
    /// Exited or never started.
    stopped: usize,
}

async fn count_containers(client: &Client) -> Result<Counts> {
    let mut counts = Counts::default();
    for (_, state) in inventory::containers(client).await? {
        match state.name() {
            "running" => counts.running += 1,
            "paused" => counts.paused += 1,
            _ => counts.stopped += 1,
        }
    }
    Ok(counts)
}

/// `lcd info`.
pub async fn info(ctx: &Ctx, args: InfoArgs) -> Result<i32> {
    // Decided before containerd is asked anything: a bad format costs nothing.
    let format = Format::parse(Some(args.format.as_str()), "text")?;
    let client = ctx.client().await?;
    let (version, counts, images, snapshotter) = tokio::try_join!(
        async { Ok::<_, anyhow::Error>(client.version().await?) },
        count_containers(&client),
        async {
            let rows = libcontainerd_images::store::summaries(&client, &Platform::host()).await?;
            // docker counts images, not names: two tags of one image are one.
            let ids: HashSet<String> = rows.into_iter().map(|r| r.id.unwrap_or(r.digest)).collect();
            Ok::<_, anyhow::Error>(ids.len())
        },
        async { Ok::<_, anyhow::Error>(libcontainerd_images::snapshotter::choose(&client).await?) },
    )?;
    let runtime = ctx.runtime();
    let runc = runtime
        .oci_binary()
        .unwrap_or(runtimes::DEFAULT)
        .to_string();
    let (runtimes, warnings) = runtimes::available(ctx);
    let uname = nix::sys::utsname::uname()?;
    let info = json!({
        "Containers": counts.running + counts.paused + counts.stopped,
        "ContainersRunning": counts.running,
        "ContainersPaused": counts.paused,
        "ContainersStopped": counts.stopped,
        "Images": images,
        "Driver": snapshotter,
        "LoggingDriver": "lcd-logger",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "Runtimes": runtimes,
        "DefaultRuntime": runtimes::DEFAULT,
        "RuncVersion": first_line_of(&runc, &["--version"]),
        "ContainerdVersion": version.version,
        "ContainerdRevision": version.revision,
        "ContainerdAddress": client.address(),
        "ManagedContainerd": ctx.address.is_none(),
        "Namespace": ctx.namespace,
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": operating_system(),
        "OSType": "linux",
        "Architecture": uname.machine().to_string_lossy(),
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": super::stats::host_memory(),
        "Name": uname.nodename().to_string_lossy(),
        "DockerRootDir": ctx.data_root,
        "ExecRoot": ctx.exec_root,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Warnings": warnings,
    });
    match format.render(std::slice::from_ref(&info), &[])? {
        Some(out) => print!("{out}"),
        None => print!("{}", text(&info)),
    }
    Ok(0)
}

/// docker's layout: one `Key: value` a line, containers broken down below their total.
fn text(info: &Value) -> String {
    let s = |key: &str| match &info[key] {
        Value::String(s) => s.clone(),
        Value::Null => "unknown".to_string(),
        other => other.to_string(),
    };
    let memory = info["MemTotal"]
        .as_u64()
        .map(|b| format!("{:.2}GiB", b as f64 / (1u64 << 30) as f64))
        .unwrap_or_else(|| "unknown".to_string());
    let containerd = format!("{} ({})", s("ContainerdVersion"), s("ContainerdAddress"));
    let managed = if info["ManagedContainerd"] == Value::Bool(true) {
        "managed by lcd"
    } else {
        "given by --address"
    };
    [
        "Server:".to_string(),
        format!(" Containers: {}", s("Containers")),
        format!("  Running: {}", s("ContainersRunning")),
        format!("  Paused: {}", s("ContainersPaused")),
        format!("  Stopped: {}", s("ContainersStopped")),
        format!(" Images: {}", s("Images")),
        format!(" Server Version: lcd {}", s("ServerVersion")),
        format!(" containerd: {containerd}, {managed}"),
        format!(" Namespace: {}", s("Namespace")),
        format!(" Storage Driver (snapshotter): {}", s("Driver")),
        format!(" Logging Driver: {}", s("LoggingDriver")),
        format!(" Cgroup Driver: {}", s("CgroupDriver")),
        format!(" Cgroup Version: {}", s("CgroupVersion")),
        format!(" Runtimes: {}", runtime_names(info)),
        format!(" Default Runtime: {}", s("DefaultRuntime")),
        format!(" runc version: {}", s("RuncVersion")),
        format!(" Kernel Version: {}", s("KernelVersion")),
        format!(" Operating System: {}", s("OperatingSystem")),
        format!(" OSType: {}", s("OSType")),
        format!(" Architecture: {}", s("Architecture")),
        format!(" CPUs: {}", s("NCPU")),
        format!(" Total Memory: {memory}"),
        format!(" Name: {}", s("Name")),
        format!(" Data Root: {}", s("DockerRootDir")),
        format!(" Exec Root: {}", s("ExecRoot")),
    ]
    .iter()
    .cloned()
    .chain(
        info["Warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|w| format!("WARNING: {w}")),
    )
    .map(|line| format!("{line}\n"))
    .collect()
}

/// The runtimes' names on one line, as docker lists them.
fn runtime_names(info: &Value) -> String {
    info["Runtimes"]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// "2" on a unified hierarchy, else "1" (hybrid and legacy hosts: containers get v1 controllers).
fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

/// /etc/os-release's PRETTY_NAME.
fn operating_system() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// The first line a program prints (`runc --version`), or None if it cannot run.
fn first_line_of(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_are_the_template_engines() {
        let info = json!({"ContainersRunning": 2, "Driver": "overlayfs"});
        let render = |f: &str| {
            Format::parse(Some(f), "text")
                .unwrap()
                .render(std::slice::from_ref(&info), &[])
                .unwrap()
        };
        assert_eq!(
            render("{{.ContainersRunning}} on {{ .Driver }}").as_deref(),
            Some("2 on overlayfs\n")
        );
        assert_eq!(
            render("{{json .Driver}}").as_deref(),
            Some("\"overlayfs\"\n")
        );
        assert_eq!(render("text"), None);
        assert!(Format::parse(Some("{{range .X}}"), "text").is_err());
    }
}
