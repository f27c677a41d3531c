//! Checks on the builder's inputs, each naming the option it refuses, and the env merge.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use super::DEFAULT_PATH;
use crate::error::{Error, Result};

/// The CFS period Docker uses for `--cpus`, in microseconds.
pub(super) const CPU_PERIOD: u64 = 100_000;

/// The kernel refuses a CFS quota below 1ms, so with Docker's period `--cpus` cannot go below 0.01.
pub(super) const MIN_CPUS: f64 = 0.01;

/// Docker's `linuxMinMemory`: below this the container's own runtime overhead gets it OOM-killed.
pub(crate) const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// A DNS label (and so a sane hostname) is at most 63 bytes; the kernel's limit is 64.
pub(super) const DEFAULT_HOSTNAME_MAX: usize = 63;

/// `HOST_NAME_MAX`: `sethostname(2)` fails with EINVAL beyond this.
pub(super) const HOSTNAME_MAX: usize = 64;

pub(super) fn validate_rootfs(rootfs: &std::path::Path) -> Result<PathBuf> {
    if !rootfs.is_absolute() {
        return Err(Error::invalid(format!(
            "rootfs {} must be an absolute path",
            rootfs.display()
        )));
    }
    if rootfs.as_os_str().as_bytes().contains(&0) {
        return Err(Error::invalid(format!(
            "rootfs {rootfs:?} must not contain a NUL byte"
        )));
    }
    // The spec is JSON, which cannot carry a non-UTF-8 path.
    if rootfs.to_str().is_none() {
        return Err(Error::invalid(format!(
            "rootfs {} must be valid utf-8",
            rootfs.display()
        )));
    }
    Ok(rootfs.to_path_buf())
}

pub(super) fn validate_args(args: &[String]) -> Result<()> {
    match args.first() {
        None => return Err(Error::invalid("args must not be empty")),
        Some(cmd) if cmd.is_empty() => {
            return Err(Error::invalid(
                "args: the command (args[0]) must not be empty",
            ))
        }
        Some(_) => {}
    }
    // The runtime hands these to execve as C strings, where a NUL would silently cut them.
    if let Some((i, arg)) = args.iter().enumerate().find(|(_, a)| a.contains('\0')) {
        return Err(Error::invalid(format!(
            "args[{i}] {arg:?} must not contain a NUL byte"
        )));
    }
    Ok(())
}

pub(super) fn validate_cwd(cwd: &str) -> Result<()> {
    if cwd.contains('\0') {
        return Err(Error::invalid(format!(
            "cwd {cwd:?} must not contain a NUL byte"
        )));
    }
    if !cwd.starts_with('/') {
        return Err(Error::invalid(format!(
            "cwd {cwd:?} must be an absolute path"
        )));
    }
    Ok(())
}

pub(super) fn validate_hostname(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("hostname must not be empty"));
    }
    if name.contains('\0') {
        return Err(Error::invalid(format!(
            "hostname {name:?} must not contain a NUL byte"
        )));
    }
    if name.len() > HOSTNAME_MAX {
        return Err(Error::invalid(format!(
            "hostname {name:?} is longer than {HOSTNAME_MAX} bytes"
        )));
    }
    Ok(())
}

/// The container id cut to 63 characters (a validated id is ASCII, but cut on a char boundary anyway).
pub(super) fn default_hostname(id: &str) -> String {
    id.chars().take(DEFAULT_HOSTNAME_MAX).collect()
}

/// The default environment with the user's entries applied on top, in order.
pub(super) fn merge_env(terminal: bool, user: &[String]) -> Result<Vec<String>> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    if terminal {
        env.push("TERM=xterm".to_string());
    }
    apply_env(&mut env, user)?;
    Ok(env)
}

/// Docker's `ReplaceOrAppendEnvValues`: each `KEY=VALUE` of `entries` replaces the first `KEY=...` of
/// `env` in place (so order stays stable) or is appended. An index by key keeps this linear: 100k
/// entries must not take minutes. Entries with a NUL byte or without a non-empty KEY are refused.
pub(crate) fn apply_env(env: &mut Vec<String>, entries: &[String]) -> Result<()> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, e) in env.iter().enumerate() {
        if let Some((key, _)) = e.split_once('=') {
            index.entry(key.to_string()).or_insert(i);
        }
    }
    for entry in entries {
        if entry.contains('\0') {
            return Err(Error::invalid(format!(
                "env {entry:?} must not contain a NUL byte"
            )));
        }
        let key = match entry.split_once('=') {
            Some((key, _)) if !key.is_empty() => key,
            _ => {
                return Err(Error::invalid(format!(
                    "env {entry:?} must have the form KEY=VALUE with a non-empty KEY"
                )))
            }
        };
        match index.get(key) {
            Some(&i) => env[i].clone_from(entry),
            None => {
                index.insert(key.to_string(), env.len());
                env.push(entry.clone());
            }
        }
    }
    Ok(())
}

/// The CFS quota for `cpus` CPUs over [`CPU_PERIOD`].
pub(super) fn cpu_quota(cpus: f64) -> Result<i64> {
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(Error::invalid(format!(
            "cpus must be a positive number, got {cpus}"
        )));
    }
    if cpus < MIN_CPUS {
        return Err(Error::invalid(format!(
            "cpus {cpus} is too small: the minimum is {MIN_CPUS}"
        )));
    }
    // Rounding rather than truncating keeps 0.29 * 100000 at 29000, not 28999.
    let quota = (cpus * CPU_PERIOD as f64).round();
    // `as` saturates, so compare before converting; 2^63 is exactly representable as f64.
    if quota >= i64::MAX as f64 {
        return Err(Error::invalid(format!("cpus {cpus} is too large")));
    }
    Ok(quota as i64)
}

/// Docker's `--ulimit` names (docker/go-units; `as` is left out there too).
pub(super) const ULIMITS: &[(&str, PosixRlimitType)] = &[
    ("core", PosixRlimitType::RlimitCore),
    ("cpu", PosixRlimitType::RlimitCpu),
    ("data", PosixRlimitType::RlimitData),
    ("fsize", PosixRlimitType::RlimitFsize),
    ("locks", PosixRlimitType::RlimitLocks),
    ("memlock", PosixRlimitType::RlimitMemlock),
    ("msgqueue", PosixRlimitType::RlimitMsgqueue),
    ("nice", PosixRlimitType::RlimitNice),
    ("nofile", PosixRlimitType::RlimitNofile),
    ("nproc", PosixRlimitType::RlimitNproc),
    ("rss", PosixRlimitType::RlimitRss),
    ("rtprio", PosixRlimitType::RlimitRtprio),
    ("rttime", PosixRlimitType::RlimitRttime),
    ("sigpending", PosixRlimitType::RlimitSigpending),
    ("stack", PosixRlimitType::RlimitStack),
];

/// One `--ulimit name=soft:hard` as the spec's rlimit; -1 is unlimited (`RLIM_INFINITY`).
pub(super) fn ulimit(name: &str, soft: i64, hard: i64) -> Result<PosixRlimit> {
    let typ = ULIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = ULIMITS.iter().map(|(n, _)| *n).collect();
            Error::invalid(format!(
                "ulimit: unknown limit {name:?}; use one of {}",
                names.join(", ")
            ))
        })?;
    for (what, value) in [("soft", soft), ("hard", hard)] {
        if value < -1 {
            return Err(Error::invalid(format!(
                "ulimit {name}: {what} limit {value} is negative (-1 means unlimited)"
            )));
        }
    }
    if hard != -1 && (soft == -1 || soft > hard) {
        let soft_text = if soft == -1 {
            "-1 (unlimited)".to_string()
        } else {
            soft.to_string()
        };
        return Err(Error::invalid(format!(
            "ulimit {name}: soft limit must be less than or equal to hard limit: {soft_text} > {hard}"
        )));
    }
    let value = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(value(soft))
        .hard(value(hard))
        .build()
        .map_err(|e| Error::internal(format!("build rlimit: {e}")).with_source(e))
}

/// Sysctls docker lets a container set (`opts.ValidateSysctl`): those of the container's own IPC
/// and network namespaces.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];
const SYSCTL_PREFIXES: &[&str] = &["net.", "fs.mqueue."];

pub(super) fn validate_sysctl(key: &str, value: &str) -> Result<()> {
    if key.contains(['\0', '=', '/', ' ']) || value.contains('\0') || key.ends_with('.') {
        return Err(Error::invalid(format!(
            "sysctl {key:?}={value:?} is malformed"
        )));
    }
    if IPC_SYSCTLS.contains(&key) || SYSCTL_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "sysctl {key} is not allowed: it is not namespaced, so it would change the host; allowed are net.*, fs.mqueue.* and {}",
        IPC_SYSCTLS.join(", ")
    )))
}

pub(super) fn validate_oom_score_adj(adj: i32) -> Result<()> {
    if (-1000..=1000).contains(&adj) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "oom_score_adj {adj} is out of range: it must be in [-1000, 1000]"
        )))
    }
}

/// Docker's memory checks: `memory` 0 is no limit; swap (memory + swap, -1 for unlimited) needs a
/// memory limit and is at least it; the reservation is at least 6MB and at most the limit.
pub(super) fn validate_memory_set(
    memory: Option<i64>,
    swap: Option<i64>,
    reservation: Option<i64>,
) -> Result<()> {
    if let Some(bytes) = memory {
        if bytes < 0 || (bytes > 0 && bytes < MIN_MEMORY) {
            return Err(Error::invalid(format!(
                "memory limit {bytes} bytes is too small: minimum memory limit allowed is 6MB (0 means no limit)"
            )));
        }
    }
    let memory = memory.unwrap_or(0);
    if let Some(swap) = swap.filter(|&s| s != 0) {
        if swap < -1 {
            return Err(Error::invalid(format!(
                "memory_swap {swap} is invalid: give memory plus swap in bytes, or -1 for unlimited swap"
            )));
        }
        if memory == 0 {
            return Err(Error::invalid(
                "memory_swap needs a memory limit: set memory_limit too",
            ));
        }
        if swap > 0 && swap < memory {
            return Err(Error::invalid(format!(
                "memory_swap {swap} is less than the memory limit {memory}: it counts memory plus swap, so it must be at least the limit"
            )));
        }
    }
    if let Some(reservation) = reservation.filter(|&r| r != 0) {
        if reservation < MIN_MEMORY {
            return Err(Error::invalid(format!(
                "memory_reservation {reservation} bytes is too small: minimum memory reservation allowed is 6MB"
            )));
        }
        if memory > 0 && memory < reservation {
            return Err(Error::invalid(format!(
                "memory_reservation {reservation} is above the memory limit {memory}"
            )));
        }
    }
    Ok(())
}

/// The kernel's range for cgroup v1 `cpu.shares` (runc refuses what the kernel would clamp).
pub(super) const CPU_SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;

pub(super) fn validate_cpu_shares(shares: u64) -> Result<()> {
    if CPU_SHARES.contains(&shares) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "cpu_shares {shares} is out of range: it must be in [{}, {}] (docker's default is 1024)",
            CPU_SHARES.start(),
            CPU_SHARES.end()
        )))
    }
}

/// A cpuset list (`0-3,6`) as CPU numbers.
pub(super) fn parse_cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(lo) || !digits(hi) {
            return None;
        }
        let (lo, hi): (u32, u32) = (lo.parse().ok()?, hi.parse().ok()?);
        if lo > hi || hi - lo > 65_536 {
            return None;
        }
        cpus.extend(lo..=hi);
    }
    Some(cpus)
}

/// `cpuset_cpus`: well formed, and (when the host says which are online) only online CPUs.
pub(super) fn validate_cpuset(list: &str, online: Option<&str>) -> Result<()> {
    let cpus = parse_cpu_list(list).ok_or_else(|| {
        Error::invalid(format!(
            "cpuset_cpus {list:?} is not a CPU list like 0-3 or 0,2"
        ))
    })?;
    if let Some(online_cpus) = online.and_then(parse_cpu_list) {
        if let Some(cpu) = cpus.iter().find(|c| !online_cpus.contains(c)) {
            return Err(Error::invalid(format!(
                "cpuset_cpus {list}: CPU {cpu} is not available (online: {})",
                online.unwrap_or_default().trim()
            )));
        }
    }
    Ok(())
}

/// Where docker mounts its init in the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The host init binary: a regular, executable file, statically linked (it runs in images that
/// have none of the host's libraries, as docker's own `docker-init` is).
pub(super) fn validate_init(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    if !path.is_absolute() {
        return Err(Error::invalid(format!(
            "init {shown} must be an absolute path"
        )));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::invalid(format!("init {shown}: cannot use it: {e}")).with_source(e))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "init {shown} is not a regular file"
        )));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(Error::invalid(format!("init {shown} is not executable")));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Error::invalid(format!("init {shown}: cannot read it: {e}")).with_source(e))?;
    if elf_interpreter(&bytes) {
        return Err(Error::invalid(format!(
            "init {shown} is dynamically linked, so it cannot run in a rootfs without the host's libraries: use a static build (Debian's tini package has /usr/bin/tini-static)"
        )));
    }
    Ok(())
}

/// Whether an ELF image asks for a program interpreter (a `PT_INTERP` segment): a dynamic binary.
/// Anything that is not ELF says no.
pub(super) fn elf_interpreter(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if bytes.get(..4) != Some(b"\x7fELF") {
        return false;
    }
    let little = bytes.get(5) == Some(&1);
    let read = |at: usize, len: usize| -> Option<u64> {
        let field = bytes.get(at..at.checked_add(len)?)?;
        let mut value = 0u64;
        for i in 0..len {
            let b = if little { field[len - 1 - i] } else { field[i] };
            value = (value << 8) | u64::from(b);
        }
        Some(value)
    };
    let (phoff, phentsize, phnum) = match bytes.get(4) {
        Some(1) => (read(0x1c, 4), read(0x2a, 2), read(0x2c, 2)),
        Some(2) => (read(0x20, 8), read(0x36, 2), read(0x38, 2)),
        _ => return false,
    };
    let (Some(phoff), Some(size), Some(count)) = (phoff, phentsize, phnum) else {
        return false;
    };
    (0..count).any(|i| {
        usize::try_from(phoff + i * size)
            .ok()
            .and_then(|at| read(at, 4))
            == Some(u64::from(PT_INTERP))
    })
}
