//! End-to-end tests of the `lcd` binary, run as a user would: exit statuses, output, error messages,
//! and that nothing is left behind. Each test has its own temp dir, namespace and managed containerd
//! (started by `lcd` itself on first use); see `support`.

mod support;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{is_alive, pid_in, run_command, Lcd, TIMEOUT};

/// docker's default PATH, which a container gets unless told otherwise.
const DOCKER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// run: output, status, stdin
// ---------------------------------------------------------------------------------------------

#[test]
fn run_rm_passes_stdout_stderr_and_exit_status() {
    let lcd = Lcd::new("out");
    let out = lcd.run(&[
        "run",
        "--rm",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    out.expect_code(3);
    assert_eq!(out.stdout, "out\n", "{out}");
    assert_eq!(out.stderr, "err\n", "{out}");
    lcd.assert_clean();
}

#[test]
fn run_rm_passes_a_mebibyte_on_stdout_and_stderr_untruncated() {
    let lcd = Lcd::new("big");
    let script =
        "head -c 1048576 /dev/zero | tr '\\0' a; head -c 1048576 /dev/zero | tr '\\0' b >&2";
    let out = lcd.run(&["run", "--rm", lcd.rootfs(), "sh", "-c", script]);
    out.expect_code(0);
    assert_eq!(
        out.stdout.len(),
        MIB,
        "stdout length; stderr: {}",
        &out.stderr[..100.min(out.stderr.len())]
    );
    assert!(
        out.stdout.bytes().all(|b| b == b'a'),
        "stdout is not all 'a'"
    );
    assert_eq!(out.stderr.len(), MIB, "stderr length");
    assert!(
        out.stderr.bytes().all(|b| b == b'b'),
        "stderr is not all 'b'"
    );
    lcd.assert_clean();
}

#[test]
fn run_interactive_forwards_stdin() {
    let lcd = Lcd::new("stdin");
    let out = lcd.run_input(&["run", "-i", "--rm", lcd.rootfs(), "cat"], b"abc");
    out.expect_code(0);
    assert_eq!(out.stdout, "abc", "{out}");

    // A larger stdin from a file, through wc so that the output is small.
    let input = lcd.path("input");
    let data: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&input, &data).expect("write input");
    let mut cmd = lcd.command(["run", "-i", "--rm", lcd.rootfs(), "wc", "-c"]);
    cmd.stdin(std::fs::File::open(&input).expect("open input"));
    let out = lcd.output(cmd);
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), "300000", "{out}");
    lcd.assert_clean();
}

#[test]
fn run_interactive_with_empty_stdin_returns_promptly() {
    let lcd = Lcd::new("devnull");
    // Stdio::null(): /dev/null.
    let out = lcd.run(&["run", "-i", "--rm", lcd.rootfs(), "cat"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "", "{out}");
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );

    // An empty file.
    let empty = lcd.path("empty");
    std::fs::write(&empty, b"").expect("write");
    let mut cmd = lcd.command(["run", "-i", "--rm", lcd.rootfs(), "cat"]);
    cmd.stdin(std::fs::File::open(&empty).expect("open"));
    let out = lcd.output(cmd);
    out.expect_code(0);
    assert_eq!(out.stdout, "", "{out}");
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );
    lcd.assert_clean();
}

#[test]
fn run_without_interactive_gives_the_container_an_empty_stdin() {
    let lcd = Lcd::new("nostdin");
    // Our stdin is a pipe that has data and stays open: without -i, cat must not see it.
    let mut running = lcd.spawn(&["run", "--rm", lcd.rootfs(), "cat"], Stdio::piped());
    running
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"not for the container\n")
        .expect("write stdin");
    let held = running.stdin.take();
    let out = running.finish(Duration::from_secs(10));
    drop(held);
    out.expect_code(0);
    assert_eq!(out.stdout, "", "{out}");
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );
    lcd.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// run: commands that cannot be run
// ---------------------------------------------------------------------------------------------

#[test]
fn run_missing_command_is_127() {
    let lcd = Lcd::new("e127");
    for rm in [true, false] {
        let mut args = vec!["run"];
        if rm {
            args.push("--rm");
        }
        args.extend([lcd.rootfs(), "nope-cmd"]);
        let out = lcd.run(&args);
        out.expect_error(127, &["nope-cmd", "not found"]);
        assert_eq!(out.stdout, "", "{out}");
        lcd.assert_clean();
    }
}

#[test]
fn run_non_executable_is_126() {
    let lcd = Lcd::new("e126");
    for rm in [true, false] {
        let mut args = vec!["run"];
        if rm {
            args.push("--rm");
        }
        args.extend([lcd.rootfs(), "/etc/passwd"]);
        let out = lcd.run(&args);
        out.expect_error(126, &["/etc/passwd", "permission denied"]);
        lcd.assert_clean();
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: 125, one line, nothing left
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_ids_are_rejected() {
    let lcd = Lcd::new("badid");
    let out = lcd.run(&["run", "--rm", "--name", "a/../b", lcd.rootfs(), "true"]);
    out.expect_error(125, &["a/../b"]);
    let out = lcd.run(&["create", "--name", "a/../b", lcd.rootfs(), "true"]);
    out.expect_error(125, &["a/../b"]);
    let out = lcd.run(&["run", "--rm", "--name=-x", lcd.rootfs(), "true"]);
    out.expect_error(125, &["-x"]);
    // docker reads the word after --name as the name, even with a leading '-'.
    let out = lcd.run(&["run", "--rm", "--name", "-x", lcd.rootfs(), "true"]);
    out.expect_error(125, &["-x"]);
    // Ids given to other commands are checked too, before they reach a path or an RPC.
    for cmd in ["rm", "kill", "stop", "inspect", "logs", "start"] {
        let out = lcd.run(&[cmd, "../x"]);
        out.expect_error(125, &["../x"]);
    }
    assert!(
        !lcd.exec_root().join("bundles/b").exists() && !lcd.exec_root().join("x").exists(),
        "an invalid id reached the filesystem"
    );
    lcd.assert_clean();
}

#[test]
fn duplicate_name_is_rejected_and_the_first_container_is_intact() {
    let lcd = Lcd::new("dup");
    let out = lcd.run(&["run", "-d", "--name", "same", lcd.rootfs(), "sleep", "60"]);
    assert_eq!(out.ok(), "same\n");
    let before = lcd.wait_state("same", "running", Duration::from_secs(10));
    for cmd in [
        vec!["run", "--rm", "--name", "same", lcd.rootfs(), "true"],
        vec!["run", "--name", "same", lcd.rootfs(), "true"],
        vec!["create", "--name", "same", lcd.rootfs(), "true"],
    ] {
        let out = lcd.run(&cmd);
        out.expect_error(125, &["same", "already in use"]);
    }
    let after = lcd.ps_of("same");
    assert_eq!(after["State"], "running", "{after}");
    assert_eq!(
        after["Pid"], before["Pid"],
        "the first container was replaced"
    );
    assert!(
        lcd.bundles().join("same").is_dir(),
        "the first container's bundle dir is gone"
    );
    let pid = u32::try_from(after["Pid"].as_u64().expect("pid")).expect("pid");
    assert!(is_alive(pid), "the first container's process is gone");
    lcd.run(&["rm", "-f", "same"]).ok();
    lcd.assert_clean();
}

#[test]
fn bad_rootfs_is_rejected() {
    let lcd = Lcd::new("badrootfs");
    let missing = lcd.path("missing");
    let missing = missing.to_str().expect("utf-8");
    let file = format!("{}/bin/busybox", lcd.rootfs());
    for cmd in ["run", "create"] {
        lcd.run(&[cmd, missing, "true"])
            .expect_error(125, &[missing, "does not exist"]);
        lcd.run(&[cmd, &file, "true"])
            .expect_error(125, &[file.as_str(), "not a directory"]);
        // A bare word is an image: none is stored, and --pull never keeps lcd from fetching it.
        lcd.run(&[cmd, "--pull", "never", "busybox", "true"])
            .expect_error(125, &["no such image: busybox"]);
    }
    lcd.assert_clean();
}

#[test]
fn unreachable_address_is_125_and_starts_nothing() {
    let lcd = Lcd::new("noaddr");
    let sock = lcd.path("nope.sock");
    let sock = sock.to_str().expect("utf-8");
    let out = lcd.run(&["--address", sock, "run", "--rm", lcd.rootfs(), "true"]);
    out.expect_error(125, &[sock]);
    assert!(
        out.elapsed < Duration::from_secs(10),
        "took {:?}",
        out.elapsed
    );
    let mut cmd = lcd.command(["ps", "-a"]);
    cmd.env("LCD_ADDRESS", sock);
    lcd.output(cmd).expect_error(125, &[sock]);
    // With an address, lcd must not have started its own containerd.
    lcd.run(&["daemon", "status"]).expect_code(3);
    assert!(!lcd.pid_file().exists(), "a managed containerd was started");
    lcd.assert_clean();
}

#[test]
fn missing_containerd_binary_is_125() {
    let lcd = Lcd::new("nobin");
    for cmd in [
        vec!["run", "--rm", lcd.rootfs(), "true"],
        vec!["ps", "-a"],
        vec!["daemon", "start"],
    ] {
        let mut command = lcd.command(&cmd);
        command.env("LCD_CONTAINERD", "/nonexistent/containerd");
        let out = lcd.output(command);
        out.expect_error(125, &["/nonexistent/containerd", "--containerd"]);
    }
    lcd.run(&["daemon", "status"]).expect_code(3);
    lcd.assert_clean();
}

#[test]
fn missing_runc_is_125_and_leaves_nothing() {
    let lcd = Lcd::new("norunc");
    // A PATH with containerd and its shim but no runc.
    let bin = lcd.path("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    for name in ["containerd", "containerd-shim-runc-v2"] {
        let out = run_command(
            {
                let mut c = Command::new("which");
                c.arg(name);
                c
            },
            None,
            TIMEOUT,
        )
        .expect("which");
        let target = out.ok().trim().to_string();
        assert!(!target.is_empty(), "{name} is not installed");
        symlink(&target, bin.join(name)).expect("symlink");
    }
    let restricted = |args: &[&str]| {
        let mut cmd = lcd.command(args);
        cmd.env("PATH", &bin);
        lcd.output(cmd)
    };
    let started = restricted(&["daemon", "start"]);
    let pid = pid_in(started.ok());
    for rm in [true, false] {
        let mut args = vec!["run"];
        if rm {
            args.push("--rm");
        }
        args.extend([lcd.rootfs(), "true"]);
        let out = restricted(&args);
        // The runtime is missing, not the container's command: lcd's failure, not 127.
        out.expect_error(125, &["runc"]);
        lcd.assert_clean();
    }
    // The same daemon served all of it.
    assert_eq!(pid_in(lcd.run(&["daemon", "status"]).ok()), pid);
    lcd.run(&["daemon", "stop"]).ok();
    lcd.run(&["daemon", "status"]).expect_code(3);
}

#[test]
fn rm_of_a_running_container_needs_force() {
    let lcd = Lcd::new("rmrun");
    let out = lcd.run(&["run", "-d", "--name", "r1", lcd.rootfs(), "sleep", "60"]);
    assert_eq!(out.ok(), "r1\n");
    lcd.wait_state("r1", "running", Duration::from_secs(10));
    lcd.run(&["rm", "r1"]).expect_error(125, &["r1", "running"]);
    assert_eq!(lcd.ps_of("r1")["State"], "running");
    assert_eq!(lcd.run(&["ps", "-q"]).ok(), "r1\n");
    assert_eq!(lcd.run(&["rm", "-f", "r1"]).ok(), "r1\n");
    lcd.assert_clean();
}

#[test]
fn kill_and_stop_need_a_running_container() {
    let lcd = Lcd::new("killstop");
    for cmd in ["kill", "stop", "rm", "inspect", "logs", "start"] {
        lcd.run(&[cmd, "nosuch"])
            .expect_error(125, &["nosuch", "no such container"]);
    }
    assert_eq!(
        lcd.run(&["create", "--name", "st", lcd.rootfs(), "true"])
            .ok(),
        "st\n"
    );
    // Created, never started.
    lcd.run(&["kill", "st"])
        .expect_error(125, &["st", "not running"]);
    // docker's stop accepts a container that is not running: it is stopped already.
    assert_eq!(lcd.run(&["stop", "st"]).ok(), "st\n");
    assert_eq!(lcd.ps_of("st")["State"], "created");
    // Ran and exited.
    lcd.run(&["start", "-a", "st"]).expect_code(0);
    assert_eq!(lcd.ps_of("st")["State"], "exited");
    lcd.run(&["kill", "st"])
        .expect_error(125, &["st", "not running"]);
    assert_eq!(lcd.run(&["stop", "-t", "1", "st"]).ok(), "st\n");
    assert_eq!(lcd.ps_of("st")["State"], "exited");
    // Several ids: the good ones are handled, the bad ones reported, 125 overall.
    let out = lcd.run(&["rm", "st", "nosuch"]);
    out.expect_error(125, &["nosuch"]);
    assert_eq!(out.stdout, "st\n", "{out}");
    lcd.assert_clean();
}

#[test]
fn stale_pid_file_naming_an_unrelated_process_is_ignored() {
    let lcd = Lcd::bare("stale");
    // Our own child, killed by its pid (through the guard) whatever happens below.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let sleeper = Reap(
        Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep"),
    );
    let sleep_pid = sleeper.0.id();
    // Before any lcd call.
    std::fs::create_dir_all(lcd.pid_file().parent().expect("parent")).expect("mkdir");
    std::fs::write(lcd.pid_file(), format!("{sleep_pid}\n")).expect("write pid file");

    let status = lcd.run(&["daemon", "status"]);
    status.expect_code(3);
    assert!(status.stdout.contains("stopped"), "{status}");
    assert!(status.stdout.contains("stale"), "{status}");
    assert!(status.stdout.contains(&sleep_pid.to_string()), "{status}");

    lcd.make_rootfs();
    let out = lcd.run(&["run", "--rm", lcd.rootfs(), "true"]);
    out.expect_code(0);
    assert!(is_alive(sleep_pid), "lcd signalled the unrelated process");
    let status = lcd.run(&["daemon", "status"]);
    let daemon = pid_in(status.ok());
    assert_ne!(daemon, sleep_pid);
    lcd.assert_clean();
    lcd.run(&["daemon", "stop"]).ok();
    assert!(
        is_alive(sleep_pid),
        "lcd daemon stop signalled the unrelated process"
    );
    drop(sleeper);
    assert!(!is_alive(sleep_pid));
}

// ---------------------------------------------------------------------------------------------
// Flags reach the container
// ---------------------------------------------------------------------------------------------

#[test]
fn run_flags_reach_the_container() {
    let lcd = Lcd::new("flags");
    let mut cmd = lcd.command([
        "run",
        "--rm",
        "-e",
        "A=b",
        "-e",
        "HOMEVAR",
        "-e",
        "LCD_TEST_UNSET_VAR",
        "--env",
        "C=x=y",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "myhost",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo A=$A; echo HOMEVAR=$HOMEVAR; echo C=$C; echo unset=${LCD_TEST_UNSET_VAR-none}; \
         echo PATH=$PATH; pwd; id -u; id -g; hostname",
    ]);
    cmd.env("HOMEVAR", "from-lcd")
        .env_remove("LCD_TEST_UNSET_VAR");
    let out = lcd.output(cmd);
    out.expect_code(0);
    let expected = format!(
        "A=b\nHOMEVAR=from-lcd\nC=x=y\nunset=none\nPATH={DOCKER_PATH}\n/tmp\n1000\n1000\nmyhost\n"
    );
    assert_eq!(out.stdout, expected, "{out}");

    // Defaults: root, /, docker's PATH.
    let out = lcd.run(&[
        "run",
        "--rm",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo $PATH; pwd; id -u",
    ]);
    assert_eq!(out.ok(), format!("{DOCKER_PATH}\n/\n0\n"));
    lcd.assert_clean();
}

#[test]
fn read_only_rootfs() {
    let lcd = Lcd::new("ro");
    let out = lcd.run(&["run", "--rm", "--read-only", lcd.rootfs(), "touch", "/x"]);
    assert_ne!(
        out.code(),
        0,
        "touch /x succeeded on a read-only rootfs: {out}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!lcd.rootfs.join("x").exists());
    // The same without --read-only works, so it was the flag.
    lcd.run(&["run", "--rm", lcd.rootfs(), "touch", "/x"])
        .expect_code(0);
    assert!(lcd.rootfs.join("x").exists());
    lcd.assert_clean();
}

#[test]
fn resource_limits_reach_the_cgroup() {
    let lcd = Lcd::new("limits");
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
                  /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us";
    let out = lcd.run(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--pids-limit",
        "10",
        "--cpus",
        "0.5",
        lcd.rootfs(),
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.ok(), "67108864\n10\n50000\n100000\n", "{out}");

    // And on the host, in the cgroup lcd's namespace and the id name, while it runs.
    let out = lcd.run(&[
        "run",
        "-d",
        "--name",
        "lim",
        "-m",
        "32m",
        lcd.rootfs(),
        "sleep",
        "60",
    ]);
    out.ok();
    lcd.wait_state("lim", "running", Duration::from_secs(10));
    let host = format!("/sys/fs/cgroup/memory/{}/lim/memory.limit_in_bytes", lcd.ns);
    let limit = std::fs::read_to_string(&host).unwrap_or_else(|e| panic!("read {host}: {e}"));
    assert_eq!(limit.trim(), "33554432");
    lcd.run(&["rm", "-f", "lim"]).ok();

    lcd.run(&["run", "--rm", "-m", "12q", lcd.rootfs(), "true"])
        .expect_error(125, &["12q"]);
    lcd.run(&["create", "--memory", "12q", lcd.rootfs(), "true"])
        .expect_error(125, &["12q"]);
    lcd.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Detached containers, ps, logs, stop, inspect, rm
// ---------------------------------------------------------------------------------------------

#[test]
fn detached_container_lifecycle() {
    let lcd = Lcd::new("detach");
    let out = lcd.run(&[
        "run",
        "-d",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo hello; echo to-err >&2; sleep 60",
    ]);
    let id = out.ok().trim().to_string();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "run -d should print a generated id: {out}"
    );

    // ps: table, -q, JSON lines.
    lcd.wait_state(&id, "running", Duration::from_secs(10));
    let table = lcd.run(&["ps"]);
    let rows: Vec<&str> = table.ok().lines().collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[0].starts_with("CONTAINER ID"), "{table}");
    // docker's columns; ids cut to 12 characters, names whole.
    assert!(
        rows[0].starts_with("CONTAINER ID   IMAGE") && rows[0].ends_with("NAMES"),
        "{table}"
    );
    assert!(
        rows[1].starts_with(&id[..12]) && rows[1].contains("Up") && rows[1].ends_with(&id),
        "{table}"
    );
    assert_eq!(lcd.run(&["ps", "-q"]).ok(), format!("{}\n", &id[..12]));
    assert_eq!(lcd.run(&["ps", "-q", "--no-trunc"]).ok(), format!("{id}\n"));
    let json = lcd.run(&["ps", "--format", "json"]);
    let lines: Vec<serde_json::Value> = json
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{json}");
    let row = &lines[0];
    assert_eq!(row["Names"], id.as_str());
    assert_eq!(row["State"], "running");
    assert!(
        row["Status"].as_str().expect("status").starts_with("Up"),
        "{row}"
    );
    let pid = u32::try_from(row["Pid"].as_u64().expect("pid")).expect("pid");
    assert!(is_alive(pid), "ps names pid {pid}, which does not run");

    // logs: stdout and stderr of the container.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = lcd.run(&["logs", &id]);
        let text = format!("{}{}", logs.ok(), logs.stderr);
        if text.contains("hello") && text.contains("to-err") {
            break;
        }
        assert!(Instant::now() < deadline, "logs lack the output: {logs}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // stop: sh as pid 1 ignores SIGTERM, so -t 1 ends in SIGKILL.
    let stop = lcd.run(&["stop", "-t", "1", &id]);
    assert_eq!(stop.ok(), format!("{id}\n"));
    assert!(
        stop.elapsed < Duration::from_secs(10),
        "stop took {:?}",
        stop.elapsed
    );
    assert_eq!(lcd.run(&["ps", "-q"]).ok(), "", "the container still runs");
    let row = lcd.ps_of(&id);
    assert_eq!(row["State"], "exited", "{row}");
    let code = row["ExitCode"].as_u64().expect("exit_code");
    assert!(code == 137 || code == 143, "exit code {code}");
    assert!(
        row["Status"]
            .as_str()
            .expect("status")
            .starts_with(&format!("Exited ({code})")),
        "{row}"
    );
    let inspect = lcd.inspect(&id);
    assert_eq!(inspect["Id"], id.as_str());
    assert_eq!(inspect["State"]["Status"], "exited", "{}", inspect["State"]);
    assert_eq!(inspect["State"]["Running"], false, "{}", inspect["State"]);
    assert_eq!(inspect["State"]["ExitCode"], code, "{}", inspect["State"]);
    assert!(
        !is_alive(pid) || pid_reused(pid),
        "the container's process survived stop"
    );

    // rm: the container and its log go.
    assert!(
        lcd.log_path(&id).exists(),
        "no log file at {}",
        lcd.log_path(&id).display()
    );
    assert_eq!(lcd.run(&["rm", &id]).ok(), format!("{id}\n"));
    assert!(!lcd.log_path(&id).exists(), "rm left the log");
    lcd.run(&["inspect", &id]).expect_error(125, &[&id]);
    lcd.assert_clean();
}

/// Whether `pid` now names a process other than a container's (pids may be reused).
fn pid_reused(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .map(|c| !c.contains("sleep"))
        .unwrap_or(true)
}

/// An lcd installed without lcd-logger next to it cannot run a detached container: a clear 125
/// and nothing left behind; attached runs do not need the logger.
#[test]
fn run_detached_without_the_logger_is_125_and_leaves_nothing() {
    let lcd = Lcd::new("nologger");
    let alone = lcd.path("alone");
    std::fs::create_dir(&alone).expect("mkdir");
    std::fs::copy(support::lcd_bin(), alone.join("lcd")).expect("copy lcd");
    let without_logger = |args: &[&str]| {
        let cmd = lcd.command(args);
        let mut moved = Command::new(alone.join("lcd"));
        moved.args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => moved.env(key, v),
                None => moved.env_remove(key),
            };
        }
        moved.stdin(Stdio::null());
        lcd.output(moved)
    };
    let out = without_logger(&["run", "-d", "--name", "d1", lcd.rootfs(), "sleep", "30"]);
    out.expect_error(125, &["lcd-logger", "missing"]);
    assert!(lcd.ids().is_empty(), "{:?}", lcd.ids());
    without_logger(&["run", "--rm", lcd.rootfs(), "true"]).ok();
}

/// containerd's own file:// IO loses stderr once stdout has ended; lcd's logger (`lcd-logger`,
/// started by the shim) keeps both streams, and `lcd rm` does not wait on it.
#[test]
fn logs_keep_stderr_written_after_stdout_closed() {
    let lcd = Lcd::new("latelog");
    let script = "echo first; exec 1>&-; sleep 0.2; echo late-err >&2";
    let out = lcd.run(&[
        "run",
        "-d",
        "--name",
        "l1",
        lcd.rootfs(),
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.ok(), "l1\n");
    let logs = lcd.run(&["logs", "-f", "l1"]);
    // Each stream comes back on its own, as docker's logs give them.
    assert_eq!(logs.ok(), "first\n", "{logs}");
    assert_eq!(logs.stderr, "late-err\n", "{logs}");
    lcd.run(&["rm", "l1"]).ok();
}

#[test]
fn logs_follow_until_the_container_exits() {
    let lcd = Lcd::new("follow");
    let out = lcd.run(&[
        "run",
        "-d",
        "--name",
        "f1",
        lcd.rootfs(),
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done; exit 5",
    ]);
    assert_eq!(out.ok(), "f1\n");
    let logs = lcd.run(&["logs", "-f", "f1"]);
    // All three lines: it followed the container rather than returning with what was there.
    assert_eq!(logs.ok(), "1\n2\n3\n", "{logs}");
    assert!(
        logs.elapsed >= Duration::from_millis(400),
        "returned after {:?}",
        logs.elapsed
    );
    let row = lcd.ps_of("f1");
    assert_eq!(
        row["State"], "exited",
        "logs -f returned while the container ran: {row}"
    );
    assert_eq!(row["ExitCode"], 5, "{row}");
    // Following an exited container prints its log and returns.
    let again = lcd.run(&["logs", "-f", "f1"]);
    assert_eq!(again.ok(), "1\n2\n3\n");
    assert!(
        again.elapsed < Duration::from_secs(5),
        "took {:?}",
        again.elapsed
    );
    lcd.run(&["rm", "f1"]).ok();
    assert!(!lcd.log_path("f1").exists());
    lcd.assert_clean();
}

#[test]
fn create_then_start() {
    let lcd = Lcd::new("create");
    let out = lcd.run(&[
        "create",
        "--name",
        "c1",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo run; echo warn >&2; exit 4",
    ]);
    assert_eq!(out.ok(), "c1\n");
    let row = lcd.ps_of("c1");
    assert_eq!(row["State"], "created", "{row}");
    assert_eq!(
        lcd.run(&["ps", "-q"]).ok(),
        "",
        "a created container is not running"
    );
    assert_eq!(lcd.inspect("c1")["State"]["Status"], "created");

    // start -a: the container's output and status.
    let out = lcd.run(&["start", "-a", "c1"]);
    out.expect_code(4);
    assert_eq!(out.stdout, "run\n", "{out}");
    assert_eq!(out.stderr, "warn\n", "{out}");
    let row = lcd.ps_of("c1");
    assert_eq!(row["State"], "exited", "{row}");
    assert_eq!(row["ExitCode"], 4, "{row}");
    let inspect = lcd.inspect("c1");
    assert_eq!(inspect["State"]["Status"], "exited");
    assert_eq!(inspect["State"]["ExitCode"], 4, "{}", inspect["State"]);

    // start again, detached: it runs once more, output to its log.
    assert_eq!(lcd.run(&["start", "c1"]).ok(), "c1\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = lcd.ps_of("c1");
        let logs = lcd.run(&["logs", "c1"]);
        // The log holds both streams of both runs (the attached one's too, as docker keeps
        // it), each stream back on its own.
        if row["State"] == "exited" && logs.stdout == "run\nrun\n" && logs.stderr == "warn\nwarn\n"
        {
            assert_eq!(row["ExitCode"], 4, "{row}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restart did not run: {row} {logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // inspect agrees with ps about the detached run's exit.
    let inspect = lcd.inspect("c1");
    assert_eq!(inspect["State"]["Status"], "exited", "{}", inspect["State"]);
    assert_eq!(inspect["State"]["ExitCode"], 4, "{}", inspect["State"]);

    // And attached again after the detached run.
    let out = lcd.run(&["start", "-a", "c1"]);
    out.expect_code(4);
    assert_eq!(out.stdout, "run\n", "{out}");
    lcd.run(&["rm", "c1"]).ok();
    lcd.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------

fn signal_is_forwarded(tag: &str, signal: Signal, name: &str, code: i32) {
    let lcd = Lcd::new(tag);
    let script = format!(
        "trap \"echo got-{name}; exit {code}\" {name}; echo ready; while true; do sleep 0.1; done"
    );
    let mut running = lcd.spawn(
        &["run", "--rm", lcd.rootfs(), "sh", "-c", &script],
        Stdio::null(),
    );
    running.wait_for_line("ready", Duration::from_secs(15));
    running.signal(signal);
    let out = running.finish(Duration::from_secs(15));
    out.expect_code(code);
    assert_eq!(out.stdout, format!("ready\ngot-{name}\n"), "{out}");
    lcd.assert_clean();
}

#[test]
fn sigterm_is_forwarded_to_the_container() {
    signal_is_forwarded("sigterm", Signal::SIGTERM, "TERM", 9);
}

#[test]
fn sigint_is_forwarded_to_the_container() {
    signal_is_forwarded("sigint", Signal::SIGINT, "INT", 8);
}

// ---------------------------------------------------------------------------------------------
// The managed containerd, version, help
// ---------------------------------------------------------------------------------------------

#[test]
fn managed_daemon_is_reused_and_stoppable() {
    let lcd = Lcd::bare("daemon");
    let status = lcd.run(&["daemon", "status"]);
    status.expect_code(3);
    assert!(status.stdout.contains("stopped"), "{status}");

    let first = lcd.run(&["daemon", "start"]);
    let second = lcd.run(&["daemon", "start"]);
    assert_eq!(
        first.ok(),
        second.ok(),
        "the second start did not reuse the daemon"
    );
    let pid = pid_in(&first.stdout);
    assert!(is_alive(pid));
    let sock = lcd.exec_root().join("containerd/containerd.sock");
    assert!(
        first.stdout.contains(sock.to_str().expect("utf-8")),
        "{first}"
    );
    let status = lcd.run(&["daemon", "status"]);
    assert_eq!(pid_in(status.ok()), pid);

    // Commands use the same daemon.
    lcd.run(&["ps", "-a"]).ok();
    let version = lcd.run(&["version"]);
    assert_eq!(pid_in(lcd.run(&["daemon", "status"]).ok()), pid);
    let containerd = run_command(
        {
            let mut c = Command::new("containerd");
            c.arg("--version");
            c
        },
        None,
        TIMEOUT,
    )
    .expect("containerd --version");
    // "containerd github.com/containerd/containerd 1.6.20~ds1 <revision>"
    let server_version = containerd
        .ok()
        .split_whitespace()
        .nth(2)
        .expect("containerd's version")
        .to_string();
    assert!(version.ok().contains(&server_version), "{version}");
    assert!(
        version.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    let json = lcd.run(&["version", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.ok()).expect("version JSON");
    // docker's keys.
    assert_eq!(v["Server"]["Version"], server_version.as_str(), "{v}");
    assert_eq!(v["Client"]["Version"], env!("CARGO_PKG_VERSION"), "{v}");
    lcd.run(&["version", "--format", "yaml"])
        .expect_error(125, &["yaml"]);

    lcd.run(&["daemon", "stop"]).ok();
    assert!(!is_alive(pid), "containerd {pid} survived daemon stop");
    let status = lcd.run(&["daemon", "status"]);
    status.expect_code(3);
    assert!(status.stdout.contains("stopped"), "{status}");
    // Stopping a stopped daemon is fine.
    lcd.run(&["daemon", "stop"]).ok();
    // --address and the managed daemon do not mix.
    lcd.run(&["--address", "/tmp/x.sock", "daemon", "status"])
        .expect_error(125, &["--address"]);
}

/// Two data roots, one exec root (the default /run/lcd is shared by any two): the second data root
/// is refused with one line naming the first, and the first's containerd and containers go on.
#[test]
fn a_second_data_root_on_an_exec_root_in_use_is_refused() {
    let lcd = Lcd::new("roots");
    let other_root = lcd.path("data2");
    let with_other_root = |args: &[&str]| {
        let mut cmd = lcd.command(args);
        cmd.env("LCD_DATA_ROOT", &other_root);
        cmd
    };
    // Whatever the other data root might start is stopped (through its pid file) before `lcd`
    // stops its own.
    struct StopOnDrop(Option<Command>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            if let Some(cmd) = self.0.take() {
                let _ = run_command(cmd, None, TIMEOUT);
            }
        }
    }
    let _stop_other = StopOnDrop(Some(with_other_root(&["daemon", "stop"])));

    assert_eq!(
        lcd.run(&["run", "-d", "--name", "keep", lcd.rootfs(), "sleep", "60"])
            .ok(),
        "keep\n"
    );
    lcd.wait_state("keep", "running", Duration::from_secs(10));
    let pid = pid_in(lcd.run(&["daemon", "status"]).ok());
    let first_root = lcd.data_root();
    let first_root = first_root.to_str().expect("utf-8");

    let out = lcd.output(with_other_root(&[
        "run",
        "--rm",
        lcd.rootfs(),
        "echo",
        "hi",
    ]));
    out.expect_error(
        125,
        &["in use", first_root, &pid.to_string(), "--exec-root"],
    );
    assert_eq!(out.stdout, "", "{out}");
    lcd.output(with_other_root(&["daemon", "start"]))
        .expect_error(125, &["in use", first_root]);
    // The other data root's containerd is not running; stopping it leaves the first one alone.
    lcd.output(with_other_root(&["daemon", "stop"])).ok();

    assert_eq!(pid_in(lcd.run(&["daemon", "status"]).ok()), pid);
    assert_eq!(lcd.ps_of("keep")["State"], "running");
    assert_eq!(lcd.run(&["rm", "-f", "keep"]).ok(), "keep\n");
    lcd.assert_clean();
}

#[test]
fn help_and_unknown_flags() {
    let lcd = Lcd::bare("help");
    let out = lcd.run(&["--help"]);
    assert!(out.ok().contains("Usage"), "{out}");
    for cmd in ["run", "create"] {
        let out = lcd.run(&[cmd, "--help"]);
        assert!(out.ok().contains("--hostname"), "{out}");
    }
    for cmd in ["ps", "start", "logs", "daemon"] {
        lcd.run(&[cmd, "--help"]).expect_code(0);
    }
    assert!(lcd
        .run(&["--version"])
        .ok()
        .contains(env!("CARGO_PKG_VERSION")));

    for args in [
        vec!["--bogus", "ps"],
        vec!["ps", "--bogus"],
        vec!["run", "--bogus", "./rootfs", "true"],
        vec!["nosuchcommand"],
    ] {
        let out = lcd.run(&args);
        out.expect_code(125);
        assert!(!out.stderr.is_empty(), "{out}");
    }
    // Nothing above needed a containerd.
    lcd.run(&["daemon", "status"]).expect_code(3);
}

/// `lcd events --format TEMPLATE`: each event through the template, with docker's field names.
#[test]
fn events_take_a_go_template() {
    let lcd = Lcd::new("evtfmt");
    let format = "{{.Action}} {{.ID}} {{.Actor.Attributes.exitCode}} {{.Type}}";
    let mut events = lcd.spawn(
        &["events", "--format", format, "--filter", "container=evt"],
        Stdio::null(),
    );
    // The subscription is live once it shows a run's events.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = lcd.run(&[
            "run",
            "--rm",
            "--name",
            "evt",
            lcd.rootfs(),
            "sh",
            "-c",
            "exit 3",
        ]);
        assert_eq!(out.code(), 3, "{out}");
        if events.next_line(Duration::from_millis(500)).is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "lcd events showed nothing");
    }
    events.wait_for_line("die evt 3 container", Duration::from_secs(20));
    events.signal(Signal::SIGTERM);
    events.finish(TIMEOUT).expect_code(0);
    lcd.assert_clean();
}

/// docker's management command: `lcd container ls|run|rm|...` are `ps`, `run`, `rm`..., with the
/// same flags, output and statuses (`ls` also as `list` and `ps`, `rm` also as `remove`).
#[test]
fn container_subcommands_are_the_top_level_ones() {
    let lcd = Lcd::new("mgmt");
    let out = lcd.run(&[
        "container",
        "run",
        "--rm",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    assert_eq!(out.code(), 3, "{out}");
    assert_eq!(out.stdout, "hi\n");
    lcd.run(&[
        "container",
        "create",
        "--name",
        "made",
        lcd.rootfs(),
        "true",
    ])
    .ok();
    for ls in ["ls", "list", "ps"] {
        let out = lcd.run(&["container", ls, "-a", "--format", "{{.Names}} {{.State}}"]);
        assert_eq!(out.ok(), "made created\n", "container {ls}");
    }
    assert_eq!(lcd.run(&["container", "start", "made"]).ok(), "made\n");
    assert_eq!(lcd.run(&["container", "wait", "made"]).ok(), "0\n");
    assert_eq!(lcd.run(&["container", "remove", "made"]).ok(), "made\n");
    lcd.run(&["container", "rm", "made"])
        .expect_error(125, &["no such container"]);
    lcd.run(&["container", "--help"]).ok();
    lcd.run(&["container", "nosuch"]).expect_code(125);
    lcd.assert_clean();
}

/// `lcd run --rm ROOTFS seq 1 1000000 | head -1`: once the reader of lcd's stdout is gone, the
/// container must not block on output nobody reads; lcd returns its status and removes it.
#[test]
fn a_closed_stdout_neither_blocks_the_container_nor_lcd() {
    use std::io::BufRead;
    let lcd = Lcd::new("headpipe");
    let mut cmd = lcd.command(["run", "--rm", lcd.rootfs(), "seq", "1", "1000000"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn lcd");
    let mut first = String::new();
    {
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut first).expect("first line");
        // Dropping the reader closes the pipe, as `head -1` exiting does.
    }
    assert_eq!(first, "1\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lcd did not return after its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(
        lcd.ids(),
        Vec::<String>::new(),
        "--rm removed the container"
    );
    lcd.assert_clean();
}
