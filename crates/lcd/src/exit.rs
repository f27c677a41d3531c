//! lcd's exit statuses and how it reports an error, in one place for every command: docker's
//! statuses (125 for lcd's own failures, 126 and 127 for a container command that cannot run) and
//! one `lcd: ` line on stderr per error.
//!
//! A command returns `Ok(status)` for an outcome it chose (a container's exit status, 0, or
//! [`DAEMON_STOPPED`]) and `Err` for a failure; the binary turns the `Err` into a line and a status
//! with [`report`]. Commands on several containers report each failure with [`for_each_id`] and go
//! on.

use anyhow::Result;
use libcontainerd::ExecFailure;

/// docker's exit status when the tool itself fails.
pub const LCD_ERROR: i32 = 125;
/// docker's exit status when the container's command cannot be invoked.
pub const NOT_EXECUTABLE: i32 = 126;
/// docker's exit status when the container's command is not found.
pub const NOT_FOUND: i32 = 127;
/// `lcd daemon status` when the managed containerd is not running: LSB's "program is not running",
/// so that scripts can tell it from a failure.
pub const DAEMON_STOPPED: i32 = 3;

/// The error and its causes on one line. A libcontainerd error's message already says everything
/// its sources say (containerd's text included), so the chain stops there.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<libcontainerd::Error>().is_some() {
            break;
        }
    }
    parts.join(": ")
}

/// 127/126 when the container's command could not be run, 125 for every other failure of lcd.
pub fn code_of(e: &anyhow::Error) -> i32 {
    e.chain()
        .find_map(|cause| cause.downcast_ref::<libcontainerd::Error>())
        .and_then(ExecFailure::of)
        .map(|f| match f {
            ExecFailure::NotFound => NOT_FOUND,
            ExecFailure::NotExecutable => NOT_EXECUTABLE,
        })
        .unwrap_or(LCD_ERROR)
}

/// Print `e` as lcd's one error line on stderr.
pub fn print(e: &anyhow::Error) {
    eprintln!("lcd: {}", one_line(e));
}

/// Print `e` and return the status lcd exits with for it.
pub fn report(e: &anyhow::Error) -> i32 {
    print(e);
    code_of(e)
}

/// Print clap's refusal of the command line (or the help or version asked for) and return the
/// status: 125 for a mistake, as docker's own usage errors, 0 for `--help` and `--version`. A
/// mistake is docker's two lines: what is wrong, and `See 'lcd run --help'.` for the command the
/// user typed.
pub fn usage(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = e.print();
        return if e.use_stderr() { LCD_ERROR } else { 0 };
    }
    // args_os: an argument that is not UTF-8 may be the very mistake being reported.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    eprintln!("lcd: {}", usage_line(&e.render().to_string()));
    eprintln!("See '{} --help'.", command_path(&args));
    LCD_ERROR
}

/// clap's message without its `error: ` prefix, tips and usage: the lines up to the first blank
/// one, joined.
fn usage_line(rendered: &str) -> String {
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = message.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// `lcd` and the (sub)commands named in `args`, skipping global options and their values.
fn command_path(args: &[String]) -> String {
    use clap::CommandFactory;
    let root = crate::cli::Cli::command();
    let takes_value = |cmd: &clap::Command, arg: &str| {
        let name = arg.trim_start_matches('-');
        !arg.contains('=')
            && cmd.get_arguments().any(|a| {
                a.get_long() == Some(name)
                    && a.get_num_args().is_none_or(|n| n.takes_values())
                    && !matches!(
                        a.get_action(),
                        clap::ArgAction::SetTrue | clap::ArgAction::Count
                    )
            })
    };
    let mut path = vec!["lcd".to_string()];
    let mut current = &root;
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        if arg.starts_with("--") {
            skip_value = takes_value(&root, arg);
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        match current.find_subcommand(arg) {
            Some(sub) => {
                path.push(arg.clone());
                current = sub;
            }
            None => break,
        }
    }
    path.join(" ")
}

/// Run `each` for every id; print each failure and go on, then return 125 if any failed, as docker
/// does for multi-container commands.
pub async fn for_each_id<F, Fut>(ids: &[String], mut each: F) -> Result<i32>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failed = false;
    for id in ids {
        if let Err(e) = each(id.clone()).await {
            print(&e);
            failed = true;
        }
    }
    Ok(if failed { LCD_ERROR } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainerd::ErrorKind;

    #[test]
    fn causes_join_on_one_line_and_stop_at_the_library_error() {
        let e = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(one_line(&e), "outer: middle: inner");
        let lib = libcontainerd::Error::internal("the library says it all")
            .with_source(std::io::Error::other("its source"));
        let said = lib.to_string();
        let e = anyhow::Error::new(lib).context("start");
        // The source is not repeated after the library's own message.
        assert_eq!(one_line(&e), format!("start: {said}"));
    }

    #[test]
    fn usage_errors_name_the_command_typed() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(command_path(&args(&["run", "--bogus", "x"])), "lcd run");
        assert_eq!(
            command_path(&args(&["--namespace", "ps", "image", "ls", "-x"])),
            "lcd image ls"
        );
        assert_eq!(command_path(&args(&["--debug", "stop"])), "lcd stop");
        assert_eq!(command_path(&args(&["nosuch"])), "lcd");
        assert_eq!(
            usage_line("error: the following required arguments were not provided:\n  <IMAGE|ROOTFS>\n\nUsage: lcd run\n"),
            "the following required arguments were not provided: <IMAGE|ROOTFS>"
        );
    }

    #[test]
    fn a_command_that_cannot_run_is_127_or_126() {
        let not_found = libcontainerd::Error::new(
            ErrorKind::NotFound,
            "exec: \"nope\": executable file not found in $PATH",
        );
        assert_eq!(code_of(&anyhow::Error::new(not_found)), NOT_FOUND);
        let denied = libcontainerd::Error::new(
            ErrorKind::PermissionDenied,
            "exec: \"/etc/passwd\": permission denied",
        );
        assert_eq!(
            code_of(&anyhow::Error::new(denied).context("run")),
            NOT_EXECUTABLE
        );
        assert_eq!(code_of(&anyhow::anyhow!("anything else")), LCD_ERROR);
    }

    #[test]
    fn crun_s_words_give_the_same_codes_as_runc_s() {
        let code = |kind, message: &str| {
            code_of(&anyhow::Error::new(libcontainerd::Error::new(kind, message)).context("run"))
        };
        assert_eq!(
            code(
                ErrorKind::NotFound,
                "create task of container c: executable file `nope` not found in $PATH: No such file or directory"
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                ErrorKind::PermissionDenied,
                "create task of container c: exec: \"/etc/passwd\": open executable: Permission denied"
            ),
            NOT_EXECUTABLE
        );
        assert_eq!(
            code(
                ErrorKind::PermissionDenied,
                "exec e in container c: exec container process `/badelf`: Exec format error"
            ),
            NOT_EXECUTABLE
        );
        // crun's refusal of the host is lcd's failure, not the command's.
        assert_eq!(
            code(
                ErrorKind::FailedPrecondition,
                "create task of container c: the OCI runtime refuses this host's hybrid cgroup layout: cgroups in hybrid mode not supported"
            ),
            LCD_ERROR
        );
    }
}
