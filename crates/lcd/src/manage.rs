//! Commands on existing containers: ps, inspect, kill, stop, rm, logs.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _, Result};
use libcontainerd::{Client, ContainerInfo, TaskInfo, TaskStatus};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::cli::{IdsArgs, KillArgs, LogsArgs, PsArgs, RmArgs, StopArgs};
use crate::context::Ctx;
use crate::state::{self, State, LABEL_ROOTFS};

/// Run `each` for every id; print each failure on stderr and report whether all succeeded, as docker
/// does for multi-container commands.
pub async fn for_each_id<F, Fut>(ids: &[String], mut each: F) -> Result<i32>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failed = false;
    for id in ids {
        if let Err(e) = each(id.clone()).await {
            eprintln!("lcd: {}", crate::one_line(&e));
            failed = true;
        }
    }
    Ok(if failed { crate::EXIT_LCD_ERROR } else { 0 })
}

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
    rows.sort_by_key(|r| std::cmp::Reverse(r.info.created_at));
    Ok(rows)
}

/// `lcd ps`.
pub async fn ps(ctx: &Ctx, args: PsArgs) -> Result<i32> {
    let json = match args.format.as_str() {
        "table" => false,
        "json" => true,
        other => bail!("unknown format {other:?}: use table or json"),
    };
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
        out.push_str(&format!(
            "{:<18} {:<28} {:<24} {:<26} {}\n",
            "CONTAINER ID", "COMMAND", "CREATED", "STATUS", "ROOTFS"
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
                r.info
                    .labels
                    .get(LABEL_ROOTFS)
                    .map(String::as_str)
                    .unwrap_or("")
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
    })
}

/// `lcd inspect`.
pub async fn inspect(ctx: &Ctx, args: IdsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let mut found = Vec::new();
    let mut failed = false;
    for id in &args.ids {
        match inspect_one(ctx, &client, id).await {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("lcd: {}", crate::one_line(&e));
                failed = true;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(if failed { crate::EXIT_LCD_ERROR } else { 0 })
}

async fn inspect_one(ctx: &Ctx, client: &Client, id: &str) -> Result<serde_json::Value> {
    let (container, task) = state::load_with_task(client, id).await?;
    let info = match task {
        Some((task, status)) => {
            // A stopped task not reaped yet still knows its exit; wait returns it at once.
            let exit_status = if status == TaskStatus::Stopped {
                Some(task.wait().await?)
            } else {
                None
            };
            Some(TaskInfo {
                container_id: id.to_string(),
                pid: task.pid(),
                status,
                exit_status,
            })
        }
        None => None,
    };
    let state = State::of(container.labels(), info.as_ref());
    let process = container.spec().process().clone();
    let log = ctx.log_path(container.id());
    Ok(json!({
        "Id": container.id().as_str(),
        "Namespace": ctx.namespace,
        "Path": process.as_ref().and_then(|p| p.args().as_ref()).and_then(|a| a.first().cloned()),
        "Args": process.as_ref().and_then(|p| p.args().as_ref()).map(|a| a.iter().skip(1).cloned().collect::<Vec<_>>()),
        "State": {
            "Status": state.name(),
            "Running": matches!(state, State::Up { .. }),
            "Paused": state.name() == "paused",
            "Pid": match state { State::Up { pid, .. } => pid, _ => 0 },
            "ExitCode": match state { State::Exited { code, .. } => code, _ => 0 },
            "FinishedAt": match state { State::Exited { finished_at: Some(t), .. } => Some(libcontainerd::time::rfc3339(t)), _ => None },
        },
        "Rootfs": container.labels().get(LABEL_ROOTFS),
        "BundleDir": container.bundle_dir(),
        "LogPath": log.exists().then_some(log),
        "Labels": container.labels(),
        "Spec": container.spec(),
    }))
}

/// `lcd kill`.
pub async fn kill(ctx: &Ctx, args: KillArgs) -> Result<i32> {
    let signal: libcontainerd::Signal = args.signal.parse()?;
    let client = ctx.client().await?;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            let task = state::running(container.id(), task)?;
            task.kill(signal).await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// `lcd stop`: SIGTERM, wait up to -t seconds, then SIGKILL; the stopped task is reaped.
pub async fn stop(ctx: &Ctx, args: StopArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let grace = Duration::from_secs(args.time);
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            let task = state::running(container.id(), task)?;
            // A paused process cannot act on SIGTERM; docker's stop also just signals it.
            task.kill(libcontainerd::Signal::TERM).await?;
            if tokio::time::timeout(grace, task.wait()).await.is_err() {
                task.kill_all(libcontainerd::Signal::KILL).await?;
                task.wait().await?;
            }
            state::reap(&container, &task).await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// `lcd rm`.
pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let force = args.force;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            if let Some((task, status)) = task {
                if status == TaskStatus::Stopped {
                    task.delete().await?;
                } else if force {
                    task.force_delete().await?;
                } else {
                    bail!(
                        "cannot remove container {id}: it is {status}; stop it first or use rm -f"
                    );
                }
            }
            container.delete().await?;
            remove_log(&ctx.log_path(container.id()))?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

fn remove_log(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}

/// `lcd logs [-f]`.
pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let container = state::load(&client, &args.id).await?;
    let path = ctx.log_path(container.id());
    let mut out = tokio::io::stdout();
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    if let Some(f) = file.as_mut() {
        tokio::io::copy(f, &mut out).await?;
    }
    if args.follow {
        // The shim appends to the file; poll it while the task runs, then drain what is left.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let task = state::task_with_status(&container).await?;
            let running = state::running(container.id(), task).is_ok();
            if file.is_none() {
                file = tokio::fs::File::open(&path).await.ok();
            }
            if let Some(f) = file.as_mut() {
                let pos = f.stream_position().await?;
                let n = f.read(&mut buf).await?;
                if n > 0 {
                    out.write_all(&buf[..n]).await?;
                    out.flush().await?;
                    continue;
                }
                f.seek(std::io::SeekFrom::Start(pos)).await?;
            }
            if !running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out.flush().await?;
    Ok(0)
}
