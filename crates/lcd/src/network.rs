//! Containers' networks for lcd, on the `libcontainerd-network` layer: `run`'s and `create`'s network
//! flags turned into a request, the container's spec given its hosts/resolv.conf/hostname files and
//! the OCI hooks that attach and detach it, and the clean-up of crashed containers' networks.
//!
//! Why OCI hooks (nerdctl's way) and not a namespace lcd makes and attaches before creating the task:
//! runc runs `lcd network-hook attach` as a `createRuntime` hook, once the container's namespace
//! exists and before its process starts, and `lcd network-hook detach` as a `postStop` hook whenever
//! the task is deleted, whoever deletes it (lcd, `ctr`, containerd cleaning up after a dead shim).
//! So a container's network lives exactly as long as its task, without lcd being there, and a
//! restarted container is attached again. The hook pins the namespace under lcd's data root
//! (a bind mount of `/proc/PID/ns/net`) so that DEL later finds the veth and can remove the
//! masquerade rule the bridge plugin keyed to its address. What a crash leaves (a record whose
//! process is gone, or that predates a reboot) is detached by [`reclaim`], which the next lcd
//! command runs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};
use libcontainerd::oci_spec::runtime::{
    Hook, HookBuilder, Hooks, LinuxNamespaceType, MountBuilder, Spec,
};
use libcontainerd::Id;
use libcontainerd_network::{
    parse_extra_host, Config, ContainerFiles, Mode, Networks, PortMapping, Protocol, Request,
};

use crate::cli::CreateArgs;
use crate::context::Ctx;

/// The container's network request as JSON: `port`, `inspect` and `network rm` read it.
pub const LABEL_NETWORK: &str = "io.lcd.network";
/// The same request in the spec, where the hook finds it (runc passes annotations to hooks).
const ANNOTATION_REQUEST: &str = "io.lcd.network.request";
/// Directories of CNI plugins (colon-separated) in place of Debian's /usr/lib/cni.
const CNI_PATH_ENV: &str = "LCD_CNI_PATH";
/// The container paths lcd bind-mounts its files on.
pub const MOUNTPOINTS: [&str; 3] = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];
/// docker's two namespaced sysctls for a container with a network namespace of its own: a
/// non-root server may bind port 80, and non-root ping works.
const NETNS_SYSCTLS: [(&str, &str); 2] = [
    ("net.ipv4.ip_unprivileged_port_start", "0"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
];

/// lcd's network layer: under `<data root>/network`, plugins from `LCD_CNI_PATH` or /usr/lib/cni.
pub fn layer(ctx: &Ctx) -> Networks {
    layer_at(ctx.data_root.clone())
}

fn layer_at(data_root: PathBuf) -> Networks {
    let mut config = Config::new(data_root.join("network"));
    if let Some(dirs) = std::env::var_os(CNI_PATH_ENV).filter(|d| !d.is_empty()) {
        config.plugin_dirs = std::env::split_paths(&dirs).collect();
    }
    Networks::new(config)
}

/// A container's prepared network: its files exist until the container is made or given up.
pub struct Prepared {
    networks: Networks,
    namespace: String,
    id: String,
}

impl Prepared {
    /// The container was not made: remove its files.
    pub fn abandon(self) {
        let _ = self.networks.remove_files(&self.namespace, &self.id);
    }
}

/// Parse the network flags, check them (network, plugins, host ports), write the container's files
/// and put the network into `spec` and `labels`. `exposed` is the image's ExposedPorts (`-P`).
pub fn apply(
    ctx: &Ctx,
    args: &CreateArgs,
    id: &Id,
    exposed: &[String],
    spec: &mut Spec,
    labels: &mut HashMap<String, String>,
) -> Result<Prepared> {
    let request = request(ctx, args, id, exposed)?;
    let networks = layer(ctx);
    let (request, files) = networks.prepare(request)?;
    let prepared = Prepared {
        networks,
        namespace: request.namespace.clone(),
        id: request.container_id.clone(),
    };
    if let Err(e) = put_in_spec(ctx, &request, &files, spec, labels) {
        prepared.abandon();
        return Err(e);
    }
    Ok(prepared)
}

/// The request the flags make.
fn request(ctx: &Ctx, args: &CreateArgs, id: &Id, exposed: &[String]) -> Result<Request> {
    let flags = &args.network;
    let mode = Mode::parse(&flags.network)?;
    let mut ports = flags
        .publish
        .iter()
        .map(|p| PortMapping::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    if flags.publish_all {
        for port in exposed {
            let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
            let container_port = number
                .parse()
                .map_err(|_| anyhow!("-P: the image exposes {port:?}, which is not a port"))?;
            let protocol = if proto == "udp" {
                Protocol::Udp
            } else {
                Protocol::Tcp
            };
            if !ports
                .iter()
                .any(|p| p.container_port == container_port && p.protocol == protocol)
            {
                ports.push(PortMapping {
                    host_ip: None,
                    host_port: 0,
                    container_port,
                    protocol,
                });
            }
        }
    }
    let dns = flags
        .dns
        .iter()
        .map(|d| {
            d.parse::<IpAddr>()
                .map_err(|_| anyhow!("invalid --dns {d:?}: not an IP address"))
        })
        .collect::<Result<Vec<_>>>()?;
    let extra_hosts = flags
        .add_host
        .iter()
        .map(|h| parse_extra_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    let hostname = match (&args.hostname, &mode) {
        (Some(name), _) => name.clone(),
        // docker: a container on the host's network has the host's name.
        (None, Mode::Host) => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| id.to_string()),
        (None, _) => id.as_str().chars().take(63).collect(),
    };
    Ok(Request {
        namespace: ctx.namespace.clone(),
        container_id: id.to_string(),
        // Its name, which is its id unless a renamed container holds that id (`crate::names`).
        name: args.name.clone().unwrap_or_else(|| id.to_string()),
        hostname,
        mode,
        ports,
        dns,
        extra_hosts,
    })
}

/// The network in the spec: hostname and `HOSTNAME`, the three files bind-mounted, and either the
/// host's namespace or a namespace of its own with docker's sysctls and the attach/detach hooks.
fn put_in_spec(
    ctx: &Ctx,
    request: &Request,
    files: &ContainerFiles,
    spec: &mut Spec,
    labels: &mut HashMap<String, String>,
) -> Result<()> {
    let json = serde_json::to_string(request).context("encode the network request")?;
    spec.set_hostname(Some(request.hostname.clone()));
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push(format!("HOSTNAME={}", request.hostname));
        }
        process.set_env(Some(env));
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for (source, destination) in files.mounts() {
        mounts.push(
            MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(source)
                .options(vec!["rbind".to_string(), "rprivate".to_string()])
                .build()
                .context("bind mount")?,
        );
    }
    spec.set_mounts(Some(mounts));
    let mut linux = spec.linux().clone().unwrap_or_default();
    if request.mode.own_namespace() {
        let mut sysctls = linux.sysctl().clone().unwrap_or_default();
        for (key, value) in NETNS_SYSCTLS {
            sysctls
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
        linux.set_sysctl(Some(sysctls));
        // `--network none` needs no hook: the runtime brings up the loopback of a namespace it
        // creates (runc and crun both do), and a hook is two more execs in every task's create.
        if request.mode.network().is_some() {
            let mut hooks = spec.hooks().clone().unwrap_or_default();
            let error_file = hook_error_file(ctx, &request.container_id);
            add_hook(&mut hooks, ctx, "attach", &error_file, true)?;
            add_hook(&mut hooks, ctx, "detach", &error_file, false)?;
            spec.set_hooks(Some(hooks));
            let mut annotations = spec.annotations().clone().unwrap_or_default();
            annotations.insert(ANNOTATION_REQUEST.to_string(), json.clone());
            spec.set_annotations(Some(annotations));
        }
    } else if let Some(namespaces) = linux.namespaces().clone() {
        let kept = namespaces
            .into_iter()
            .filter(|n| n.typ() != LinuxNamespaceType::Network)
            .collect();
        linux.set_namespaces(Some(kept));
    }
    spec.set_linux(Some(linux));
    // containerd refuses labels over 4096 bytes; `port` falls back to the attachment record.
    if json.len() <= 4000 {
        labels.insert(LABEL_NETWORK.to_string(), json);
    }
    Ok(())
}

/// Where a container's network hook leaves its error for [`hook_error`]: in the container's bundle
/// dir, which goes with the container.
fn hook_error_file(ctx: &Ctx, container_id: &str) -> PathBuf {
    ctx.bundles_dir()
        .join(container_id)
        .join("network-hook.error")
}

/// `lcd --data-root D network-hook --error-file F PHASE`, as a createRuntime (attach) or postStop
/// (detach) hook.
fn add_hook(
    hooks: &mut Hooks,
    ctx: &Ctx,
    phase: &str,
    error_file: &std::path::Path,
    create_runtime: bool,
) -> Result<()> {
    let lcd = std::env::current_exe().context("find lcd's own binary for the network hook")?;
    let mut env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    if let Some(dirs) = std::env::var_os(CNI_PATH_ENV) {
        env.push(format!("{CNI_PATH_ENV}={}", dirs.to_string_lossy()));
    }
    let hook: Hook = HookBuilder::default()
        .path(&lcd)
        .args(vec![
            "lcd".to_string(),
            "--data-root".to_string(),
            ctx.data_root.to_string_lossy().into_owned(),
            "network-hook".to_string(),
            "--error-file".to_string(),
            error_file.to_string_lossy().into_owned(),
            phase.to_string(),
        ])
        .env(env)
        .build()
        .context("network hook")?;
    if create_runtime {
        let mut list = hooks.create_runtime().clone().unwrap_or_default();
        list.push(hook);
        hooks.set_create_runtime(Some(list));
    } else {
        let mut list = hooks.poststop().clone().unwrap_or_default();
        list.push(hook);
        hooks.set_poststop(Some(list));
    }
    Ok(())
}

/// The hook itself: runc's state (id, pid, annotations) on stdin. Errors go to stderr without a
/// newline: runc puts them in its own error, which should stay one line.
pub fn run_hook(data_root: PathBuf, phase: &str) -> Result<()> {
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
        .context("read the OCI state")?;
    let state: serde_json::Value = serde_json::from_str(&input).context("parse the OCI state")?;
    let Some(json) = state["annotations"][ANNOTATION_REQUEST].as_str() else {
        return Ok(());
    };
    let request: Request = serde_json::from_str(json).context("parse the network request")?;
    let networks = layer_at(data_root);
    if phase == "attach" {
        let pid = state["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| anyhow!("the OCI state has no pid"))?;
        networks.attach(&request, pid)?;
    } else {
        networks.detach(&request.namespace, &request.container_id)?;
    }
    Ok(())
}

/// The request a container was made with (`None` for containers made before networks, or with
/// a request too long for a label).
pub fn request_of(labels: &HashMap<String, String>) -> Option<Request> {
    serde_json::from_str(labels.get(LABEL_NETWORK)?).ok()
}

/// docker's `NetworkSettings` for `inspect`: the network, the address while attached, the ports.
pub fn settings(ctx: &Ctx, labels: &HashMap<String, String>, id: &Id) -> serde_json::Value {
    let attachment = layer(ctx)
        .attachment(&ctx.namespace, id.as_str())
        .ok()
        .flatten();
    let Some(request) =
        request_of(labels).or_else(|| attachment.as_ref().map(|a| a.request.clone()))
    else {
        return serde_json::Value::Null;
    };
    let interface = attachment.as_ref().and_then(|a| a.interfaces.first());
    let mut ports = serde_json::Map::new();
    for p in &request.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let binding =
            serde_json::json!({"HostIp": p.host_ip_text(), "HostPort": p.host_port.to_string()});
        if let Some(list) = ports
            .entry(key)
            .or_insert_with(|| serde_json::json!([]))
            .as_array_mut()
        {
            list.push(binding);
        }
    }
    serde_json::json!({
        "Networks": {
            request.mode.name(): {
                "IPAddress": interface.map(|i| i.ip.to_string()).unwrap_or_default(),
                "IPPrefixLen": interface.map(|i| i.prefix).unwrap_or(0),
                "Gateway": interface.map(|i| i.gateway.to_string()).unwrap_or_default(),
                "MacAddress": interface.map(|i| i.mac.clone()).unwrap_or_default(),
            }
        },
        "Ports": ports,
        "Hostname": request.hostname,
    })
}

/// Container `id` is now called `name`: the containers on its network reach it by that name, now
/// if it is attached and whenever it is attached again.
pub fn rename(ctx: &Ctx, id: &Id, name: &str) -> Result<()> {
    layer(ctx).rename(&ctx.namespace, id.as_str(), name)?;
    Ok(())
}

/// Container `id` is gone: detach it if a hook did not, and remove its files.
pub fn forget(ctx: &Ctx, id: &Id) -> Result<()> {
    let networks = layer(ctx);
    networks.detach(&ctx.namespace, id.as_str())?;
    networks.remove_files(&ctx.namespace, id.as_str())?;
    Ok(())
}

/// Detach containers whose process is gone (a crash of lcd, containerd or the host); a failure
/// only warns, as no command should fail for another container's leftovers.
pub fn reclaim(ctx: &Ctx) {
    match layer(ctx).reclaim() {
        Ok(reclaimed) => {
            for id in reclaimed {
                tracing::debug!(container = %id, "released the network of a container that is gone");
            }
        }
        Err(e) => tracing::warn!(error = %e, "releasing stale container networks"),
    }
}

/// A failed task create of container `id` (bundle dir `bundle`) whose network hook failed: say
/// only what the hook said. runc wraps the hook's stderr in its own error ("error running hook #0:
/// ... stderr: lcd: MESSAGE"), crun keeps none of it ("error executing hook `PATH` (exit code:
/// 1)"), so the hook's own copy in the bundle dir comes first (containers made before it had one
/// fall back to runc's quote).
pub fn hook_error(bundle: &std::path::Path, e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if !(text.contains("error running hook") || text.contains("error executing hook")) {
        return e;
    }
    let file = bundle.join("network-hook.error");
    let kept = std::fs::read_to_string(&file).ok();
    let _ = std::fs::remove_file(&file);
    if let Some(said) = kept.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        return anyhow!("network: {said}");
    }
    match text.split_once("stderr: lcd: ") {
        Some((_, said)) => {
            let said = said.lines().next().unwrap_or(said);
            let said = said.split(": unknown").next().unwrap_or(said);
            anyhow!("network: {}", said.trim())
        }
        None => e,
    }
}
