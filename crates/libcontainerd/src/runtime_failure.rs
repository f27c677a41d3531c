//! What an OCI runtime's failure means, whichever runtime said it: a command that cannot be run
//! (docker's 126 and 127), a host the runtime refuses, a memory limit the kernel refuses.
//!
//! containerd passes the runtime's own words up unchanged (inside its "OCI runtime create failed:"
//! wrapper), and runc and crun word the same failures differently: runc says `exec: "nope":
//! executable file not found in $PATH`, crun ``executable file `nope` not found in $PATH: No such
//! file or directory``. Each classification below lists both runtimes' phrases, matched without
//! regard to case (runc writes the kernel's reasons in lowercase, crun capitalised), so an engine
//! gets the same answer whichever runtime runs its containers. The unit tests hold the messages as
//! runc 1.1 and crun 1.8 print them.

use crate::error::{Error, ErrorKind};

/// Why a process could not be started, as docker distinguishes it (exit codes 127 and 126).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecFailure {
    /// The command does not exist in the container.
    NotFound,
    /// The command exists but cannot be executed.
    NotExecutable,
}

impl ExecFailure {
    /// Classify the runtime's error text (runc's or crun's messages).
    pub fn classify(message: &str) -> Option<ExecFailure> {
        let m = message.to_ascii_lowercase();
        // "unable to retrieve OCI runtime error ... exec: \"runc\": not found" is the runtime
        // itself missing, not the container's command: an lcd error (125), not a 127.
        if m.contains("unable to retrieve oci runtime error") {
            return None;
        }
        // crun names the two cases itself: "executable file `x` not found in $PATH" (ENOENT) and
        // "open executable: <reason>" (anything else: a directory, no execute permission).
        if m.contains("executable file `") && m.contains("` not found") {
            return Some(ExecFailure::NotFound);
        }
        if m.contains("open executable: ") {
            return Some(ExecFailure::NotExecutable);
        }
        // runc's "exec: \"x\": <reason>" (and "starting container process" before runc 1.1), and
        // crun's execve failure "exec container process `x`: <reason>".
        if !(m.contains("exec") || m.contains("starting container process")) {
            return None;
        }
        if m.contains("executable file not found") || m.contains("no such file or directory") {
            Some(ExecFailure::NotFound)
        } else if m.contains("permission denied")
            || m.contains("exec format error")
            || m.contains("is a directory")
            // crun's answer for a directory (its "open executable" fails with EPERM), and what
            // an LSM or seccomp refusal of execve says.
            || m.contains("operation not permitted")
        {
            Some(ExecFailure::NotExecutable)
        } else {
            None
        }
    }

    /// Of an error returned by create or start, if it is one.
    pub fn of(error: &Error) -> Option<ExecFailure> {
        match error.kind() {
            ErrorKind::NotFound | ErrorKind::PermissionDenied => {
                ExecFailure::classify(error.message())
            }
            _ => None,
        }
    }
}

/// Whether the runtime refused to run anything on this host because of its cgroup layout: crun
/// does not support a hybrid host (cgroup v1 controllers, plus a cgroup v2 hierarchy at
/// `/sys/fs/cgroup/unified` that has controllers of its own); runc does.
pub fn refuses_hybrid_cgroups(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("cgroups in hybrid mode not supported")
}

/// Why the kernel refused a new memory limit of a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryRefusal {
    /// The limit is below what the container uses (EBUSY).
    BelowUsage,
    /// On cgroup v1, the limit is above the memory+swap limit (EINVAL).
    AboveSwapLimit,
}

impl MemoryRefusal {
    /// Classify a failed resource update's text. runc: "unable to set memory limit to N (current
    /// usage: ...)" and "... memory.limit_in_bytes: invalid argument"; crun: "writing file
    /// `memory.limit_in_bytes`: Device or resource busy" (or "Invalid argument"), and on cgroup v2
    /// "cannot set the memory limit lower than its current usage" and "cannot set memory+swap
    /// limit less than the memory limit".
    pub fn classify(message: &str) -> Option<MemoryRefusal> {
        let m = message.to_ascii_lowercase();
        let limit_file = m.contains("memory.limit_in_bytes") || m.contains("memory.max");
        if m.contains("unable to set memory limit")
            || m.contains("memory limit lower than its current usage")
            || (limit_file && m.contains("device or resource busy"))
        {
            Some(MemoryRefusal::BelowUsage)
        } else if (m.contains("memory.limit_in_bytes") && m.contains("invalid argument"))
            || m.contains("memory+swap limit less than the memory limit")
        {
            Some(MemoryRefusal::AboveSwapLimit)
        } else {
            None
        }
    }
}

/// Map a create/start failure of `command` (the process's `args[0]`, when known): a command that
/// cannot be run, a host the runtime refuses, or else containerd's classification.
pub(crate) fn start_error(context: String, command: Option<&str>, status: tonic::Status) -> Error {
    let message = status.message();
    if refuses_hybrid_cgroups(message) {
        return Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "{context}: the OCI runtime refuses this host's hybrid cgroup layout (cgroup v1 with controllers on the cgroup v2 hierarchy too; crun does, runc does not): {}",
                runtime_reason(message, None)
            ),
        )
        .with_source(status);
    }
    let kind = match ExecFailure::classify(message) {
        Some(ExecFailure::NotFound) => ErrorKind::NotFound,
        Some(ExecFailure::NotExecutable) => ErrorKind::PermissionDenied,
        None => return Error::from_status(context, status),
    };
    Error::new(
        kind,
        format!("{context}: {}", runtime_reason(message, command)),
    )
    .with_source(status)
}

/// The useful tail of the runtime's nested error, in runc's form whichever runtime said it, so
/// that a command that cannot run reads the same under both: runc's `exec: "x": executable file
/// not found in $PATH` as it is; crun's words (what it said after containerd's "OCI runtime create
/// failed: ") rewritten to that form, with the kernel's reason in lowercase as runc writes it.
/// crun's "open executable: Permission denied" does not say which file: `command` names it.
fn runtime_reason(message: &str, command: Option<&str>) -> String {
    let message = message.trim().trim_end_matches(": unknown");
    if let Some(i) = message.rfind("exec: ") {
        return message[i..].to_string();
    }
    let said = match message.rfind("OCI runtime ") {
        Some(i) => message[i..]
            .split_once("failed: ")
            .map_or(&message[i..], |(_, rest)| rest),
        None => message,
    };
    let exec = |name: &str, reason: &str| format!("exec: {name:?}: {reason}");
    // "executable file `x` not found in $PATH: No such file or directory"
    if let Some(rest) = said.strip_prefix("executable file `") {
        if let Some((name, _)) = rest.split_once("` not found") {
            return exec(name, "executable file not found in $PATH");
        }
    }
    // "open executable: Permission denied"
    if let Some(reason) = said.strip_prefix("open executable: ") {
        return match command {
            Some(name) => exec(name, &kernel_words(reason)),
            None => format!("open executable: {}", kernel_words(reason)),
        };
    }
    // "exec container process `x`: Exec format error", and the same with "(missing dynamic
    // library?) " before the name.
    if let Some(rest) = said.strip_prefix("exec container process ") {
        let hint = rest.starts_with("(missing dynamic library?)");
        if let Some((name, reason)) = rest
            .split_once('`')
            .and_then(|(_, named)| named.split_once("`: "))
        {
            let reason = kernel_words(reason);
            let reason = if hint {
                format!("{reason} (missing dynamic library?)")
            } else {
                reason
            };
            return exec(name, &reason);
        }
    }
    said.to_string()
}

/// The C library's text for an errno ("Permission denied", as crun prints it) as Go's (and so
/// runc's, docker's) lowercase "permission denied".
fn kernel_words(reason: &str) -> String {
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // runc 1.1.5's and crun 1.8.1's words, as containerd 1.6's shim passes them up.
    const RUNC_NOT_FOUND: &str = "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown";
    const RUNC_DENIED: &str = "OCI runtime create failed: runc create failed: unable to start container process: exec: \"/etc/passwd\": permission denied: unknown";
    const RUNC_DIRECTORY: &str = "OCI runtime create failed: runc create failed: unable to start container process: exec: \"/bin\": is a directory: unknown";
    const RUNC_NO_PATH: &str = "OCI runtime create failed: runc create failed: unable to start container process: exec: \"/nope/x\": stat /nope/x: no such file or directory: unknown";
    const RUNC_EXEC_NOT_FOUND: &str = "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown";
    const RUNC_MISSING: &str = "OCI runtime create failed: unable to retrieve OCI runtime error (open /run/x/log.json: no such file or directory): exec: \"runc\": executable file not found in $PATH: unknown";
    const CRUN_NOT_FOUND: &str = "failed to create shim task: OCI runtime create failed: executable file `nope` not found in $PATH: No such file or directory: unknown";
    const CRUN_NO_PATH: &str = "OCI runtime create failed: executable file `/nope/x` not found in $PATH: No such file or directory: unknown";
    const CRUN_DENIED: &str =
        "failed to create shim task: OCI runtime create failed: open executable: Permission denied";
    const CRUN_DIRECTORY: &str =
        "OCI runtime create failed: open executable: Operation not permitted: unknown";
    const CRUN_FORMAT: &str =
        "OCI runtime create failed: exec container process `/badelf`: Exec format error: unknown";
    const CRUN_NO_LOADER: &str = "OCI runtime create failed: exec container process (missing dynamic library?) `/app`: No such file or directory: unknown";
    const CRUN_EXEC_NOT_FOUND: &str = "OCI runtime exec failed: executable file `nope` not found in $PATH: No such file or directory: unknown";
    const CRUN_MISSING: &str = "OCI runtime create failed: unable to retrieve OCI runtime error (open /run/x/log.json: no such file or directory): exec: \"/usr/bin/crun\": stat /usr/bin/crun: no such file or directory: unknown";
    const CRUN_HYBRID: &str = "failed to create shim task: OCI runtime create failed: cgroups in hybrid mode not supported, drop all controllers from cgroupv2: unknown";

    #[test]
    fn a_missing_command_is_not_found_in_both_runtimes_words() {
        for message in [
            RUNC_NOT_FOUND,
            RUNC_NO_PATH,
            RUNC_EXEC_NOT_FOUND,
            CRUN_NOT_FOUND,
            CRUN_NO_PATH,
            CRUN_NO_LOADER,
            CRUN_EXEC_NOT_FOUND,
        ] {
            assert_eq!(
                ExecFailure::classify(message),
                Some(ExecFailure::NotFound),
                "{message}"
            );
        }
    }

    #[test]
    fn a_command_that_cannot_be_executed_is_not_executable_in_both_runtimes_words() {
        for message in [
            RUNC_DENIED,
            RUNC_DIRECTORY,
            CRUN_DENIED,
            CRUN_DIRECTORY,
            CRUN_FORMAT,
        ] {
            assert_eq!(
                ExecFailure::classify(message),
                Some(ExecFailure::NotExecutable),
                "{message}"
            );
        }
    }

    #[test]
    fn a_missing_runtime_or_another_failure_is_no_exec_failure() {
        for message in [
            RUNC_MISSING,
            CRUN_MISSING,
            CRUN_HYBRID,
            "container not found",
            "OCI runtime create failed: writing file `pids.max`: Invalid argument: unknown",
        ] {
            assert_eq!(ExecFailure::classify(message), None, "{message}");
        }
    }

    #[test]
    fn the_reason_reads_the_same_in_runc_s_form_under_both_runtimes() {
        for (runc, crun, command) in [
            (RUNC_NOT_FOUND, CRUN_NOT_FOUND, "nope"),
            (RUNC_EXEC_NOT_FOUND, CRUN_EXEC_NOT_FOUND, "nope"),
            (RUNC_DENIED, CRUN_DENIED, "/etc/passwd"),
        ] {
            assert_eq!(
                runtime_reason(crun, Some(command)),
                runtime_reason(runc, Some(command)),
                "{crun}"
            );
        }
        assert_eq!(
            runtime_reason(RUNC_NOT_FOUND, Some("nope")),
            "exec: \"nope\": executable file not found in $PATH"
        );
        // crun does not say which file it could not open: the command is named.
        assert_eq!(
            runtime_reason(CRUN_DIRECTORY, Some("/bin")),
            "exec: \"/bin\": operation not permitted"
        );
        assert_eq!(
            runtime_reason(CRUN_DENIED, None),
            "open executable: permission denied"
        );
        assert_eq!(
            runtime_reason(CRUN_FORMAT, Some("/badelf")),
            "exec: \"/badelf\": exec format error"
        );
        assert_eq!(
            runtime_reason(CRUN_NO_LOADER, Some("/app")),
            "exec: \"/app\": no such file or directory (missing dynamic library?)"
        );
        assert_eq!(
            runtime_reason(CRUN_HYBRID, None),
            "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"
        );
    }

    #[test]
    fn a_rewritten_reason_keeps_its_classification() {
        // lcd classifies the error's message again (ExecFailure::of) to pick its exit code.
        for (message, command) in [
            (CRUN_NOT_FOUND, "nope"),
            (CRUN_NO_PATH, "/nope/x"),
            (CRUN_DENIED, "/etc/passwd"),
            (CRUN_DIRECTORY, "/bin"),
            (CRUN_FORMAT, "/badelf"),
            (CRUN_NO_LOADER, "/app"),
            (CRUN_EXEC_NOT_FOUND, "nope"),
        ] {
            assert_eq!(
                ExecFailure::classify(&runtime_reason(message, Some(command))),
                ExecFailure::classify(message),
                "{message}"
            );
        }
    }

    #[test]
    fn start_errors_carry_the_kind_exit_codes_are_chosen_by() {
        let error = |message: &str| {
            start_error(
                "create task of container c".into(),
                Some("/etc/passwd"),
                tonic::Status::unknown(message),
            )
        };
        for (message, kind) in [
            (RUNC_NOT_FOUND, ErrorKind::NotFound),
            (CRUN_NOT_FOUND, ErrorKind::NotFound),
            (RUNC_DENIED, ErrorKind::PermissionDenied),
            (CRUN_DENIED, ErrorKind::PermissionDenied),
        ] {
            let e = error(message);
            assert_eq!(e.kind(), kind, "{e}");
            assert!(ExecFailure::of(&e).is_some(), "{e}");
        }
        assert!(error(CRUN_DENIED).to_string().contains("/etc/passwd"));
        let hybrid = error(CRUN_HYBRID);
        assert_eq!(hybrid.kind(), ErrorKind::FailedPrecondition);
        assert!(
            hybrid.to_string().contains("hybrid cgroup layout"),
            "{hybrid}"
        );
        assert_eq!(ExecFailure::of(&hybrid), None);
    }

    #[test]
    fn hybrid_cgroup_refusals_are_crun_s_words() {
        assert!(refuses_hybrid_cgroups(CRUN_HYBRID));
        assert!(!refuses_hybrid_cgroups(RUNC_DENIED));
    }

    #[test]
    fn memory_refusals_in_both_runtimes_words() {
        for (message, refusal) in [
            (
                "runc did not terminate successfully: exit status 1: unable to set memory limit to 20971520 (current usage: 54525952, peak usage: 55123968)\n: unknown",
                MemoryRefusal::BelowUsage,
            ),
            (
                "runc did not terminate successfully: exit status 1: writing file `memory.limit_in_bytes`: Device or resource busy",
                MemoryRefusal::BelowUsage,
            ),
            (
                "crun: cannot set the memory limit lower than its current usage",
                MemoryRefusal::BelowUsage,
            ),
            (
                "runc did not terminate successfully: exit status 1: failed to write \"314572800\": write /sys/fs/cgroup/memory/lcd/upd/memory.limit_in_bytes: invalid argument\n: unknown",
                MemoryRefusal::AboveSwapLimit,
            ),
            (
                "runc did not terminate successfully: exit status 1: writing file `memory.limit_in_bytes`: Invalid argument",
                MemoryRefusal::AboveSwapLimit,
            ),
            (
                "cannot set memory+swap limit less than the memory limit",
                MemoryRefusal::AboveSwapLimit,
            ),
        ] {
            assert_eq!(MemoryRefusal::classify(message), Some(refusal), "{message}");
        }
        assert_eq!(
            MemoryRefusal::classify("writing file `pids.max`: Invalid argument"),
            None
        );
        assert_eq!(
            MemoryRefusal::classify("cannot update a stopped container"),
            None
        );
    }
}
