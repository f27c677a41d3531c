//! The CRIU binary: finding it, asking it whether this kernel can be checkpointed (`criu check`),
//! and reading why a dump failed from its log. runc runs criu for the shim; which binary is either
//! the container's [`RuncOptions::criu_path`](crate::RuncOptions::criu_path) or `criu` in the
//! shim's (containerd's) `PATH`.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// Where to look for criu when `PATH` is unset: `/usr/local/sbin` first, where a criu built from
/// source goes ahead of the distribution's.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The first `criu` in `PATH` (an executable file), as runc would find it with the same `PATH`.
pub fn find_criu() -> Option<PathBuf> {
    let search = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&search)
        .map(|dir| dir.join("criu"))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Check that criu can checkpoint on this machine: `binary` (or the first `criu` in `PATH`) must
/// exist and pass `criu check`. Returns the binary's path. A missing criu is
/// [`ErrorKind::NotFound`], one that fails its check [`ErrorKind::FailedPrecondition`] with criu's
/// first error (e.g. bookworm's criu 3.17 on a kernel with `[vvar_vclock]`: "vdso: Unexpected rt
/// vDSO area bounds"). Runs a process: call it off the async executor if that matters.
pub fn check_criu(binary: Option<&Path>) -> Result<PathBuf> {
    let path = match binary {
        Some(path) if path.components().count() > 1 => {
            if !is_executable(path) {
                return Err(Error::not_found(format!(
                    "criu {} is not an executable file: install criu 4.x there or name another",
                    path.display()
                )));
            }
            path.to_path_buf()
        }
        _ => find_criu().ok_or_else(|| {
            Error::not_found("criu is not installed (no criu in PATH): install criu 4.x")
        })?,
    };
    let output = std::process::Command::new(&path)
        .arg("check")
        .output()
        .map_err(|e| Error::io(format!("run {} check", path.display()), e))?;
    if output.status.success() {
        return Ok(path);
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let reason = first_error_line(&text).unwrap_or_else(|| {
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .trim()
            .to_string()
    });
    Err(Error::new(
        ErrorKind::FailedPrecondition,
        format!(
            "criu {} cannot checkpoint on this kernel (`criu check` fails: {reason}): install criu 4.x",
            path.display()
        ),
    ))
}

/// The first error criu wrote into the log file at `path`, without its timestamp.
pub(super) fn first_log_error(path: &Path) -> Option<String> {
    first_error_line(&std::fs::read_to_string(path).ok()?)
}

/// The first "Error" line of criu's output: the cause (later ones are its consequences). Lines
/// about helper processes ("exited, status=1") say nothing about why, and criu 4 logs failing to
/// raise its own RLIMIT_NOFILE inside a container as an error yet carries on.
fn first_error_line(log: &str) -> Option<String> {
    let line = log.lines().find(|l| {
        l.contains("Error") && !l.contains("exited, status=") && !l.contains("RLIMIT_NOFILE")
    })?;
    // Drop criu's "(00.016523) " timestamp.
    let line = line.trim();
    let text = match line.strip_prefix('(').and_then(|l| l.split_once(") ")) {
        Some((_, rest)) => rest,
        None => line,
    };
    Some(text.to_string())
}

/// Whether runc's error says it could not run the criu binary at all.
pub(super) fn is_missing_binary_error(message: &str) -> bool {
    message.contains("executable file not found")
        || (message.contains("criu") && message.contains("no such file or directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_line_is_the_cause() {
        let log = "(00.000) Version: 3.17\n(00.001) Error (criu/util.c:642): exited, status=1\n(00.03) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n(00.01) Error (criu/vdso.c:613): vdso: Unexpected rt vDSO area bounds\n(00.02) Error (criu/kerndat.c:1615): later\n";
        assert_eq!(
            first_error_line(log).as_deref(),
            Some("Error (criu/vdso.c:613): vdso: Unexpected rt vDSO area bounds")
        );
        assert_eq!(first_error_line("Looks good.\n"), None);
    }

    #[test]
    fn a_missing_or_failing_criu_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_criu(Some(&dir.path().join("criu"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.to_string().contains("is not an executable file"),
            "{err}"
        );

        let broken = dir.path().join("broken-criu");
        std::fs::write(
            &broken,
            "#!/bin/sh\necho 'Error (criu/kerndat.c:1): vdso: Unexpected rt vDSO area bounds' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_criu(Some(&broken)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        assert!(err.to_string().contains("vDSO area bounds"), "{err}");
        assert!(err.to_string().contains("broken-criu"), "{err}");
    }

    #[test]
    fn runc_messages_about_a_missing_criu_are_recognised() {
        assert!(is_missing_binary_error(
            "exec: \"criu\": executable file not found in $PATH"
        ));
        assert!(is_missing_binary_error(
            "fork/exec /nope/criu: no such file or directory"
        ));
        assert!(!is_missing_binary_error("criu failed: type DUMP errno 0"));
    }
}
