//! Hostile command lines: malformed `--format` values on every command that takes one. lcd must
//! refuse them with status 125 and one stderr line naming the format, print nothing on stdout, and
//! decide before it starts or contacts any containerd.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use support::Lcd;

/// The commands with a `--format` option, with what else they need to parse.
const FORMAT_COMMANDS: &[&[&str]] = &[
    &["ps"],
    &["ps", "-a"],
    &["stats", "--no-stream"],
    &["events"],
    &["version"],
    &["images"],
    &["inspect", "x"],
    &["history", "x"],
];

#[test]
fn malformed_formats_are_one_line_125_errors_before_any_containerd_is_used() {
    let lcd = Lcd::bare("format");
    let long = "x".repeat(10_000);
    let values = [
        "yaml",
        "JSON",
        "json ",
        " json",
        "json\ntable",
        "\u{202e}json",
        "\x1b[31mjson",
        long.as_str(),
        // Go templates that do not parse.
        "{{.ID",
        "{{nosuch .ID}}",
        "{{range .X}}",
        "{{end}}",
        "{{\u{202e}x}}",
    ];
    for command in FORMAT_COMMANDS {
        for value in values {
            let mut args: Vec<&str> = command.to_vec();
            args.extend(["--format", value]);
            let out = lcd.run(&args);
            let line = out.expect_error(125, &["format"]);
            assert!(out.stdout.is_empty(), "{out}");
            // Control characters from the value are escaped, not sent to the terminal.
            assert!(!line.contains(['\x1b', '\u{202e}']), "{out}");
            assert!(
                out.elapsed < Duration::from_secs(5),
                "deciding on a format took {:?}: {out}",
                out.elapsed
            );
        }
    }
    // Nothing above needed (or started) a containerd.
    lcd.run(&["daemon", "status"]).expect_code(3);
    assert!(!lcd.pid_file().exists(), "a managed containerd was started");
}

/// With an unreachable `--address`, a malformed format is still what lcd reports: the format is
/// checked first.
#[test]
fn the_format_is_checked_before_connecting() {
    let lcd = Lcd::bare("format-addr");
    let socket = lcd.path("nothing-here.sock");
    let socket = socket.to_str().expect("utf-8 path");
    for command in FORMAT_COMMANDS {
        let mut args = vec!["--address", socket];
        args.extend(command.iter());
        args.extend(["--format", "yaml"]);
        lcd.run(&args).expect_error(125, &["format", "yaml"]);
    }
}

/// Malformed at the parser level: a missing value, a repeated option, bytes that are not UTF-8.
/// Status 125 and a first line that says what is wrong.
#[test]
fn format_options_clap_refuses_are_125() {
    let lcd = Lcd::bare("format-clap");
    for command in FORMAT_COMMANDS {
        let mut missing: Vec<&str> = command.to_vec();
        missing.push("--format");
        let repeated = [
            command.to_vec(),
            vec!["--format", "json", "--format", "json"],
        ]
        .concat();
        for args in [missing, repeated] {
            let out = lcd.run(&args);
            out.expect_code(125);
            assert!(out.stdout.is_empty(), "{out}");
            let first = out.stderr.lines().next().unwrap_or_default();
            assert!(first.contains("--format"), "{out}");
        }
        let mut cmd = lcd.command(command.iter());
        cmd.arg("--format").arg(OsStr::from_bytes(b"js\xffon"));
        let out = lcd.output(cmd);
        out.expect_code(125);
        assert!(out.stdout.is_empty(), "{out}");
        assert!(!out.stderr.is_empty(), "{out}");
    }
    lcd.run(&["daemon", "status"]).expect_code(3);
}

/// A reader that went away (`lcd ps | head -0`): lcd ends by SIGPIPE, as C and Go tools do, with
/// nothing on stderr (it used to print a panic of Rust's `println!`).
#[test]
fn a_closed_stdout_ends_lcd_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    let lcd = Lcd::new("epipe");
    // A pipe whose reading end is closed before lcd starts: its first write fails with EPIPE.
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    drop(reader);
    for args in [&["ps", "-a"][..], &["images"], &["volume", "ls"]] {
        let mut cmd = lcd.command(args);
        cmd.stdout(std::process::Stdio::from(writer.try_clone().expect("dup")))
            .stderr(std::process::Stdio::piped());
        let out = cmd.output().expect("run lcd");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "lcd {args:?}: {:?}",
            out.status
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "lcd {args:?}: {stderr}");
    }
}
