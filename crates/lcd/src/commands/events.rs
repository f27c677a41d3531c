//! `lcd events [--format json|TEMPLATE] [--filter container=ID]`: the namespace's container events, one line
//! each, until SIGINT or SIGTERM. Runs on across containerd restarts; exits that happened while
//! containerd was unreachable are printed once it is back (the library's reconcile finds them).

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use libcontainerd::time::rfc3339;
use libcontainerd::{Backend, BackendError, EventInfo, EventMonitor, EventType};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::cli::EventsArgs;
use crate::context::Ctx;
use crate::template::Format;

/// How many formatted lines may wait for stdout. When stdout is slower, handlers wait (the library
/// then holds events back, per container), so nothing is dropped and memory stays bounded.
const PENDING_LINES: usize = 1024;

/// Stream events until SIGINT or SIGTERM (then exit status 0), or until stdout is closed.
pub async fn events(ctx: &Ctx, args: EventsArgs) -> Result<i32> {
    // Check the flags before starting or contacting any containerd.
    let format = Format::parse(Some(&args.format), "text")?;
    let container = args.filter.as_deref().map(container_filter).transpose()?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    let client = ctx.client().await?;
    // The name of an existing container means its id, as in docker (no id prefixes, though:
    // anything else is taken as the id of a container that may come).
    let container = match container {
        Some(given) => match crate::state::load(&client, &given).await {
            Ok(found) if crate::names::name_of(found.id().as_str(), found.labels()) == given => {
                Some(found.id().to_string())
            }
            _ => Some(given),
        },
        None => None,
    };
    let (lines, mut pending) = mpsc::channel(PENDING_LINES);
    let printer = Printer {
        format,
        container,
        lines,
    };
    let monitor = EventMonitor::start(client, Arc::new(printer));
    let mut stdout = tokio::io::stdout();
    let result = loop {
        tokio::select! {
            line = pending.recv() => match line {
                Some(line) => {
                    if let Err(e) = write_line(&mut stdout, &line).await {
                        break stdout_closed(e);
                    }
                }
                None => break Ok(()),
            },
            _ = interrupt.recv() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
        }
    };
    monitor.stop();
    result.map(|()| 0)
}

/// `--filter container=ID`, the one filter lcd supports: the container's id or name.
fn container_filter(filter: &str) -> Result<String> {
    filter
        .strip_prefix("container=")
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("unknown filter {filter:?}: use container=ID"))
}

async fn write_line(stdout: &mut tokio::io::Stdout, line: &str) -> std::io::Result<()> {
    stdout.write_all(line.as_bytes()).await?;
    stdout.write_all(b"\n").await?;
    // A reader (a pipe, a script) sees each event as it happens.
    stdout.flush().await
}

/// A closed pipe (`lcd events | head -1`) ends the command quietly, like docker; other errors fail.
fn stdout_closed(e: std::io::Error) -> Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(anyhow::Error::new(e).context("write events to stdout"))
    }
}

/// The Backend of `lcd events`: formats each event and hands the line to the writer.
struct Printer {
    format: Format,
    container: Option<String>,
    lines: mpsc::Sender<String>,
}

impl Backend for Printer {
    fn process_event(
        &self,
        container_id: &str,
        event: EventType,
        info: EventInfo,
    ) -> Result<(), BackendError> {
        let Some(line) = self.format(SystemTime::now(), container_id, event, &info)? else {
            return Ok(());
        };
        // The library calls backends on a blocking-capable thread, so waiting here is allowed; it
        // holds up only this container's events.
        self.lines
            .blocking_send(line)
            .map_err(|_| "lcd events is shutting down: the output is closed".into())
    }
}

impl Printer {
    /// The line for an event, or `None` when the filter excludes it.
    fn format(
        &self,
        now: SystemTime,
        container_id: &str,
        event: EventType,
        info: &EventInfo,
    ) -> Result<Option<String>, BackendError> {
        if self.container.as_deref().is_some_and(|c| c != container_id) {
            return Ok(None);
        }
        let line = match &self.format {
            Format::Default => plain_line(now, container_id, event, info),
            Format::Json => serde_json::to_string(&record(now, container_id, event, info))?,
            Format::Template(template) => {
                let value = go_fields(record(now, container_id, event, info));
                let text = template.render_rows(&[value], &[])?;
                text.strip_suffix('\n').unwrap_or(&text).to_string()
            }
        };
        Ok(Some(line))
    }
}

/// Docker's layout: `TIME container EVENT ID (key=value, ...)`, with the attributes that apply.
fn plain_line(now: SystemTime, container_id: &str, event: EventType, info: &EventInfo) -> String {
    let mut attributes = Vec::new();
    if !info.process_id.is_empty() {
        attributes.push(format!("process={}", info.process_id));
    }
    if info.pid != 0 {
        attributes.push(format!("pid={}", info.pid));
    }
    if event == EventType::Exit {
        attributes.push(format!("exit_code={}", info.exit_code));
    }
    if let Some(error) = &info.error {
        attributes.push(format!("error={error}"));
    }
    let head = format!("{} container {event} {container_id}", rfc3339(now));
    if attributes.is_empty() {
        head
    } else {
        format!("{head} ({})", attributes.join(", "))
    }
}

/// docker's Action for an event: its names where they differ from lcd's.
fn docker_action(event: EventType) -> &'static str {
    match event.as_str() {
        "exit" => "die",
        "exec-added" => "exec_create",
        "exec-started" => "exec_start",
        "paused" => "pause",
        "resumed" => "unpause",
        other => other,
    }
}

/// One event for `--format json`, in docker's shape: `status`/`id` (docker's older keys), `Type`,
/// `Action`, `Actor` with the event's details as attributes, `scope`, `time`, `timeNano`.
fn record(
    now: SystemTime,
    container_id: &str,
    event: EventType,
    info: &EventInfo,
) -> serde_json::Value {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let action = docker_action(event);
    let mut attributes = serde_json::json!({
        "processId": info.process_id,
        "pid": info.pid.to_string(),
        "exitCode": info.exit_code.to_string(),
        "time": rfc3339(now),
    });
    if let Some(at) = info.exited_at {
        attributes["exitedAt"] = rfc3339(at).into();
    }
    if let Some(error) = &info.error {
        attributes["error"] = error.as_str().into();
    }
    serde_json::json!({
        "status": action,
        "id": container_id,
        "Type": "container",
        "Action": action,
        "Actor": { "ID": container_id, "Attributes": attributes },
        "scope": "local",
        "time": since.as_secs(),
        "timeNano": since.as_nanos() as u64,
    })
}

/// An event as docker's templates see it: its Go field names (`{{.Status}}`, `{{.ID}}`,
/// `{{.Scope}}`, `{{.TimeNano}}`) where the JSON keys are lower-case.
fn go_fields(mut record: serde_json::Value) -> serde_json::Value {
    if let Some(object) = record.as_object_mut() {
        for (json, go) in [
            ("status", "Status"),
            ("id", "ID"),
            ("scope", "Scope"),
            ("time", "Time"),
            ("timeNano", "TimeNano"),
        ] {
            if let Some(value) = object.remove(json) {
                object.insert(go.to_string(), value);
            }
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn printer(format: Format, container: Option<&str>) -> (Printer, mpsc::Receiver<String>) {
        let (lines, rx) = mpsc::channel(8);
        let printer = Printer {
            format,
            container: container.map(str::to_string),
            lines,
        };
        (printer, rx)
    }

    fn exit_info() -> EventInfo {
        EventInfo {
            container_id: "c1".into(),
            process_id: "c1".into(),
            pid: 123,
            exit_code: 0,
            exited_at: Some(at(1_700_000_000)),
            error: None,
        }
    }

    #[test]
    fn plain_lines_look_like_dockers() {
        let line = plain_line(at(1_700_000_000), "c1", EventType::Exit, &exit_info());
        assert_eq!(
            line,
            "2023-11-14T22:13:20.000000000Z container exit c1 (process=c1, pid=123, exit_code=0)"
        );
        let oom = EventInfo {
            container_id: "c1".into(),
            ..Default::default()
        };
        assert_eq!(
            plain_line(at(0), "c1", EventType::Oom, &oom),
            "1970-01-01T00:00:00.000000000Z container oom c1"
        );
        let added = EventInfo {
            container_id: "c1".into(),
            process_id: "e1".into(),
            ..Default::default()
        };
        assert_eq!(
            plain_line(at(0), "c1", EventType::ExecAdded, &added),
            "1970-01-01T00:00:00.000000000Z container exec-added c1 (process=e1)"
        );
        let lost = EventInfo {
            exit_code: 255,
            error: Some("exit status lost".into()),
            ..exit_info()
        };
        assert!(plain_line(at(0), "c1", EventType::Exit, &lost)
            .ends_with("(process=c1, pid=123, exit_code=255, error=exit status lost)"));
    }

    fn json_line(now: SystemTime, id: &str, event: EventType, info: &EventInfo) -> String {
        serde_json::to_string(&record(now, id, event, info)).unwrap()
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line = json_line(at(1_700_000_001), "c1", EventType::Exit, &exit_info());
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["time"], 1_700_000_001);
        assert_eq!(value["timeNano"], 1_700_000_001_000_000_000u64);
        assert_eq!(value["id"], "c1");
        assert_eq!(value["Type"], "container");
        assert_eq!(value["Action"], "die", "docker's name for an exit");
        assert_eq!(value["status"], "die");
        let actor = &value["Actor"];
        assert_eq!(actor["ID"], "c1");
        assert_eq!(actor["Attributes"]["processId"], "c1");
        assert_eq!(actor["Attributes"]["pid"], "123");
        assert_eq!(actor["Attributes"]["exitCode"], "0");
        assert_eq!(
            actor["Attributes"]["exitedAt"],
            "2023-11-14T22:13:20.000000000Z"
        );
        assert!(actor["Attributes"].get("error").is_none());
        assert!(!line.contains('\n'));
        let start = EventInfo {
            container_id: "c1".into(),
            process_id: "c1".into(),
            pid: 5,
            ..Default::default()
        };
        let line = json_line(at(0), "c1", EventType::Start, &start);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["Action"], "start");
        assert!(value["Actor"]["Attributes"].get("exitedAt").is_none());
    }

    #[test]
    fn the_container_filter_drops_other_containers() {
        let (p, mut rx) = printer(Format::Default, Some("c1"));
        p.process_event("c2", EventType::Start, EventInfo::default())
            .unwrap();
        p.process_event("c1", EventType::Exit, exit_info()).unwrap();
        let line = rx.try_recv().unwrap();
        assert!(line.contains("container exit c1"), "{line}");
        assert!(rx.try_recv().is_err());
    }

    /// docker's templates name an event's fields as its Go struct does.
    #[test]
    fn templates_see_dockers_field_names() {
        let template = Format::parse(
            Some("{{.Status}} {{.ID}} {{.Actor.Attributes.exitCode}} {{.Scope}} {{.Time}}"),
            "text",
        )
        .unwrap();
        let (p, mut rx) = printer(template, None);
        p.process_event("c1", EventType::Exit, exit_info()).unwrap();
        let line = rx.try_recv().unwrap();
        let (head, time) = line.rsplit_once(' ').unwrap();
        assert_eq!(head, "die c1 0 local");
        assert!(time.parse::<u64>().is_ok(), "{line}");
    }

    #[test]
    fn a_closed_output_is_an_error_for_the_library_to_log() {
        let (p, rx) = printer(Format::Json, None);
        drop(rx);
        assert!(p.process_event("c1", EventType::Exit, exit_info()).is_err());
    }

    #[test]
    fn a_broken_pipe_ends_quietly() {
        assert!(stdout_closed(std::io::ErrorKind::BrokenPipe.into()).is_ok());
        assert!(stdout_closed(std::io::ErrorKind::Other.into()).is_err());
    }
}
