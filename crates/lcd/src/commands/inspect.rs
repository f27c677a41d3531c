//! `lcd inspect [-f FORMAT] ID...`: containers' details as one JSON array, in docker's field
//! names, or each through a Go template.

use anyhow::Result;
use libcontainerd::{Client, TaskInfo, TaskStatus};
use serde_json::json;

use crate::cli::InspectArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit;
use crate::options;
use crate::state::{self, State, LABEL_OOM_KILLED, LABEL_ROOTFS};
use crate::template::Format;

/// `lcd inspect`.
pub async fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<i32> {
    let format = match args.format.as_deref() {
        None | Some("") => None,
        given => Some(Format::parse(given, "")?),
    };
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
    match format.map(|f| f.render(&found, &[])).transpose()?.flatten() {
        Some(text) => print!("{text}"),
        None => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(if failed { exit::LCD_ERROR } else { 0 })
}

async fn inspect_one(ctx: &Ctx, client: &Client, id: &str) -> Result<serde_json::Value> {
    let (container, task) = state::load_with_task(client, id).await?;
    let info = match task {
        Some((task, status)) => {
            // A stopped task not reaped yet still knows its exit; wait returns it at once.
            let exit_status = if status == TaskStatus::Stopped {
                match task.wait().await {
                    Ok(exit) => Some(exit),
                    // Reaped meanwhile (by lcd's agent), which recorded the exit on the container
                    // first: look again.
                    Err(e) if e.kind() == libcontainerd::ErrorKind::NotFound => {
                        return Box::pin(inspect_one(ctx, client, id)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
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
    let mut state = State::of(container.labels(), info.as_ref());
    let recorded = std::iter::once((container.labels(), container.id().as_str(), &mut state));
    cri::recorded_exits(client, recorded).await;
    let oom_killed = match &info {
        // Stopped and not reaped yet: the cgroup still counts its OOM kills.
        Some(t) if t.status == TaskStatus::Stopped => {
            state::oom_kills(container.spec()).is_some_and(|n| n > 0)
        }
        Some(_) => false,
        None => container.labels().get(LABEL_OOM_KILLED).map(String::as_str) == Some("true"),
    };
    let process = container.spec().process().clone();
    let (stop_signal, stop_timeout) = options::stop_settings(container.labels());
    let kubernetes = cri::Kube::of(container.labels());
    let log = match &kubernetes {
        // Without a recorded log file the field is empty, as for a sandbox.
        Some(k) if !k.is_sandbox() => cri::log_path(client, &container).await.ok().flatten(),
        Some(_) => None,
        None => Some(ctx.log_path(container.id())),
    };
    Ok(json!({
        "Id": container.id().as_str(),
        // docker's form: the current name after a slash.
        "Name": format!("/{}", crate::names::name_of(container.id().as_str(), container.labels())),
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
            "OOMKilled": oom_killed,
        },
        "Config": {
            "StopSignal": stop_signal,
            "StopTimeout": stop_timeout,
        },
        "RestartCount": crate::restart::count(container.labels()),
        "HostConfig": host_config(container.spec(), container.labels()),
        "Mounts": crate::volumes::mounts_of(container.labels()),
        "NetworkSettings": crate::network::settings(ctx, container.labels(), container.id()),
        "Rootfs": container.labels().get(LABEL_ROOTFS),
        "Image": container.snapshot().and_then(|s| s.image.as_deref()),
        "Snapshot": container.snapshot().map(|s| serde_json::json!({"Snapshotter": s.snapshotter, "Key": s.key})),
        "BundleDir": container.bundle_dir(),
        "LogPath": log.filter(|l| l.exists()),
        "Kubernetes": kubernetes.map(|k| k.to_json()),
        "Labels": container.labels(),
        "Spec": container.spec(),
    }))
}

/// docker's HostConfig security fields from the options recorded at create, and what the spec says
/// the process runs with: its seccomp mode (default, unconfined or custom), capabilities and user.
fn host_config(
    spec: &libcontainerd::oci_spec::runtime::Spec,
    labels: &std::collections::HashMap<String, String>,
) -> serde_json::Value {
    let given = options::host_config(labels);
    let field = |name: &str| given.get(name).cloned().unwrap_or(serde_json::Value::Null);
    let security_opt: Vec<String> = given
        .get("SecurityOpt")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let custom = security_opt.iter().any(|o| {
        let o = o.replacen(':', "=", 1);
        o.starts_with("seccomp=") && o != "seccomp=unconfined" && o != "seccomp=builtin"
    });
    let filtered = spec.linux().as_ref().is_some_and(|l| l.seccomp().is_some());
    let seccomp = match (filtered, custom) {
        (false, _) => "unconfined",
        (true, true) => "custom",
        (true, false) => "default",
    };
    let process = spec.process().as_ref();
    let caps = process.and_then(|p| p.capabilities().as_ref());
    let set = |get: fn(
        &libcontainerd::oci_spec::runtime::LinuxCapabilities,
    ) -> &Option<libcontainerd::oci_spec::runtime::Capabilities>| {
        let mut names: Vec<String> = caps
            .and_then(|c| get(c).as_ref())
            .map(|s| s.iter().map(|c| format!("CAP_{c}")).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    let restart = crate::restart::Policy::of(labels);
    let mut config = json!({
        "RestartPolicy": {"Name": restart.name(), "MaximumRetryCount": restart.max_retries()},
        "AutoRemove": labels.contains_key(crate::restart::LABEL_AUTO_REMOVE),
        "Runtime": crate::runtimes::name_of(labels),
        "Privileged": field("Privileged"),
        "CapAdd": field("CapAdd"),
        "CapDrop": field("CapDrop"),
        "SecurityOpt": field("SecurityOpt"),
        "Devices": field("Devices"),
        "Ulimits": field("Ulimits"),
        "Sysctls": field("Sysctls"),
        "GroupAdd": field("GroupAdd"),
        "Init": field("Init"),
        "Seccomp": seccomp,
        "NoNewPrivileges": process.and_then(|p| p.no_new_privileges()).unwrap_or(false),
        "Capabilities": {
            "Effective": set(|c| c.effective()),
            "Bounding": set(|c| c.bounding()),
            "Permitted": set(|c| c.permitted()),
        },
        "User": process.map(|p| json!({
            "Uid": p.user().uid(),
            "Gid": p.user().gid(),
            "AdditionalGids": p.user().additional_gids(),
        })),
    });
    if let Some(map) = config.as_object_mut() {
        map.extend(options::resource_fields(&options::resources(spec, labels)));
    }
    config
}
