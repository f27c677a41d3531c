//! `run`'s and `create`'s container options beyond the command: limits, security settings, devices,
//! ulimits, sysctls, init, and the stop signal and timeout. Parsed with docker's value forms, handed
//! to the library's [`SpecBuilder`], and recorded in labels that `stop` and `inspect` read back.
//!
//! Every bad value is an error naming the option as the user spelled it (`--cap-add`, `--ulimit`,
//! ...), found before anything is created.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use libcontainerd::oci_spec::runtime::Spec;
use libcontainerd::spec::{parse_bytes, parse_device, parse_ulimit, Seccomp, SpecBuilder};
use serde_json::json;

use crate::cli::CreateArgs;

/// The signal `lcd stop` sends first (`--stop-signal`, or the image's StopSignal).
pub const LABEL_STOP_SIGNAL: &str = "io.lcd.stop-signal";
/// The seconds `lcd stop` waits before SIGKILL (`--stop-timeout`).
pub const LABEL_STOP_TIMEOUT: &str = "io.lcd.stop-timeout";
/// The security-related options as given, as JSON in docker's HostConfig names, for `inspect`.
pub const LABEL_HOST_CONFIG: &str = "io.lcd.host-config";

/// The resource limits `lcd update` last set, as OCI LinuxResources JSON (the spec keeps those of
/// `create`); `inspect` shows these.
pub const LABEL_RESOURCES: &str = "io.lcd.resources";

/// Debian's static tini, which `--init` runs as PID 1.
const TINI_STATIC: &str = "/usr/bin/tini-static";

/// What `--security-opt` asked for.
#[derive(Debug, Default, PartialEq)]
pub struct SecurityOpts {
    pub seccomp: Option<Seccomp>,
    pub no_new_privileges: Option<bool>,
    /// An AppArmor profile to put in the spec (only when AppArmor is enabled on this host).
    pub apparmor: Option<String>,
}

/// Parse docker's `--security-opt` values: `seccomp=unconfined|builtin|PROFILE.json`,
/// `no-new-privileges[=true|false]`, `apparmor=PROFILE` (each also with docker's legacy `:`).
/// `apparmor_enabled` says whether this host has AppArmor.
pub fn parse_security_opts(opts: &[String], apparmor_enabled: bool) -> Result<SecurityOpts> {
    let mut parsed = SecurityOpts::default();
    for opt in opts {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            // docker's deprecated form, `no-new-privileges:true`, `seccomp:unconfined`.
            None => match opt.split_once(':') {
                Some((k, v)) => (k, Some(v)),
                None => (opt.as_str(), None),
            },
        };
        match (key, value) {
            ("seccomp", Some("unconfined")) => parsed.seccomp = Some(Seccomp::Unconfined),
            ("seccomp", Some("builtin")) => parsed.seccomp = Some(Seccomp::Default),
            ("seccomp", Some(path)) if !path.is_empty() => {
                parsed.seccomp = Some(Seccomp::File(PathBuf::from(path)));
            }
            ("no-new-privileges", None) => parsed.no_new_privileges = Some(true),
            ("no-new-privileges", Some(v)) => {
                parsed.no_new_privileges = Some(parse_bool(v).ok_or_else(|| {
                    anyhow!("--security-opt {opt}: invalid value {v:?}: use true or false")
                })?)
            }
            ("apparmor", Some(profile)) if !profile.is_empty() => {
                if apparmor_enabled {
                    parsed.apparmor = Some(profile.to_string());
                } else if profile != "unconfined" {
                    // docker accepts unconfined anywhere: without AppArmor there is nothing to undo.
                    bail!("--security-opt {opt}: AppArmor is not enabled on this host (see /sys/module/apparmor/parameters/enabled); use apparmor=unconfined or drop the option");
                }
            }
            ("label", _) => bail!(
                "--security-opt {opt}: SELinux labels are not supported by lcd"
            ),
            _ => bail!(
                "--security-opt {opt}: unknown or malformed option; lcd takes seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false] and apparmor=PROFILE"
            ),
        }
    }
    Ok(parsed)
}

/// Go's `strconv.ParseBool`, as docker reads the option.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Whether this host has AppArmor enabled.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

/// The host's init for `--init`: `/usr/bin/tini-static`, else `docker-init` or `tini-static` on
/// PATH.
pub fn find_init() -> Result<PathBuf> {
    if Path::new(TINI_STATIC).is_file() {
        return Ok(PathBuf::from(TINI_STATIC));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["docker-init", "tini-static"] {
            let candidate = dir.join(name);
            if candidate.is_file() && candidate.is_absolute() {
                return Ok(candidate);
            }
        }
    }
    bail!("--init: no init binary: install Debian's package tini (it has {TINI_STATIC}), or put a static docker-init or tini-static on PATH")
}

/// A size flag: docker's units, `-1` where the option allows it.
fn bytes(flag: &str, value: &str, minus_one: bool) -> Result<i64> {
    if minus_one && value == "-1" {
        return Ok(-1);
    }
    parse_bytes(value).map_err(|e| anyhow!("{flag}: {e}"))
}

/// Add the options that mean the same for an image and a rootfs directory to `builder` and build
/// the spec; a bad value is an error naming its option.
pub fn build(mut builder: SpecBuilder, args: &CreateArgs) -> Result<Spec> {
    let security = parse_security_opts(&args.security_opt, apparmor_enabled())?;
    if let Some(hostname) = &args.hostname {
        builder = builder.hostname(hostname.clone());
    }
    if let Some(memory) = &args.memory {
        builder = builder.memory_limit(bytes("--memory", memory, false)?);
    }
    if let Some(swap) = &args.memory_swap {
        builder = builder.memory_swap(bytes("--memory-swap", swap, true)?);
    }
    if let Some(reservation) = &args.memory_reservation {
        builder = builder.memory_reservation(bytes("--memory-reservation", reservation, false)?);
    }
    if args.oom_kill_disable {
        builder = builder.oom_kill_disable(true);
    }
    if let Some(adj) = args.oom_score_adj {
        builder = builder.oom_score_adj(adj);
    }
    if let Some(size) = &args.shm_size {
        builder = builder.shm_size(bytes("--shm-size", size, false)?);
    }
    if let Some(cpus) = args.cpus {
        builder = builder.cpus(cpus);
    }
    if let Some(shares) = args.cpu_shares {
        builder = builder.cpu_shares(shares);
    }
    if let Some(list) = &args.cpuset_cpus {
        builder = builder.cpuset_cpus(list.clone());
    }
    if let Some(pids) = args.pids_limit {
        builder = builder.pids_limit(pids);
    }
    if let Some(seccomp) = security.seccomp {
        builder = builder.seccomp(seccomp);
    }
    if let Some(yes) = security.no_new_privileges {
        builder = builder.no_new_privileges(yes);
    }
    for cap in &args.cap_add {
        builder = builder.cap_add(cap.clone());
    }
    for cap in &args.cap_drop {
        builder = builder.cap_drop(cap.clone());
    }
    builder = builder.privileged(args.privileged);
    for device in &args.device {
        let (host, container, perms) =
            parse_device(device).map_err(|e| anyhow!("--device: {e}"))?;
        builder = builder.device(host, container, perms);
    }
    for ulimit in &args.ulimit {
        let (name, soft, hard) = parse_ulimit(ulimit).map_err(|e| anyhow!("--ulimit: {e}"))?;
        builder = builder.ulimit(name, soft, hard);
    }
    for sysctl in &args.sysctl {
        let (key, value) = sysctl.split_once('=').ok_or_else(|| {
            anyhow!("--sysctl {sysctl}: expected KEY=VALUE, e.g. net.ipv4.ip_forward=1")
        })?;
        builder = builder.sysctl(key, value);
    }
    for group in &args.group_add {
        builder = builder.group_add(group);
    }
    if args.init {
        builder = builder.init(find_init()?);
    }
    let mut spec = builder
        .readonly_rootfs(args.read_only)
        .terminal(args.tty)
        .build()
        .map_err(|e| anyhow!("{}", flag_names(&e.to_string())))?;
    if let Some(profile) = security.apparmor {
        if let Some(process) = spec.process_mut() {
            process.set_apparmor_profile(Some(profile));
        }
    }
    Ok(spec)
}

/// The builder's option names in a message as lcd's flags: `cap_add` is `--cap-add`.
pub fn flag_names(message: &str) -> String {
    const ANYWHERE: [(&str, &str); 10] = [
        ("cap_add", "--cap-add"),
        ("cap_drop", "--cap-drop"),
        ("group_add", "--group-add"),
        ("memory_swap", "--memory-swap"),
        ("memory_reservation", "--memory-reservation"),
        ("oom_score_adj", "--oom-score-adj"),
        ("cpu_shares", "--cpu-shares"),
        ("cpuset_cpus", "--cpuset-cpus"),
        ("shm_size", "--shm-size"),
        ("Seccomp::Unconfined", "--security-opt seccomp=unconfined"),
    ];
    const LEADING: [(&str, &str); 12] = [
        ("ulimit", "--ulimit"),
        ("sysctl", "--sysctl"),
        ("device", "--device"),
        ("seccomp", "--security-opt seccomp"),
        ("privileged", "--privileged"),
        ("init", "--init"),
        ("user", "--user"),
        ("memory limit", "--memory: memory limit"),
        ("cpus", "--cpus"),
        ("hostname", "--hostname"),
        ("cwd", "--workdir"),
        ("env", "--env"),
    ];
    let mut out = message.to_string();
    for (name, flag) in LEADING {
        if let Some(rest) = out.strip_prefix(name) {
            if rest.starts_with([' ', ':']) {
                out = format!("{flag}{rest}");
                break;
            }
        }
    }
    for (name, flag) in ANYWHERE {
        out = out.replace(name, flag);
    }
    out
}

/// The labels that record `--stop-signal`, `--stop-timeout` (the image's StopSignal when no flag
/// gives one) and the security options as given; checks the signal.
pub fn labels(
    args: &CreateArgs,
    image_stop_signal: Option<&str>,
) -> Result<HashMap<String, String>> {
    let mut labels = HashMap::new();
    let (signal, flag) = match (&args.stop_signal, image_stop_signal) {
        (Some(s), _) => (Some(s.as_str()), "--stop-signal"),
        (None, Some(s)) => (Some(s), "the image's StopSignal"),
        (None, None) => (None, ""),
    };
    if let Some(signal) = signal {
        let parsed: libcontainerd::Signal = signal
            .parse()
            .map_err(|e| anyhow!("{flag} {signal}: {e}"))?;
        labels.insert(LABEL_STOP_SIGNAL.to_string(), parsed.to_string());
    }
    if let Some(timeout) = args.stop_timeout {
        labels.insert(LABEL_STOP_TIMEOUT.to_string(), timeout.to_string());
    }
    let host_config = json!({
        "Privileged": args.privileged,
        "CapAdd": args.cap_add,
        "CapDrop": args.cap_drop,
        "SecurityOpt": args.security_opt,
        "Devices": args.device,
        "Ulimits": args.ulimit,
        "Sysctls": args.sysctl,
        "GroupAdd": args.group_add,
        "Init": args.init,
    });
    let text = host_config.to_string();
    // containerd refuses labels over 4096 bytes: keep the record within that.
    if text.len() <= 4000 {
        labels.insert(LABEL_HOST_CONFIG.to_string(), text);
    }
    Ok(labels)
}

/// Read back a container's stop signal and timeout: `(signal, seconds)`, where a negative timeout
/// waits forever.
pub fn stop_settings(labels: &HashMap<String, String>) -> (Option<String>, Option<i64>) {
    (
        labels.get(LABEL_STOP_SIGNAL).cloned(),
        labels.get(LABEL_STOP_TIMEOUT).and_then(|t| t.parse().ok()),
    )
}

/// Parse a JSON label back; `Null` when absent or unreadable.
pub fn host_config(labels: &HashMap<String, String>) -> serde_json::Value {
    labels
        .get(LABEL_HOST_CONFIG)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The container's resource limits now: those `lcd update` recorded, else the spec's.
pub fn resources(
    spec: &Spec,
    labels: &HashMap<String, String>,
) -> libcontainerd::oci_spec::runtime::LinuxResources {
    labels
        .get(LABEL_RESOURCES)
        .and_then(|text| serde_json::from_str(text).ok())
        .or_else(|| spec.linux().as_ref()?.resources().clone())
        .unwrap_or_default()
}

/// `current` with the limits `update` sets replaced: what a container has after an update.
pub fn merge_resources(
    mut current: libcontainerd::oci_spec::runtime::LinuxResources,
    update: &libcontainerd::oci_spec::runtime::LinuxResources,
) -> libcontainerd::oci_spec::runtime::LinuxResources {
    if let Some(new) = update.memory() {
        let mut memory = (*current.memory()).unwrap_or_default();
        if new.limit().is_some() {
            memory.set_limit(new.limit());
        }
        if new.swap().is_some() {
            memory.set_swap(new.swap());
        }
        current.set_memory(Some(memory));
    }
    if let Some(new) = update.cpu() {
        let mut cpu = current.cpu().clone().unwrap_or_default();
        if new.quota().is_some() {
            cpu.set_quota(new.quota()).set_period(new.period());
        }
        if new.shares().is_some() {
            cpu.set_shares(new.shares());
        }
        if new.cpus().is_some() {
            cpu.set_cpus(new.cpus().clone());
        }
        current.set_cpu(Some(cpu));
    }
    if update.pids().is_some() {
        current.set_pids(*update.pids());
    }
    current
}

/// docker's HostConfig resource fields of `resources` (0 or "" where unset, as docker shows them).
pub fn resource_fields(
    resources: &libcontainerd::oci_spec::runtime::LinuxResources,
) -> serde_json::Map<String, serde_json::Value> {
    let memory = resources.memory().as_ref();
    let cpu = resources.cpu().as_ref();
    let quota = cpu.and_then(|c| c.quota()).unwrap_or(0);
    let period = cpu.and_then(|c| c.period()).unwrap_or(0);
    let nano_cpus = if quota > 0 && period > 0 {
        quota.saturating_mul(1_000_000_000) / period as i64
    } else {
        0
    };
    let fields = json!({
        "Memory": memory.and_then(|m| m.limit()).filter(|l| *l > 0).unwrap_or(0),
        "MemorySwap": memory.and_then(|m| m.swap()).unwrap_or(0),
        "MemoryReservation": memory.and_then(|m| m.reservation()).unwrap_or(0),
        "NanoCpus": nano_cpus,
        "CpuShares": cpu.and_then(|c| c.shares()).unwrap_or(0),
        "CpuQuota": quota,
        "CpuPeriod": period,
        "CpusetCpus": cpu.and_then(|c| c.cpus().clone()).unwrap_or_default(),
        "PidsLimit": resources.pids().as_ref().map(|p| p.limit()).filter(|l| *l > 0),
    });
    match fields {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str], apparmor: bool) -> Result<SecurityOpts> {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse_security_opts(&owned, apparmor)
    }

    #[test]
    fn security_opts_in_dockers_forms() {
        let p = opts(&["seccomp=unconfined", "no-new-privileges"], false).unwrap();
        assert_eq!(p.seccomp, Some(Seccomp::Unconfined));
        assert_eq!(p.no_new_privileges, Some(true));
        let p = opts(&["no-new-privileges:true", "seccomp=/p.json"], false).unwrap();
        assert_eq!(p.no_new_privileges, Some(true));
        assert_eq!(p.seccomp, Some(Seccomp::File("/p.json".into())));
        let p = opts(&["no-new-privileges=false"], false).unwrap();
        assert_eq!(p.no_new_privileges, Some(false));
        assert!(opts(&["no-new-privileges=maybe"], false).is_err());
        assert!(opts(&["seccomp"], false).is_err());
        assert!(opts(&["bogus=1"], false).is_err());
    }

    #[test]
    fn apparmor_without_apparmor() {
        assert_eq!(
            opts(&["apparmor=unconfined"], false).unwrap().apparmor,
            None
        );
        let e = opts(&["apparmor=docker-default"], false).unwrap_err();
        assert!(e.to_string().contains("AppArmor is not enabled"), "{e}");
        assert_eq!(
            opts(&["apparmor=docker-default"], true)
                .unwrap()
                .apparmor
                .as_deref(),
            Some("docker-default")
        );
    }

    #[test]
    fn builder_names_become_flags() {
        assert_eq!(
            flag_names("cap_add: unknown capability \"FOO\""),
            "--cap-add: unknown capability \"FOO\""
        );
        assert_eq!(
            flag_names("ulimit nofile: soft limit must be less"),
            "--ulimit nofile: soft limit must be less"
        );
        assert_eq!(
            flag_names("privileged: cap_drop ALL contradicts it"),
            "--privileged: --cap-drop ALL contradicts it"
        );
        assert_eq!(
            flag_names("user: unable to find user x"),
            "--user: unable to find user x"
        );
    }
}
