//! Running one CNI plugin: the binary found on the plugin path, the command in its environment, the
//! network config on stdin, the result (or CNI's error object) on stdout. This is the whole of the
//! CNI protocol a runtime needs; the Rust CNI crates are for writing plugins, not calling them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

/// The Debian package the plugins come from, for the error when one is missing.
const PACKAGE: &str = "containernetworking-plugins";

/// ADD, DEL or CHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Del,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Del => "DEL",
        }
    }
}

/// Where a plugin runs: the container, its namespace, the interface name inside.
pub(crate) struct Invocation<'a> {
    pub container_id: &'a str,
    /// Empty for a DEL whose namespace is gone (the plugins then release what they can).
    pub netns: &'a Path,
    pub ifname: &'a str,
}

/// Find plugin `kind` in `dirs`; missing is an error naming the package.
pub(crate) fn find(kind: &str, dirs: &[PathBuf]) -> Result<PathBuf> {
    if kind.contains('/') || kind.is_empty() {
        return Err(Error::invalid(format!("invalid CNI plugin type {kind:?}")));
    }
    dirs.iter()
        .map(|d| d.join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            Error::new(
                ErrorKind::Plugin,
                format!(
                    "CNI plugin {kind:?} not found in {}: install Debian's package {PACKAGE}",
                    searched.join(":")
                ),
            )
        })
}

/// Run plugin `config["type"]` with `command`; returns its result (`Null` for DEL).
pub(crate) fn run(
    command: Op,
    config: &Value,
    at: &Invocation<'_>,
    dirs: &[PathBuf],
) -> Result<Value> {
    let kind = config["type"].as_str().unwrap_or_default();
    let binary = find(kind, dirs)?;
    let path = std::env::join_paths(dirs).map_err(|e| Error::io("CNI_PATH", e))?;
    let stdin = serde_json::to_vec(config).map_err(|e| Error::io("encode plugin config", e))?;
    let mut child = Command::new(&binary)
        .env_clear()
        // Plugins look for iptables and modprobe on PATH.
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("CNI_COMMAND", command.as_str())
        .env("CNI_CONTAINERID", at.container_id)
        .env("CNI_NETNS", at.netns)
        .env("CNI_IFNAME", at.ifname)
        .env("CNI_PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::new(
                ErrorKind::Plugin,
                format!("run CNI plugin {}: {e}", binary.display()),
            )
        })?;
    if let Some(mut input) = child.stdin.take() {
        // A plugin that fails early may not read all of it: its exit status says what happened.
        let _ = input.write_all(&stdin);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::new(ErrorKind::Plugin, format!("run CNI plugin {kind}: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(
            ErrorKind::Plugin,
            format!(
                "CNI plugin {kind} {} failed: {}",
                command.as_str(),
                failure_message(&out.stdout, &out.stderr)
            ),
        ));
    }
    if command == Op::Del || out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::new(
            ErrorKind::Plugin,
            format!(
                "CNI plugin {kind} {}: unreadable result: {e}",
                command.as_str()
            ),
        )
    })
}

/// CNI's error object (`{"code", "msg", "details"}`) on stdout, else stderr, on one line.
fn failure_message(stdout: &[u8], stderr: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(stdout) {
        Ok(v) => {
            let msg = v["msg"].as_str().unwrap_or_default();
            match v["details"].as_str().filter(|d| !d.is_empty()) {
                Some(d) => format!("{msg}: {d}"),
                None => msg.to_string(),
            }
        }
        Err(_) => String::from_utf8_lossy(stderr).into_owned(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "no message".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_plugin_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let e = find("bridge", &[dir.path().to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("containernetworking-plugins"), "{e}");
        assert!(e.to_string().contains("\"bridge\""), "{e}");
    }

    #[test]
    fn the_error_object_becomes_one_line() {
        let out = br#"{"code":7,"msg":"failed to set bridge addr","details":"could not add IP\naddress"}"#;
        assert_eq!(
            failure_message(out, b""),
            "failed to set bridge addr: could not add IP address"
        );
        assert_eq!(failure_message(b"", b"panic:\n boom\n"), "panic: boom");
    }
}
