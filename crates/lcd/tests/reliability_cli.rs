//! What an adversarial tester broke (issue 17): a killed `lcd exec`, signals lcd did not handle,
//! the host's root as a rootfs, negative numbers read as flags. Each test leaves nothing behind.

mod support;

use std::process::Stdio;

use nix::sys::signal::Signal;
use support::{Lcd, PROMPT};

/// Every catchable signal reaches the container, as docker's sig-proxy does: one that lcd left at
/// its default action killed lcd (SIGALRM: 142) and orphaned the container, and SIGTSTP stopped lcd
/// itself. Here each one is trapped by the container, which says so, while lcd keeps running.
#[test]
fn signals_lcd_did_not_handle_reach_the_container_and_lcd_survives() {
    let lcd = Lcd::new("sigall");
    let names = ["ALRM", "TSTP", "TTIN", "TTOU", "USR2", "PROF"];
    let mut script = String::new();
    for name in names {
        script.push_str(&format!("trap 'echo got-{name}' {name}; "));
    }
    script.push_str("trap 'echo got-TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done");
    let mut running = lcd.spawn(
        &["run", "--rm", lcd.rootfs(), "sh", "-c", &script],
        Stdio::null(),
    );
    running.wait_for_line("ready", PROMPT);
    let signals = [
        Signal::SIGALRM,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGUSR2,
        Signal::SIGPROF,
    ];
    for (signal, name) in signals.into_iter().zip(names) {
        running.signal(signal);
        running.wait_for_line(&format!("got-{name}"), PROMPT);
    }
    running.signal(Signal::SIGTERM);
    let out = running.finish(PROMPT);
    out.expect_code(7);
    lcd.assert_clean();
}

/// The same for `lcd exec`: its signals go to the exec'd process, and lcd survives them.
#[test]
fn signals_reach_an_exec_and_lcd_exec_survives() {
    let lcd = Lcd::new("sigexec");
    lcd.run(&["run", "-d", "--name", "u", lcd.rootfs(), "sleep", "300"])
        .ok();
    let script = "trap 'echo got-ALRM' ALRM; trap 'echo got-TSTP' TSTP; \
                  trap 'exit 5' TERM; echo ready; while :; do sleep 0.1; done";
    let mut running = lcd.spawn(&["exec", "u", "sh", "-c", script], Stdio::null());
    running.wait_for_line("ready", PROMPT);
    running.signal(Signal::SIGALRM);
    running.wait_for_line("got-ALRM", PROMPT);
    running.signal(Signal::SIGTSTP);
    running.wait_for_line("got-TSTP", PROMPT);
    running.signal(Signal::SIGTERM);
    running.finish(PROMPT).expect_code(5);
    lcd.run(&["rm", "-f", "u"]).ok();
    lcd.assert_clean();
}

/// The host's root as a rootfs, however it is spelled, is refused up front with a clear error.
#[test]
fn the_hosts_root_is_refused_as_a_rootfs() {
    let lcd = Lcd::bare("slash");
    let link = lcd.path("to-root");
    std::os::unix::fs::symlink("/", &link).expect("symlink");
    let link = link.to_str().expect("utf-8").to_string();
    for rootfs in ["/", "/..", "//", "/./", link.as_str()] {
        for command in ["run", "create"] {
            let out = lcd.run(&[command, rootfs, "true"]);
            out.expect_error(125, &["rootfs", "host's root directory"]);
        }
    }
    lcd.assert_clean();
}

/// `-m -1` and `kill -s -1` are values, as docker's flag parser takes them, and get docker's
/// meaning: an invalid size, an invalid signal.
#[test]
fn negative_numbers_after_flags_are_values() {
    let lcd = Lcd::new("negative");
    let out = lcd.run(&["run", "--rm", "-m", "-1", lcd.rootfs(), "true"]);
    out.expect_error(125, &["invalid size", "-1"]);
    let out = lcd.run(&["create", "--memory-reservation", "-1", lcd.rootfs(), "true"]);
    out.expect_error(125, &["invalid size", "-1"]);
    let id = lcd
        .run(&["run", "-d", lcd.rootfs(), "sleep", "30"])
        .ok()
        .trim()
        .to_string();
    let out = lcd.run(&["kill", "-s", "-1", &id]);
    out.expect_error(125, &["invalid signal", "-1"]);
    assert_eq!(lcd.ps_of(&id)["State"], "running", "kill -s -1 hurt it");
    lcd.run(&["rm", "-f", &id]).ok();
    lcd.assert_clean();
}

/// An `lcd exec` killed while the shim starts the exec (it waits, up to 30 s, for someone to open
/// the exec's output) left containerd reporting the task UNKNOWN with pid 0: `stop` said "not
/// running" and `rm -f` took 20 s. Killed at several points, the container still stops at once,
/// and no exec FIFO outlives its task.
#[test]
fn a_killed_exec_leaves_the_container_stoppable_and_no_fifos() {
    let lcd = Lcd::new("killexec");
    for name in ["u", "v"] {
        lcd.run(&["run", "-d", "--name", name, lcd.rootfs(), "sleep", "300"])
            .ok();
        kill_execs_at_several_points(&lcd, name);
    }
    assert_eq!(lcd.inspect("u")["State"]["Running"], true);
    let removed = lcd.run(&["rm", "-f", "v"]);
    assert_eq!(removed.ok(), "v\n", "{removed}");
    let stopped = lcd.run(&["stop", "-t", "1", "u"]);
    assert_eq!(stopped.ok(), "u\n", "{stopped}");
    assert_eq!(lcd.ps_of("u")["State"], "exited");
    let left = support::fifos(&lcd.bundles());
    assert!(left.is_empty(), "exec FIFOs outlived the task: {left:?}");
    lcd.run(&["rm", "u"]).ok();
    lcd.assert_clean();
}

/// Start `lcd exec NAME sh -c 'sleep 30'` and SIGKILL it at several points of its start.
fn kill_execs_at_several_points(lcd: &Lcd, name: &str) {
    for delay_ms in [0, 2, 5, 5, 10, 10, 20, 50] {
        let mut exec = lcd
            .command(["exec", name, "sh", "-c", "sleep 30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lcd exec");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // Our own child, by its pid.
        exec.kill().expect("kill lcd exec");
        exec.wait().expect("reap lcd exec");
    }
}

/// containerd killed and started again under an attached `lcd run --rm`: the session goes on (the
/// shim kept the process and its output), ends with the container's own status, and `--rm` still
/// removes everything.
#[test]
fn an_attached_run_survives_a_restart_of_containerd() {
    let lcd = Lcd::new("restart");
    let script = "echo one; while [ ! -e /go ]; do sleep 0.1; done; echo two; exit 7";
    let mut running = lcd.spawn(
        &["run", "--rm", lcd.rootfs(), "sh", "-c", script],
        Stdio::null(),
    );
    running.wait_for_line("one", PROMPT);
    let pid_text = std::fs::read_to_string(lcd.pid_file()).expect("containerd's pid file");
    let pid: i32 = pid_text.trim().parse().expect("a pid");
    // The containerd this test's lcd started, by its pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
    while support::is_alive(u32::try_from(pid).expect("pid")) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    lcd.run(&["daemon", "start"]).ok();
    std::fs::write(lcd.rootfs.join("go"), "").expect("write /go");
    running.wait_for_line("two", PROMPT);
    let out = running.finish(PROMPT);
    out.expect_code(7);
    std::fs::remove_file(lcd.rootfs.join("go")).expect("remove /go");
    lcd.assert_clean();
}

/// containerd killed and started again under `lcd logs -f`: the follower keeps printing what the
/// container writes after the restart, and ends when the container does.
#[test]
fn a_log_follower_survives_a_restart_of_containerd() {
    let lcd = Lcd::new("follow");
    let script = "echo one; while [ ! -e /go ]; do sleep 0.1; done; echo two; exit 3";
    let id = lcd
        .run(&["run", "-d", lcd.rootfs(), "sh", "-c", script])
        .ok()
        .trim()
        .to_string();
    let mut follower = lcd.spawn(&["logs", "-f", &id], Stdio::null());
    follower.wait_for_line("one", PROMPT);
    let pid_text = std::fs::read_to_string(lcd.pid_file()).expect("containerd's pid file");
    let pid: i32 = pid_text.trim().parse().expect("a pid");
    // The containerd this test's lcd started, by its pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
    while support::is_alive(u32::try_from(pid).expect("pid")) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    lcd.run(&["daemon", "start"]).ok();
    std::fs::write(lcd.rootfs.join("go"), "").expect("write /go");
    follower.wait_for_line("two", PROMPT);
    let out = follower.finish(PROMPT);
    out.expect_code(0);
    lcd.wait_state(&id, "exited", PROMPT);
    lcd.run(&["rm", &id]).ok();
    std::fs::remove_file(lcd.rootfs.join("go")).expect("remove /go");
    lcd.assert_clean();
}

/// A symlink planted at a container's log path never makes lcd (root) write through it: the old
/// entry goes when the container is made, and the logger opens without following links.
#[test]
fn a_symlink_at_the_log_path_is_not_followed() {
    let lcd = Lcd::new("logsymlink");
    let victim = lcd.path("victim");
    std::fs::write(&victim, "precious\n").expect("write the victim file");
    let log = lcd.log_path("trap");
    std::fs::create_dir_all(log.parent().expect("logs dir")).expect("logs dir");
    std::os::unix::fs::symlink(&victim, &log).expect("plant the symlink");
    lcd.run(&[
        "run",
        "-d",
        "--name",
        "trap",
        lcd.rootfs(),
        "echo",
        "written",
    ])
    .ok();
    lcd.wait_state("trap", "exited", PROMPT);
    assert_eq!(lcd.run(&["logs", "trap"]).ok(), "written\n");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read the victim file"),
        "precious\n",
        "the container's output went through the symlink"
    );
    lcd.run(&["rm", "trap"]).ok();
    lcd.assert_clean();
}

/// Data and exec roots that other users can write to are refused before anything is made there,
/// as dockerd refuses them: whoever can plant a symlink in them could make lcd write through it.
#[test]
fn roots_other_users_can_write_to_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let lcd = Lcd::new("openroots");
    for (var, dir) in [
        ("LCD_DATA_ROOT", "open-data"),
        ("LCD_EXEC_ROOT", "open-run"),
    ] {
        let open = lcd.path(dir);
        std::fs::create_dir_all(&open).expect("make the open root");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777))
            .expect("chmod 0777");
        let mut cmd = lcd.command(["ps", "-a"]);
        cmd.env(var, &open);
        lcd.output(cmd)
            .expect_error(125, &["writable by other users", dir]);
        assert!(
            support::entries(&open).is_empty(),
            "lcd made files in the refused root {dir}"
        );
    }
    lcd.assert_clean();
}

/// One race over container `name`: `lcd`, the rootfs, the name.
type Race = fn(&Lcd, &str, &str);

/// lcd processes racing over one container's task (no daemon serialises them): `run -d` against
/// `rm -f`, lcd's agent reaping an exit against `rm -f`, two `rm -f` at once, an attached run
/// against `rm -f`. Each used to leave, now and then, a shim and its logger that nothing knew of
/// (containerd deletes a record whatever its task, and leaves the shim of a task deleted twice at
/// once). The four loops run at once, so that the steps interleave; whoever wins, nothing is left.
#[test]
fn racing_commands_over_one_task_leave_no_shim() {
    let lcd = Lcd::new("tasklock");
    let rootfs = lcd.rootfs().to_string();
    std::thread::scope(|scope| {
        let lcd = &lcd;
        let rootfs = rootfs.as_str();
        let modes: [(&str, Race); 4] = [
            ("run", |lcd, rootfs, name| {
                let run = lcd.spawn(
                    &["run", "-d", "--name", name, rootfs, "sleep", "60"],
                    Stdio::null(),
                );
                let rm = lcd.spawn(&["rm", "-f", name], Stdio::null());
                run.finish(PROMPT);
                rm.finish(PROMPT);
            }),
            ("exit", |lcd, rootfs, name| {
                lcd.run(&["run", "-d", "--name", name, rootfs, "true"]).ok();
                lcd.run(&["rm", "-f", name]);
            }),
            ("twice", |lcd, rootfs, name| {
                lcd.run(&["run", "-d", "--name", name, rootfs, "sleep", "60"])
                    .ok();
                let first = lcd.spawn(&["rm", "-f", name], Stdio::null());
                lcd.run(&["rm", "-f", name]);
                first.finish(PROMPT);
            }),
            ("attached", |lcd, rootfs, name| {
                let run = lcd.spawn(
                    &["run", "--name", name, rootfs, "sleep", "60"],
                    Stdio::null(),
                );
                let rm = lcd.spawn(&["rm", "-f", name], Stdio::null());
                rm.finish(PROMPT);
                // rm may have come before the container existed: then it runs, until removed.
                let deadline = std::time::Instant::now() + PROMPT;
                while support::is_alive(run.pid()) && std::time::Instant::now() < deadline {
                    lcd.run(&["rm", "-f", name]);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                run.finish(PROMPT);
            }),
        ];
        for (mode, race) in modes {
            scope.spawn(move || {
                for round in 0..6 {
                    let name = format!("{mode}{round}");
                    race(lcd, rootfs, &name);
                    // Whoever won, the container goes now.
                    lcd.run(&["rm", "-f", &name]);
                }
            });
        }
    });
    lcd.assert_clean();
}
