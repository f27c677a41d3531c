//! What a docker user hits in the first hour (issue #16): detaching from `run -it --rm`, logs of a
//! reused name, `rm -f` under an attached run, races between removals and stops, `-it` without a
//! terminal, a non-root user, `ps`'s columns, filters and templates, docker's usage errors,
//! `update` seen by `inspect`, several ids and id prefixes. Compared with docker's behaviour on the
//! same input.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::pty::Pty;
use support::{Lcd, PROMPT, TIMEOUT};

/// Wait until `name` exists (it may not yet: its `lcd run` was just spawned) and runs.
fn wait_running(lcd: &Lcd, name: &str) {
    let deadline = Instant::now() + PROMPT;
    while !lcd
        .ps_json()
        .iter()
        .any(|v| v["Names"] == name && v["State"] == "running")
    {
        assert!(Instant::now() < deadline, "{name} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ctrl-P Ctrl-Q on `lcd run -it --rm` detaches: the container keeps running, and, as docker's
/// daemon does, lcd's agent removes it when it exits later.
#[test]
fn detaching_from_run_it_rm_leaves_the_container_running() {
    let lcd = Lcd::new("detachrm");
    let mut pty = Pty::new(80, 24);
    let mut child =
        pty.spawn(lcd.command(["run", "-it", "--rm", "--name", "d", lcd.rootfs(), "sh"]));
    pty.type_keys(b"echo ready-$((2+3))\r");
    pty.expect("ready-5");
    pty.type_keys(b"\x10\x11");
    let status = child.wait(&mut pty);
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    pty.assert_cooked();
    assert_eq!(
        lcd.ps_of("d")["State"],
        "running",
        "the detach removed the container"
    );
    // Its end is the agent's to see: the container goes with it.
    lcd.run(&["kill", "d"]).ok();
    let deadline = std::time::Instant::now() + PROMPT;
    while !lcd.ids().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent did not remove the detached --rm container"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    lcd.assert_clean();
}

/// A container named like an earlier one starts with an empty log; `run -d` racing `rm -f`
/// leaves no log file once both are gone.
#[test]
fn a_reused_name_gets_a_fresh_log_and_races_leave_no_log() {
    let lcd = Lcd::new("logs");
    // The issue's case: the first run fails to start; its name is then reused.
    lcd.run(&["run", "-d", "--name", "bad", lcd.rootfs(), "nosuch"])
        .expect_code(127);
    assert!(!lcd.log_path("bad").exists(), "a failed run left its log");
    lcd.run(&["run", "-d", "--name", "bad", lcd.rootfs(), "echo", "new"])
        .ok();
    lcd.wait_state("bad", "exited", PROMPT);
    assert_eq!(lcd.run(&["logs", "bad"]).ok(), "new\n");
    lcd.run(&["rm", "bad"]).ok();
    // A log left at the name's path by anything else is not the new container's either.
    let stale = lcd.log_path("old");
    std::fs::write(&stale, "stale\n").expect("write a stale log");
    lcd.run(&["run", "-d", "--name", "old", lcd.rootfs(), "echo", "fresh"])
        .ok();
    lcd.wait_state("old", "exited", PROMPT);
    assert_eq!(lcd.run(&["logs", "old"]).ok(), "fresh\n");
    lcd.run(&["rm", "old"]).ok();

    let mut seen = Vec::new();
    for round in 0..6 {
        let name = format!("race{round}");
        let run = lcd.spawn(
            &["run", "-d", "--name", &name, lcd.rootfs(), "sleep", "60"],
            Stdio::null(),
        );
        let rm = lcd.spawn(&["rm", "-f", &name], Stdio::null());
        seen.push(run.finish(TIMEOUT).to_string());
        seen.push(rm.finish(TIMEOUT).to_string());
        // Whichever won, the container goes now, and its log with it.
        seen.push(lcd.run(&["rm", "-f", &name]).to_string());
    }
    let logs = support::entries(&lcd.data_root().join("logs").join(&lcd.ns));
    assert!(
        logs.is_empty(),
        "log files left: {logs:?}; runs: {}",
        seen.join("\n")
    );
    // A run whose container was removed while its task was created leaves no task either.
    lcd.assert_clean();
}

/// `rm -f` from another shell while a run is attached: the run exits 137 (docker's status for its
/// killed process) and prints nothing of lcd's own on stderr.
#[test]
fn rm_f_under_an_attached_run_is_137_and_quiet() {
    let lcd = Lcd::new("rmattached");
    for rm in [false, true] {
        let mut args = vec!["run", "--name", "att"];
        if rm {
            args.push("--rm");
        }
        let root = lcd.rootfs().to_string();
        args.extend([root.as_str(), "sleep", "60"]);
        let run = lcd.spawn(&args, Stdio::null());
        wait_running(&lcd, "att");
        assert_eq!(lcd.run(&["rm", "-f", "att"]).ok(), "att\n");
        let out = run.finish(TIMEOUT);
        out.expect_code(137);
        assert_eq!(out.stderr, "", "{out}");
    }
    lcd.assert_clean();
}

/// Two `rm -f` of one container, or `stop` racing `kill`, agree that it is gone or stopped.
#[test]
fn concurrent_removals_and_stops_agree() {
    let lcd = Lcd::new("races");
    for round in 0..3 {
        let name = format!("r{round}");
        lcd.run(&["run", "-d", "--name", &name, lcd.rootfs(), "sleep", "60"])
            .ok();
        lcd.wait_state(&name, "running", PROMPT);
        let first = lcd.spawn(&["rm", "-f", &name], Stdio::null());
        let second = lcd.spawn(&["rm", "-f", &name], Stdio::null());
        for out in [first.finish(TIMEOUT), second.finish(TIMEOUT)] {
            // Both succeed; one that found it gone already says so, as docker's rm -f.
            out.expect_code(0);
            let removed = out.stdout == format!("{name}\n");
            let gone = out.stdout.is_empty() && out.stderr.contains("no such container");
            assert!(removed || gone, "{out}");
        }
        assert!(lcd.ids().is_empty());

        lcd.run(&["run", "-d", "--name", &name, lcd.rootfs(), "sleep", "60"])
            .ok();
        lcd.wait_state(&name, "running", PROMPT);
        // sleep as PID 1 ignores SIGTERM: stop waits, and kill ends it meanwhile.
        let stop = lcd.spawn(&["stop", "-t", "20", &name], Stdio::null());
        let kill = lcd.run(&["kill", &name]);
        let stop = stop.finish(TIMEOUT);
        assert_eq!(stop.ok(), format!("{name}\n"), "{stop}");
        assert!(
            kill.code() == 0 || kill.stderr.contains("not running"),
            "{kill}"
        );
        assert_eq!(lcd.ps_of(&name)["State"], "exited");
        lcd.run(&["rm", &name]).ok();
    }
    lcd.assert_clean();
}

/// `echo cmd | lcd run -it ROOTFS sh`: docker's refusal, status 1, nothing created.
#[test]
fn run_it_without_a_terminal_is_refused() {
    let lcd = Lcd::new("notty");
    let out = lcd.run_input(&["run", "-it", "--rm", lcd.rootfs(), "sh"], b"echo hi\n");
    out.expect_code(1);
    assert_eq!(out.stderr, "lcd: the input device is not a TTY\n", "{out}");
    assert_eq!(out.stdout, "");
    // -i alone, or -t alone, are fine without a terminal, as in docker.
    let out = lcd.run_input(&["run", "-i", "--rm", lcd.rootfs(), "sh"], b"echo hi\n");
    assert_eq!(out.ok(), "hi\n");
    lcd.assert_clean();
}

/// `ps` in docker's columns, its filters and limits, templates everywhere, no colours in files.
#[test]
fn ps_columns_filters_and_templates() {
    let lcd = Lcd::new("psfmt");
    lcd.run(&["run", "-d", "--name", "up1", lcd.rootfs(), "sleep", "60"])
        .ok();
    lcd.run(&["create", "--name", "new1", lcd.rootfs(), "true"])
        .ok();
    lcd.run(&["run", "--name", "ex3", lcd.rootfs(), "sh", "-c", "exit 3"])
        .expect_code(3);
    lcd.wait_state("up1", "running", PROMPT);

    let table = lcd.run(&["ps", "-a"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    let header = lines[0];
    let columns = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let mut at = 0;
    for column in columns {
        let found = header[at..]
            .find(column)
            .unwrap_or_else(|| panic!("{column}: {table}"));
        at += found + column.len();
    }
    // Columns line up: every row's NAMES starts where the header's does.
    let names_at = header.find("NAMES").expect("NAMES");
    for row in &lines[1..] {
        let name = &row[names_at..];
        assert!(["up1", "new1", "ex3"].contains(&name), "{table}");
    }
    // Newest first, long commands cut as docker cuts them.
    assert!(
        lines[1].ends_with("ex3") && lines[1].contains("\"sh -c exit 3\""),
        "{table}"
    );

    let names = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["ps", "--format", "{{.Names}}"];
        full.extend(args);
        lcd.run(&full).ok().lines().map(str::to_string).collect()
    };
    assert_eq!(names(&[]), ["up1"]);
    assert_eq!(names(&["-a"]), ["ex3", "new1", "up1"]);
    assert_eq!(names(&["--filter", "status=exited"]), ["ex3"]);
    assert_eq!(
        names(&[
            "-a",
            "--filter",
            "status=created",
            "--filter",
            "status=running"
        ]),
        ["new1", "up1"]
    );
    assert_eq!(names(&["-a", "-f", "exited=3"]), ["ex3"]);
    assert_eq!(names(&["-a", "-f", "name=1"]), ["new1", "up1"]);
    assert_eq!(names(&["-a", "-f", "name=^up"]), ["up1"]);
    assert_eq!(names(&["-a", "-f", "id=ne"]), ["new1"]);
    assert_eq!(names(&["-l"]), ["ex3"]);
    assert_eq!(names(&["-n", "2"]), ["ex3", "new1"]);
    lcd.run(&["ps", "--filter", "colour=red"])
        .expect_error(125, &["colour"]);

    let out = lcd.run(&["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], "NAMES     STATE", "{out}");
    assert_eq!(lines[1], "ex3       exited", "{out}");
    let out = lcd.run(&["ps", "--format", "{{json .}}"]);
    let row: serde_json::Value = serde_json::from_str(out.ok().trim()).expect("JSON");
    for key in [
        "ID",
        "Image",
        "Command",
        "CreatedAt",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
        "State",
        "Labels",
        "Mounts",
        "Networks",
        "LocalVolumes",
        "Size",
    ] {
        assert!(row.get(key).is_some(), "no {key} in {row}");
    }
    // CREATED and finish times agree: a container that exited has run for no longer than it
    // has existed, to the sub-second.
    let inspect = lcd.inspect("ex3");
    let finished = inspect["State"]["FinishedAt"].as_str().expect("FinishedAt");
    assert!(
        !finished.contains(".000000000Z"),
        "finish time in whole seconds: {finished}"
    );

    assert_eq!(
        lcd.run(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "ex3",
            "up1"
        ])
        .ok(),
        "exited 3\nrunning 0\n"
    );
    let version = lcd.run(&["version", "--format", "{{.Client.Version}}"]);
    assert_eq!(version.ok(), format!("{}\n", env!("CARGO_PKG_VERSION")));
    let stats = lcd.run(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}"]);
    assert_eq!(stats.ok(), "up1 1\n");

    // Tracing output (here --debug's) into a file or pipe carries no colour codes.
    let out = lcd.run(&["--debug", "ps"]);
    assert!(!out.stderr.is_empty(), "--debug said nothing: {out}");
    assert!(!out.stderr.contains('\x1b'), "colours into a pipe: {out}");
    lcd.run(&["rm", "-f", "up1", "new1", "ex3"]).ok();
    lcd.assert_clean();
}

/// docker's usage errors: one line saying what is wrong and a hint naming the command's help.
#[test]
fn usage_errors_are_one_line_and_a_help_hint() {
    let lcd = Lcd::bare("usage");
    let out = lcd.run(&["run", "--bogus", "./rootfs", "true"]);
    out.expect_code(125);
    assert_eq!(
        out.stderr, "lcd: unexpected argument '--bogus' found\nSee 'lcd run --help'.\n",
        "{out}"
    );
    let out = lcd.run(&["--namespace", "x", "run"]);
    out.expect_code(125);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("lcd: ") && lines[0].contains("<IMAGE|ROOTFS>"),
        "{out}"
    );
    assert!(
        !lines[0].contains("--namespace"),
        "global options shown as required: {out}"
    );
    assert_eq!(lines[1], "See 'lcd run --help'.");
    let out = lcd.run(&["image", "ls", "--bogus"]);
    assert!(
        out.stderr.ends_with("See 'lcd image ls --help'.\n"),
        "{out}"
    );
    // No "did you mean checkpoint" for docker's cp.
    let out = lcd.run(&["cpx"]);
    out.expect_code(125);
    assert!(!out.stderr.contains("checkpoint"), "{out}");

    // run's help has its own options, the global ones in a section of their own after them.
    let help = lcd.run(&["run", "--help"]);
    let text = help.ok();
    let global = text
        .find("Global Options:")
        .expect("a Global Options section");
    let own = text.find("--hostname").expect("--hostname");
    let namespace = text.find("--namespace").expect("--namespace");
    assert!(own < global && global < namespace, "{text}");
    lcd.run(&["daemon", "status"]).expect_code(3);
}

/// `update` shows in `inspect` and outlives the task (a restart keeps it, a stopped container's
/// applies at its start); `stop` of a stopped container and `start` of a running one succeed
/// quietly; `start` takes several ids; a unique id prefix names a container, an ambiguous one is an
/// error naming the matches.
#[test]
fn update_start_stop_and_id_prefixes_like_docker() {
    let lcd = Lcd::new("lifecycle");
    for name in ["f502aa", "f503bb"] {
        lcd.run(&["create", "--name", name, lcd.rootfs(), "sleep", "60"])
            .ok();
    }
    assert_eq!(
        lcd.run(&["start", "f502aa", "f503bb"]).ok(),
        "f502aa\nf503bb\n"
    );
    assert_eq!(lcd.run(&["start", "f502aa"]).ok(), "f502aa\n");
    lcd.wait_state("f502aa", "running", PROMPT);

    // Prefixes.
    assert_eq!(
        lcd.run(&["inspect", "-f", "{{.Id}}", "f502"]).ok(),
        "f502aa\n"
    );
    let line = lcd
        .run(&["stop", "f50"])
        .expect_error(125, &["f50", "f502aa", "f503bb"])
        .to_string();
    assert!(line.contains("multiple"), "{line}");
    lcd.run(&["inspect", "nosuch"])
        .expect_error(125, &["no such container"]);

    assert_eq!(
        lcd.run(&["update", "--memory", "64m", "--pids-limit", "50", "f502"])
            .ok(),
        "f502\n"
    );
    let host = &lcd.inspect("f502aa")["HostConfig"];
    assert_eq!(host["Memory"], 64 << 20, "{host}");
    assert_eq!(host["PidsLimit"], 50, "{host}");
    assert_eq!(
        lcd.run(&["update", "--cpus", "0.5", "f502aa"]).ok(),
        "f502aa\n"
    );
    let host = &lcd.inspect("f502aa")["HostConfig"];
    assert_eq!(
        host["Memory"],
        64 << 20,
        "an update forgot the earlier one: {host}"
    );
    assert_eq!(host["NanoCpus"], 500_000_000, "{host}");
    // The limits outlive the task, as docker's: a restart runs with them.
    lcd.run(&["restart", "-t", "0", "f502aa"]).ok();
    let usage = lcd.run(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}",
        "f502aa",
    ]);
    assert!(usage.ok().trim_end().ends_with("/ 64MiB"), "{usage}");

    assert_eq!(
        lcd.run(&["stop", "-t", "0", "f502", "f503"]).ok(),
        "f502\nf503\n"
    );
    assert_eq!(lcd.run(&["stop", "f502aa"]).ok(), "f502aa\n");
    assert_eq!(lcd.ps_of("f502aa")["State"], "exited");
    // A stopped container's update applies at its next start.
    lcd.run(&["update", "--memory", "32m", "f503bb"]).ok();
    assert_eq!(lcd.inspect("f503bb")["HostConfig"]["Memory"], 32 << 20);
    lcd.run(&["start", "f503bb"]).ok();
    let usage = lcd.run(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}",
        "f503bb",
    ]);
    assert!(usage.ok().trim_end().ends_with("/ 32MiB"), "{usage}");
    lcd.run(&["stop", "-t", "0", "f503bb"]).ok();
    lcd.run(&["start", "-a", "f502aa", "f503bb"])
        .expect_error(125, &["multiple"]);
    assert_eq!(lcd.run(&["rm", "f502aa", "f503b"]).ok(), "f502aa\nf503b\n");
    lcd.assert_clean();
}

/// lcd run by a user other than root: the permission errors say root is needed, and a socket the
/// user may not reach is not "no such socket".
#[test]
fn a_non_root_user_is_told_root_is_needed() {
    use std::os::unix::fs::PermissionsExt;
    let lcd = Lcd::bare("nonroot");
    // Root's lcd starts the managed containerd (its socket under the exec root).
    lcd.run(&["daemon", "start"]).ok();
    // nobody may run a copy of lcd in the fixture's dir, and read the data root, not write it.
    let dir = lcd.dir();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = dir.join("lcd");
    std::fs::copy(support::lcd_bin(), &bin).expect("copy lcd");
    std::fs::set_permissions(lcd.data_root(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let as_nobody = |args: &[&str]| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .env("LCD_DATA_ROOT", lcd.data_root())
            .env("LCD_EXEC_ROOT", lcd.path("nobody-run"))
            .env("LCD_NAMESPACE", &lcd.ns)
            .env_remove("LCD_ADDRESS")
            .stdin(Stdio::null());
        support::run_command(cmd, None, TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    };
    let out = as_nobody(&["ps"]);
    out.expect_error(125, &["Permission denied", "lcd needs root"]);

    let socket = lcd.exec_root().join("containerd/containerd.sock");
    let socket = socket.to_str().expect("utf-8");
    let out = as_nobody(&["--address", socket, "ps"]);
    let line = out.expect_error(125, &["permission denied", "lcd needs root"]);
    assert!(!line.contains("no such socket"), "{out}");
    // The directories open to all, the socket still root's only (0600).
    for sub in ["run", "run/containerd"] {
        std::fs::set_permissions(lcd.path(sub), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let out = as_nobody(&["--address", socket, "ps"]);
    out.expect_error(125, &["ermission denied", "lcd needs root"]);
    lcd.run(&["daemon", "stop"]).ok();
}
