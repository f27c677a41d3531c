//! `lcd ps [-a] [-q] [-n N] [-l] [-s] [--no-trunc] [--filter K=V] [--format ...]`: the namespace's
//! containers, newest first, in docker's columns (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS,
//! PORTS, NAMES) and docker's `--format json` keys.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use libcontainerd::{Client, ContainerInfo, TaskInfo, TaskStatus};
use serde_json::{json, Value};

use crate::cli::PsArgs;
use crate::context::Ctx;
use crate::cri;
use crate::names;
use crate::state::{self, State, LABEL_ROOTFS};
use crate::template::{Format, Template};

/// docker's default `ps` table.
const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Column titles of `ps` fields in a `table` template, as docker names them.
pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("RunningFor", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// docker's id column width.
const SHORT_ID: usize = 12;
/// docker's command column width.
const SHORT_COMMAND: usize = 20;

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

/// When a host process started, from /proc (containerd does not record a task's start time): its
/// start in clock ticks since boot, against the time since boot now (/proc/uptime, in hundredths:
/// the boot time /proc/stat gives is whole seconds, which made "Up" durations a second off).
fn process_start(pid: u32) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let start_ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let started_after_boot = start_ticks as f64 / ticks.max(1) as f64;
    let running_for = Duration::try_from_secs_f64((uptime - started_after_boot).max(0.0)).ok()?;
    SystemTime::now().checked_sub(running_for)
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

/// One `--filter KEY=VALUE`, docker's keys.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Status(String),
    Name(String),
    Id(String),
    Label(String, Option<String>),
    Ancestor(String),
    Exited(u32),
}

fn parse_filter(arg: &str) -> Result<Filter> {
    let Some((key, value)) = arg.split_once('=') else {
        bail!("bad format of filter (expected name=value): {arg}");
    };
    Ok(match key {
        "status" => {
            const STATES: [&str; 7] = [
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ];
            if !STATES.contains(&value) {
                bail!(
                    "invalid filter 'status={value}': use one of {}",
                    STATES.join(", ")
                );
            }
            Filter::Status(value.to_string())
        }
        "name" => Filter::Name(value.to_string()),
        "id" => Filter::Id(value.to_string()),
        "label" => match value.split_once('=') {
            Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
            None => Filter::Label(value.to_string(), None),
        },
        "ancestor" => Filter::Ancestor(value.to_string()),
        "exited" => match value.parse() {
            Ok(code) => Filter::Exited(code),
            Err(_) => bail!("invalid filter 'exited={value}': an exit code is a number"),
        },
        other => bail!("invalid filter '{other}': use status, name, id, label, ancestor or exited"),
    })
}

/// docker's name filter is an unanchored regular expression; lcd takes the literal text with
/// optional `^` and `$` anchors, which is what the filter is used with.
fn name_matches(name: &str, pattern: &str) -> bool {
    let (start, rest) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (end, text) = match rest.strip_suffix('$') {
        Some(text) => (true, text),
        None => (false, rest),
    };
    match (start, end) {
        (true, true) => name == text,
        (true, false) => name.starts_with(text),
        (false, true) => name.ends_with(text),
        (false, false) => name.contains(text),
    }
}

fn filter_matches(filter: &Filter, row: &Row) -> bool {
    let id = row.info.id.as_str();
    match filter {
        Filter::Status(s) => row.state.name() == s,
        Filter::Name(pattern) => name_matches(&names::name_of(id, &row.info.labels), pattern),
        Filter::Id(prefix) => id.starts_with(prefix.as_str()),
        Filter::Label(key, value) => match (row.info.labels.get(key), value) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        },
        Filter::Ancestor(image) => image_of(&row.info).is_some_and(|have| {
            have == image
                || libcontainerd_images::reference::familiar(have) == *image
                || libcontainerd_images::reference::familiar(have) == format!("{image}:latest")
        }),
        Filter::Exited(code) => matches!(row.state, State::Exited { code: c, .. } if c == *code),
    }
}

/// Filters of one key OR, of different keys AND, as docker's.
fn all_match(filters: &[Filter], row: &Row) -> bool {
    let mut by_key: HashMap<std::mem::Discriminant<Filter>, bool> = HashMap::new();
    for f in filters {
        let hit = by_key.entry(std::mem::discriminant(f)).or_insert(false);
        *hit |= filter_matches(f, row);
    }
    by_key.values().all(|hit| *hit)
}

/// `lcd ps`.
pub async fn ps(ctx: &Ctx, args: PsArgs) -> Result<i32> {
    // Every flag is checked before containerd is contacted (or started).
    let format = Format::parse(args.format.as_deref(), "table")?;
    let filters = args
        .filter
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<Vec<_>>>()?;
    let client = ctx.client().await?;
    let now = SystemTime::now();
    let limit = if args.latest { Some(1) } else { args.last };
    // docker: -n, -l and a status filter look at containers in every state.
    let all = args.all
        || limit.is_some()
        || filters
            .iter()
            .any(|f| matches!(f, Filter::Status(_) | Filter::Exited(_)));
    let mut rows: Vec<Row> = rows(&client)
        .await?
        .into_iter()
        .filter(|r| all || r.state.is_up())
        .filter(|r| all_match(&filters, r))
        .collect();
    if let Some(n) = limit {
        rows.truncate(n);
    }
    let values: Vec<Value> = rows
        .iter()
        .map(|r| ps_json(r, now, !args.no_trunc, args.size))
        .collect();
    let out = if args.quiet {
        values
            .iter()
            .map(|v| format!("{}\n", v["ID"].as_str().unwrap_or_default()))
            .collect()
    } else {
        match format.render(&values, HEADERS)? {
            Some(out) => out,
            None => {
                let table = if args.size {
                    format!("{DEFAULT_TABLE}\t{{{{.Size}}}}")
                } else {
                    DEFAULT_TABLE.to_string()
                };
                Template::parse(&table)?.render_rows(&values, HEADERS)?
            }
        }
    };
    print!("{out}");
    Ok(0)
}

/// docker's Command column: quoted, cut to 20 characters with an ellipsis unless `--no-trunc`.
fn quoted_command(command: &str, truncate: bool) -> String {
    let shown = if truncate && command.chars().count() > SHORT_COMMAND {
        let cut: String = command.chars().take(SHORT_COMMAND - 1).collect();
        format!("{cut}…")
    } else {
        command.to_string()
    };
    serde_json::to_string(&shown).unwrap_or_default()
}

/// The row as `docker ps --format json` prints it (docker's keys), plus lcd's `Pid` and
/// `ExitCode`.
fn ps_json(r: &Row, now: SystemTime, truncate: bool, size: bool) -> Value {
    let id = r.info.id.as_str();
    let short_id: String = if truncate {
        id.chars().take(SHORT_ID).collect()
    } else {
        id.to_string()
    };
    let (pid, exit_code) = match &r.state {
        State::Up { pid, .. } => (Some(*pid), None),
        State::Exited { code, .. } => (None, Some(*code)),
        State::Created => (None, None),
    };
    let mut labels: Vec<String> = r
        .info
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("io.lcd.") && !k.starts_with("io.libcontainerd."))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    json!({
        "Command": quoted_command(&command_of(&r.info), truncate),
        "CreatedAt": r.info.created_at.map(state::docker_time).unwrap_or_default(),
        "ID": short_id,
        "Image": where_from(&r.info),
        "Labels": labels.join(","),
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": names::name_of(id, &r.info.labels),
        "Networks": "",
        "Ports": "",
        "RunningFor": r.info.created_at.map(|t| format!(
            "{} ago",
            state::human_duration(now.duration_since(t).unwrap_or_default())
        )).unwrap_or_default(),
        // lcd does not measure a container's writable layer; docker prints sizes only with -s.
        "Size": if size { "N/A" } else { "" },
        "State": r.state.name(),
        "Status": status_text(&r.state, now),
        "Pid": pid,
        "ExitCode": exit_code,
        "Kubernetes": cri::Kube::of(&r.info.labels).map(|k| k.to_json()),
    })
}

/// The IMAGE column: the image a container was made from (docker's short form, without
/// `:latest`), or the rootfs
/// directory it runs in.
fn where_from(info: &libcontainerd::ContainerInfo) -> String {
    match image_of(info) {
        // docker shows `busybox` for a container run from `busybox`.
        Some(image) => {
            let familiar = libcontainerd_images::reference::familiar(image);
            match familiar.strip_suffix(":latest") {
                Some(short) => short.to_string(),
                None => familiar,
            }
        }
        None => info.labels.get(LABEL_ROOTFS).cloned().unwrap_or_default(),
    }
}

fn image_of(info: &libcontainerd::ContainerInfo) -> Option<&str> {
    info.snapshot.as_ref().and_then(|s| s.image.as_deref())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn filters_parse_with_dockers_keys() {
        assert_eq!(
            parse_filter("status=exited").unwrap(),
            Filter::Status("exited".into())
        );
        assert_eq!(
            parse_filter("label=a=b").unwrap(),
            Filter::Label("a".into(), Some("b".into()))
        );
        assert_eq!(parse_filter("exited=3").unwrap(), Filter::Exited(3));
        assert!(parse_filter("status=bogus").is_err());
        assert!(parse_filter("colour=red").is_err());
        assert!(parse_filter("status").is_err());
    }

    #[test]
    fn names_match_like_an_unanchored_pattern() {
        assert!(name_matches("web-1", "web"));
        assert!(name_matches("web-1", "^web"));
        assert!(!name_matches("my-web", "^web"));
        assert!(name_matches("web", "^web$"));
        assert!(!name_matches("web-1", "^web$"));
    }

    #[test]
    fn commands_are_quoted_and_cut_like_dockers() {
        assert_eq!(quoted_command("sleep 60", true), "\"sleep 60\"");
        assert_eq!(
            quoted_command("sh -c 'while true; do date; done'", true),
            "\"sh -c 'while true; …\""
        );
        assert_eq!(
            quoted_command("a b c d e f g h i j k", false),
            "\"a b c d e f g h i j k\""
        );
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(state::docker_time(t), "2023-11-14 22:13:20 +0000 UTC");
    }
}
