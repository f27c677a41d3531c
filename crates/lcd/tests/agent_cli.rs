//! End-to-end tests of lcd's agent (the process beside the managed containerd that acts on
//! detached containers' exits): exits recorded and shims and loggers reaped, `run -d --rm`,
//! `--restart` policies across exits, `lcd stop`, containerd restarts and agent kills, and what a
//! SIGKILLed `lcd rm -f` or `lcd run -d` leaves. Each test has its own temp dir, namespace, managed
//! containerd and agent (see `support`); every one ends with nothing left behind.

mod support;

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use support::{entries, is_alive, shims_of, Lcd, PROMPT};

/// Poll `check` until it holds, panicking with `what` after [`PROMPT`].
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROMPT;
    while !check() {
        assert!(Instant::now() < deadline, "not within {PROMPT:?}: {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of running `lcd-logger`s writing under this fixture's data root.
fn loggers_of(lcd: &Lcd) -> Vec<u32> {
    let root = lcd.data_root();
    let root = root.to_str().expect("utf-8 path").as_bytes().to_vec();
    processes_where(|args| {
        args.first().is_some_and(|a| a.ends_with(b"lcd-logger"))
            && args.iter().any(|a| a.starts_with(&root))
    })
}

/// Pids of live processes whose argv satisfies `matches` (read from /proc; nothing is signalled).
fn processes_where(matches: impl Fn(&[&[u8]]) -> bool) -> Vec<u32> {
    entries(Path::new("/proc"))
        .into_iter()
        .filter_map(|entry| {
            let pid = entry.file_name()?.to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            (matches(&args) && is_alive(pid)).then_some(pid)
        })
        .collect()
}

/// The agent's pid from `lcd daemon status`, or None when it says the agent is stopped.
fn agent_pid(lcd: &Lcd) -> Option<u32> {
    let status = lcd.run(&["daemon", "status"]);
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("agent "))
        .unwrap_or_else(|| panic!("no agent line in {status}"));
    line.strip_prefix("agent running (pid ")
        .and_then(|rest| rest.strip_suffix(')'))
        .map(|pid| pid.parse().expect("agent pid"))
}

/// Stop the managed containerd and check that its agent went with it.
#[track_caller]
fn stop_daemon_and_agent(lcd: &Lcd) {
    let agent = agent_pid(lcd);
    lcd.run(&["daemon", "stop"]).ok();
    if let Some(pid) = agent {
        assert!(!is_alive(pid), "the agent {pid} survived `lcd daemon stop`");
    }
    assert_eq!(agent_pid(lcd), None);
}

fn state_of(lcd: &Lcd, id: &str) -> serde_json::Value {
    lcd.inspect(id)["State"].clone()
}

#[test]
fn a_detached_containers_exit_is_recorded_and_its_shim_and_logger_go() {
    let lcd = Lcd::new("reap");
    let id = lcd.run(&["run", "-d", lcd.rootfs(), "sh", "-c", "echo hi; exit 3"]);
    let id = id.ok().trim().to_string();
    assert!(agent_pid(&lcd).is_some(), "no agent after run -d");
    // The shim and the logger go once the exit is recorded, as under dockerd.
    eventually("the exited container's shim and logger are reaped", || {
        shims_of(&lcd.ns).is_empty() && loggers_of(&lcd).is_empty()
    });
    let state = state_of(&lcd, &id);
    assert_eq!(state["Status"], "exited", "{state}");
    assert_eq!(state["ExitCode"], 3, "{state}");
    assert!(state["FinishedAt"].is_string(), "{state}");
    assert_eq!(lcd.run(&["logs", &id]).ok(), "hi\n");
    lcd.run(&["rm", &id]).ok();
    lcd.assert_clean();
    stop_daemon_and_agent(&lcd);
}

#[test]
fn run_detached_rm_removes_the_container_and_its_log_once_it_exits() {
    let lcd = Lcd::new("drm");
    let out = lcd.run(&["run", "-d", "--rm", lcd.rootfs(), "echo", "gone"]);
    let id = out.ok().trim().to_string();
    eventually("the -d --rm container is removed", || lcd.ids().is_empty());
    assert!(!lcd.log_path(&id).exists(), "its log file is left");
    lcd.assert_clean();
    assert!(loggers_of(&lcd).is_empty());
    stop_daemon_and_agent(&lcd);
}

/// `lcd restart` as docker's: a running container gets a new process (the old one stopped with
/// its stop signal, then SIGKILL after -t), a `-d --rm` one is not removed by the agent in between
/// (it is once stopped for good), an exited one runs again, one started attached runs on detached
/// with its output in the log; an unknown one is 125, and the others are still restarted.
#[test]
fn restart_stops_and_starts_again_and_the_agent_does_not_interfere() {
    let lcd = Lcd::new("restart");
    let script = "echo started; trap 'echo term; exit 0' TERM; while :; do sleep 0.1; done";
    let out = lcd.run(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "auto",
        lcd.rootfs(),
        "sh",
        "-c",
        script,
    ]);
    out.ok();
    eventually("the first run's output", || {
        lcd.run(&["logs", "auto"]).stdout == "started\n"
    });
    let before = lcd.inspect("auto")["State"]["Pid"].clone();
    assert_eq!(lcd.run(&["restart", "auto"]).ok(), "auto\n");
    let after = lcd.inspect("auto");
    assert_eq!(after["State"]["Status"], "running", "{after}");
    assert_ne!(after["State"]["Pid"], before);
    eventually("the second run's output after the first's TERM", || {
        lcd.run(&["logs", "auto"]).stdout == "started\nterm\nstarted\n"
    });
    // The agent saw the first exit and left the container alone.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lcd.ids(), ["auto"]);
    lcd.run(&["stop", "auto"]).ok();
    eventually("the -d --rm container removed after a stop", || {
        lcd.ids().is_empty()
    });

    lcd.run(&[
        "run",
        "--name",
        "done",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo ran",
    ])
    .ok();
    assert_eq!(lcd.run(&["restart", "done", "nosuch"]).code(), 125);
    eventually("the exited container ran again and was reaped", || {
        lcd.run(&["logs", "done"]).stdout == "ran\nran\n"
            && state_of(&lcd, "done")["Status"] == "exited"
            && shims_of(&lcd.ns).is_empty()
    });
    lcd.run(&["rm", "done"]).ok();
    lcd.assert_clean();
    stop_daemon_and_agent(&lcd);
}

#[test]
fn restart_on_failure_retries_up_to_its_limit_and_counts() {
    let lcd = Lcd::new("onfail");
    let out = lcd.run(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    let id = out.ok().trim().to_string();
    eventually("three runs, the last one exited and reaped", || {
        let logs = lcd.run(&["logs", &id]).ok().to_string();
        logs.lines().count() == 3
            && state_of(&lcd, &id)["Status"] == "exited"
            && shims_of(&lcd.ns).is_empty()
    });
    let inspect = lcd.inspect(&id);
    assert_eq!(inspect["RestartCount"], 2, "{inspect}");
    assert_eq!(inspect["State"]["ExitCode"], 3);
    assert_eq!(
        inspect["HostConfig"]["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    assert_eq!(lcd.run(&["logs", &id]).ok(), "run\nrun\nrun\n");
    // A success ends on-failure's retries at once.
    let out = lcd.run(&["run", "-d", "--restart", "on-failure", lcd.rootfs(), "true"]);
    let ok = out.ok().trim().to_string();
    eventually("the successful run is reaped", || {
        state_of(&lcd, &ok)["Status"] == "exited" && shims_of(&lcd.ns).is_empty()
    });
    assert_eq!(lcd.inspect(&ok)["RestartCount"], 0);
    lcd.run(&["rm", &id, &ok]).ok();
    lcd.assert_clean();
    stop_daemon_and_agent(&lcd);
}

#[test]
fn stop_holds_always_and_unless_stopped_until_containerd_starts_again() {
    let lcd = Lcd::new("always");
    for (name, policy) in [("al", "always"), ("us", "unless-stopped")] {
        let args = ["run", "-d", "--name", name, "--restart", policy];
        let mut args = args.to_vec();
        args.extend([lcd.rootfs(), "sleep", "1000"]);
        lcd.run(&args).ok();
    }
    // A process that exits on its own is restarted: kill it behind lcd's back.
    let pid = state_of(&lcd, "al")["Pid"].as_u64().expect("pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the container's process");
    eventually("al is restarted after its process was killed", || {
        lcd.inspect("al")["RestartCount"] == 1 && state_of(&lcd, "al")["Status"] == "running"
    });
    lcd.run(&["stop", "-t", "0", "al", "us"]).ok();
    for id in ["al", "us"] {
        assert_eq!(state_of(&lcd, id)["Status"], "exited");
    }
    // containerd starts again: `always` runs again, `unless-stopped` stays stopped.
    stop_daemon_and_agent(&lcd);
    lcd.run(&["daemon", "start"]).ok();
    eventually("al runs again once containerd started again", || {
        state_of(&lcd, "al")["Status"] == "running"
    });
    assert_eq!(lcd.inspect("al")["RestartCount"], 2);
    assert_eq!(state_of(&lcd, "us")["Status"], "exited");
    lcd.run(&["rm", "-f", "al", "us"]).ok();
    lcd.assert_clean();
    assert!(loggers_of(&lcd).is_empty());
    stop_daemon_and_agent(&lcd);
}

#[test]
fn a_killed_agent_is_back_at_the_next_command_and_catches_up_on_missed_exits() {
    let lcd = Lcd::new("agentkill");
    lcd.run(&[
        "run",
        "-d",
        "--name",
        "plain",
        lcd.rootfs(),
        "sleep",
        "1000",
    ])
    .ok();
    lcd.run(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        lcd.rootfs(),
        "sleep",
        "1000",
    ])
    .ok();
    let pids: Vec<i32> = ["plain", "again"]
        .iter()
        .map(|id| state_of(&lcd, id)["Pid"].as_u64().expect("pid") as i32)
        .collect();
    let agent = agent_pid(&lcd).expect("an agent runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the agent");
    eventually("the agent is gone", || !is_alive(agent));
    // Both containers' processes exit while no agent runs.
    for pid in &pids {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill a container's process");
    }
    eventually("the containers' processes are gone", || {
        pids.iter().all(|pid| !is_alive(*pid as u32))
    });
    assert_eq!(
        agent_pid(&lcd),
        None,
        "`daemon status` does not start the agent"
    );
    assert_eq!(shims_of(&lcd.ns).len(), 2, "nobody reaped the shims yet");
    // The next command starts an agent, which records the exits it missed and restarts `again`.
    lcd.run(&["ps", "-a"]).ok();
    let back = agent_pid(&lcd).expect("the agent is back");
    assert_ne!(back, agent);
    eventually("plain's exit is recorded and again runs again", || {
        state_of(&lcd, "plain")["Status"] == "exited"
            && state_of(&lcd, "again")["Status"] == "running"
            && shims_of(&lcd.ns).len() == 1
    });
    assert_eq!(state_of(&lcd, "plain")["ExitCode"], 137);
    assert_eq!(lcd.inspect("again")["RestartCount"], 1);
    lcd.run(&["rm", "-f", "plain", "again"]).ok();
    lcd.assert_clean();
    assert!(loggers_of(&lcd).is_empty());
    stop_daemon_and_agent(&lcd);
}

#[test]
fn a_killed_rm_f_leaves_an_exited_container_never_a_created_one() {
    let lcd = Lcd::new("rmkill");
    for point in ["rm-after-exit-recorded", "rm-after-kill"] {
        let id = lcd.run(&["run", "-d", lcd.rootfs(), "sleep", "1000"]);
        let id = id.ok().trim().to_string();
        let mut rm = lcd.command(["rm", "-f", id.as_str()]);
        rm.env("LCD_CRASH_AT", point);
        let out = lcd.output(rm);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "rm -f was not killed at {point}: {out}"
        );
        // After the kill point, the agent records the exit; after the record point, rm did.
        eventually("the killed rm's container shows how it ended", || {
            state_of(&lcd, &id)["Status"] == "exited" && shims_of(&lcd.ns).is_empty()
        });
        assert_eq!(state_of(&lcd, &id)["ExitCode"], 137, "at {point}");
        lcd.run(&["rm", &id]).ok();
    }
    lcd.assert_clean();
    assert!(loggers_of(&lcd).is_empty());
    stop_daemon_and_agent(&lcd);
}

#[test]
fn start_after_a_run_d_killed_between_create_and_start_runs_with_one_logger() {
    let lcd = Lcd::new("runkill");
    let mut run = lcd.command([
        "run",
        "-d",
        "--name",
        "k",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo once; sleep 1000",
    ]);
    run.env("LCD_CRASH_AT", "start-after-task-create");
    let out = lcd.output(run);
    assert_eq!(out.status.signal(), Some(9), "run -d was not killed: {out}");
    assert_eq!(loggers_of(&lcd).len(), 1, "the created task has its logger");
    lcd.run(&["start", "k"]).ok();
    assert_eq!(state_of(&lcd, "k")["Status"], "running");
    eventually("the container's output is logged", || {
        lcd.run(&["logs", "k"]).ok() == "once\n"
    });
    assert_eq!(loggers_of(&lcd).len(), 1, "two loggers for one container");
    assert_eq!(shims_of(&lcd.ns).len(), 1);
    lcd.run(&["rm", "-f", "k"]).ok();
    lcd.assert_clean();
    assert!(loggers_of(&lcd).is_empty());
    stop_daemon_and_agent(&lcd);
}

#[test]
fn restart_flags_are_checked_like_dockers() {
    let lcd = Lcd::new("flags");
    let rootfs = lcd.rootfs();
    lcd.run(&["run", "-d", "--rm", "--restart", "always", rootfs, "true"])
        .expect_error(125, &["conflicting options", "--restart", "--rm"]);
    lcd.run(&["run", "-d", "--restart", "sometimes", rootfs, "true"])
        .expect_error(125, &["invalid restart policy", "sometimes"]);
    lcd.run(&["run", "-d", "--restart", "always:3", rootfs, "true"])
        .expect_error(125, &["on-failure"]);
    lcd.run(&["run", "--restart", "always", rootfs, "true"])
        .expect_error(125, &["--restart needs -d"]);
    // Without lcd's own containerd there is no agent to honour them.
    let socket = lcd.path("elsewhere.sock");
    let socket = socket.to_str().expect("utf-8 path");
    lcd.run(&["--address", socket, "run", "-d", "--rm", rootfs, "true"])
        .expect_error(125, &["agent", "--address"]);
    lcd.run(&["--address", socket, "create", "--restart", "always", rootfs])
        .expect_error(125, &["agent", "--address"]);
    assert!(lcd.ids().is_empty());
    lcd.assert_clean();
    stop_daemon_and_agent(&lcd);
}

#[test]
fn a_containerd_killed_and_started_again_gets_a_new_agent_at_once() {
    let lcd = Lcd::new("cdkill");
    lcd.run(&["run", "-d", "--name", "w", lcd.rootfs(), "sleep", "1000"])
        .ok();
    let container_pid = state_of(&lcd, "w")["Pid"].as_u64().expect("pid") as i32;
    let old_agent = agent_pid(&lcd).expect("an agent runs");
    let containerd = support::pid_in(lcd.run(&["daemon", "status"]).ok());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(containerd as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill containerd");
    eventually("containerd is gone", || !is_alive(containerd));
    // The next command starts containerd again, and with it an agent for it (the old one goes).
    lcd.run(&["ps", "-a"]).ok();
    let agent = agent_pid(&lcd).expect("an agent runs for the new containerd");
    assert_ne!(agent, old_agent);
    assert!(
        !is_alive(old_agent),
        "the old containerd's agent is still there"
    );
    // The new agent sees exits: the container's shim outlived containerd and goes at the exit.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(container_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the container's process");
    eventually("the exit is recorded and the shim reaped", || {
        state_of(&lcd, "w")["Status"] == "exited" && shims_of(&lcd.ns).is_empty()
    });
    assert_eq!(state_of(&lcd, "w")["ExitCode"], 137);
    lcd.run(&["rm", "w"]).ok();
    lcd.assert_clean();
    assert!(loggers_of(&lcd).is_empty());
    stop_daemon_and_agent(&lcd);
}
