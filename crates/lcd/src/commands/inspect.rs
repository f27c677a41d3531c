//! `lcd inspect ID...`: containers' details as one JSON array, in docker's field names.

use anyhow::Result;
use libcontainerd::{Client, TaskInfo, TaskStatus};
use serde_json::json;

use crate::cli::IdsArgs;
use crate::context::Ctx;
use crate::exit;
use crate::state::{self, State, LABEL_ROOTFS};

/// `lcd inspect`.
pub async fn inspect(ctx: &Ctx, args: IdsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let mut found = Vec::new();
    let mut failed = false;
    for id in &args.ids {
        match inspect_one(ctx, &client, id).await {
            Ok(v) => found.push(v),
            Err(e) => {
                exit::print(&e);
                failed = true;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(if failed { exit::LCD_ERROR } else { 0 })
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
        "Image": container.snapshot().and_then(|s| s.image.as_deref()),
        "Snapshot": container.snapshot().map(|s| serde_json::json!({"Snapshotter": s.snapshotter, "Key": s.key})),
        "BundleDir": container.bundle_dir(),
        "LogPath": log.exists().then_some(log),
        "Labels": container.labels(),
        "Spec": container.spec(),
    }))
}
