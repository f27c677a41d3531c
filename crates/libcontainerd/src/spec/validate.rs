//! Checks on the builder's inputs, each naming the option it refuses, and the env merge.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

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

pub(super) fn validate_memory(bytes: i64) -> Result<()> {
    if bytes <= 0 {
        return Err(Error::invalid(format!(
            "memory limit must be positive, got {bytes}"
        )));
    }
    if bytes < MIN_MEMORY {
        return Err(Error::invalid(format!(
            "memory limit {bytes} bytes is too small: minimum memory limit allowed is 6MB"
        )));
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
