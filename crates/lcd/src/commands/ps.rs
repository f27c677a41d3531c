//! `lcd ps [-a] [-q] [--format json]`: the namespace's containers, newest first, as docker lists
//! them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use libcontainerd::{Client, ContainerInfo, TaskInfo, TaskStatus};
use serde_json::json;

use crate::cli::PsArgs;
use crate::context::Ctx;
use crate::cri;
use crate::flags::parse_format;
use crate::state::{self, State, LABEL_ROOTFS};

fn command_of(info: &ContainerInfo) -> String {
    info.spec
        .as_ref()
        .and_then(|s| s.process().as_ref())
        .and_then(|p| p.args().clone())
        .map(|a| a.join(" "))
        .unwrap_or_default()
}

fn status_text(state: &State, now: SystemTime) -> String {
    let ago = |t: SystemTime| state::human_duration(now.duration_since(t).unwrap_or_default());
    match state {
        State::Created => "Created".to_string(),
        State::Up { pid, status } => {
            let up = process_start(*pid)
                .map(|t| format!("Up {}", ago(t)))
                .unwrap_or_else(|| "Up".to_string());
            if matches!(status, TaskStatus::Paused | TaskStatus::Pausing) {
                format!("{up} (Paused)")
            } else {
                up
            }
        }
        State::Exited { code, finished_at } => match finished_at {
            Some(t) => format!("Exited ({code}) {} ago", ago(*t)),
            None => format!("Exited ({code})"),
        },
    }
}

/// When a host process started, from /proc (containerd does not record a task's start time).
fn process_start(pid: u32) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let start_ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let since_boot = Duration::from_millis(start_ticks * 1000 / ticks.max(1));
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(boot) + since_boot)
}

struct Row {
    info: ContainerInfo,
    state: State,
}

async fn rows(client: &Client) -> Result<Vec<Row>> {
    let (containers, tasks) = tokio::try_join!(client.list_containers(), client.list_tasks())?;
    let tasks: HashMap<String, TaskInfo> = tasks
        .into_iter()
        .map(|t| (t.container_id.clone(), t))
        .collect();
    let mut rows: Vec<Row> = containers
        .into_iter()
        .map(|info| {
            let state = State::of(&info.labels, tasks.get(info.id.as_str()));
            Row { info, state }
        })
        .collect();
    // Kubernetes' exited containers have no task left: CRI recorded their exit.
    let states = rows
        .iter_mut()
        .map(|r| (&r.info.labels, r.info.id.as_str(), &mut r.state));
    cri::recorded_exits(client, states).await;
    rows.sort_by_key(|r| std::cmp::Reverse(r.info.created_at));
    Ok(rows)
}

/// `lcd ps`.
pub async fn ps(ctx: &Ctx, args: PsArgs) -> Result<i32> {
    let json = parse_format(&args.format, "table")?;
    let client = ctx.client().await?;
    let now = SystemTime::now();
    let rows: Vec<Row> = rows(&client)
        .await?
        .into_iter()
        .filter(|r| args.all || r.state.is_up())
        .collect();
    let mut out = String::new();
    if args.quiet {
        for r in &rows {
            out.push_str(&format!("{}\n", r.info.id));
        }
    } else if json {
        for r in &rows {
            out.push_str(&format!("{}\n", ps_json(r, now)));
        }
    } else {
        // Kubernetes' containers have names (docker's last column); lcd's are known by their ids.
        let names = rows.iter().any(|r| cri::Kube::of(&r.info.labels).is_some());
        let names_column = |image: String, name: String| match names {
            true => format!("{image:<24} {name}"),
            false => image,
        };
        out.push_str(&format!(
            "{:<18} {:<28} {:<24} {:<26} {}\n",
            "CONTAINER ID",
            "COMMAND",
            "CREATED",
            "STATUS",
            names_column("IMAGE/ROOTFS".into(), "NAMES".into())
        ));
        for r in &rows {
            let created = r
                .info
                .created_at
                .map(|t| {
                    format!(
                        "{} ago",
                        state::human_duration(now.duration_since(t).unwrap_or_default())
                    )
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<18} {:<28} {:<24} {:<26} {}\n",
                r.info.id.as_str(),
                quote_truncated(&command_of(&r.info), 26),
                created,
                status_text(&r.state, now),
                names_column(where_from(&r.info), cri::name_of(&r.info.labels))
            ));
        }
    }
    print!("{out}");
    Ok(0)
}

fn quote_truncated(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        format!("\"{s}\"")
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("\"{cut}…\"")
    }
}

fn ps_json(r: &Row, now: SystemTime) -> serde_json::Value {
    let (pid, exit_code) = match &r.state {
        State::Up { pid, .. } => (Some(*pid), None),
        State::Exited { code, .. } => (None, Some(*code)),
        State::Created => (None, None),
    };
    json!({
        "id": r.info.id.as_str(),
        "command": command_of(&r.info),
        "created": r.info.created_at.map(libcontainerd::time::rfc3339),
        "state": r.state.name(),
        "status": status_text(&r.state, now),
        "pid": pid,
        "exit_code": exit_code,
        "rootfs": r.info.labels.get(LABEL_ROOTFS),
        "image": image_of(&r.info),
        "kubernetes": cri::Kube::of(&r.info.labels).map(|k| k.to_json()),
    })
}

/// The IMAGE/ROOTFS column: the image a container was made from (docker's short form), or the
/// rootfs directory it runs in.
fn where_from(info: &libcontainerd::ContainerInfo) -> String {
    match image_of(info) {
        Some(image) => libcontainerd_images::reference::familiar(image),
        None => info.labels.get(LABEL_ROOTFS).cloned().unwrap_or_default(),
    }
}

fn image_of(info: &libcontainerd::ContainerInfo) -> Option<&str> {
    info.snapshot.as_ref().and_then(|s| s.image.as_deref())
}
