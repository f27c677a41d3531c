//! End-to-end tests of `run`'s and `create`'s security and resource flags through the built `lcd`:
//! seccomp, capabilities, privileged, users and groups, devices, ulimits, init, the stop signal and
//! timeout, OOMKilled, and the one-line refusals of bad values (125, nothing created).

mod support;

use std::time::Duration;

use support::Lcd;

/// `/proc/self/status`'s `Seccomp` and `CapEff` lines as the container's command sees them.
fn status_of(lcd: &Lcd, flags: &[&str]) -> (String, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[
        lcd.rootfs(),
        "grep",
        "-E",
        "^(Seccomp|CapEff):",
        "/proc/self/status",
    ]);
    let out = lcd.run(&args);
    let text = out.ok().to_string();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .trim()
            .to_string()
    };
    (field("Seccomp:"), field("CapEff:"))
}

/// A command's stdout in a fresh container with `flags`.
fn run_ok(lcd: &Lcd, flags: &[&str], command: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.push(lcd.rootfs());
    args.extend_from_slice(command);
    lcd.run(&args).ok().to_string()
}

#[test]
fn seccomp_and_capabilities_follow_the_flags() {
    let lcd = Lcd::new("seccaps");
    assert_eq!(
        status_of(&lcd, &[]),
        ("2".to_string(), "00000000a80425fb".to_string())
    );
    assert_eq!(
        status_of(&lcd, &["--security-opt", "seccomp=unconfined"]).0,
        "0"
    );
    assert_eq!(
        status_of(&lcd, &["--cap-add", "NET_ADMIN"]).1,
        "00000000a80435fb"
    );
    assert_eq!(
        status_of(&lcd, &["--cap-drop", "ALL"]),
        ("2".to_string(), "0000000000000000".to_string())
    );
    let (seccomp, caps) = status_of(&lcd, &["--privileged"]);
    assert_eq!(seccomp, "0", "a privileged container has no filter");
    assert!(
        u64::from_str_radix(&caps, 16).expect("hex").count_ones() >= 38,
        "privileged CapEff {caps}"
    );
    // no-new-privileges in docker's forms.
    for opt in [
        "no-new-privileges",
        "no-new-privileges=true",
        "no-new-privileges:true",
    ] {
        let out = run_ok(
            &lcd,
            &["--security-opt", opt],
            &["grep", "NoNewPrivs", "/proc/self/status"],
        );
        assert!(out.contains('1'), "{opt}: {out}");
    }
    // A profile of one's own: docker's format.
    let profile = lcd.path("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("write profile");
    let opt = format!("seccomp={}", profile.display());
    let out = lcd.run(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        lcd.rootfs(),
        "mkdir",
        "/x",
    ]);
    assert_ne!(out.code(), 0, "mkdir should be refused: {out}");
    // AppArmor unconfined is accepted as docker does, with or without AppArmor.
    run_ok(&lcd, &["--security-opt", "apparmor=unconfined"], &["true"]);
    lcd.assert_clean();
}

#[test]
fn privileged_may_mount_and_the_default_may_not() {
    let lcd = Lcd::new("priv");
    let script = "mkdir -p /mnt && mount -t tmpfs none /mnt && echo mounted";
    assert_eq!(
        run_ok(&lcd, &["--privileged"], &["sh", "-c", script]),
        "mounted\n"
    );
    let out = lcd.run(&["run", "--rm", lcd.rootfs(), "sh", "-c", script]);
    assert_ne!(out.code(), 0, "mount should be refused: {out}");
    lcd.assert_clean();
}

/// The gids of a `Groups:` line of /proc/PID/status.
fn kernel_groups(line: &str) -> Vec<&str> {
    line.trim_start_matches("Groups:")
        .split_whitespace()
        .collect()
}

#[test]
fn users_resolve_in_the_rootfs_and_groups_are_added() {
    let lcd = Lcd::new("user");
    for user in ["65534", "nobody"] {
        let out = run_ok(&lcd, &["-u", user], &["id"]);
        assert!(
            out.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
            "-u {user}: {out}"
        );
    }
    let out = run_ok(&lcd, &["-u", "65534", "--group-add", "50"], &["id", "-G"]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["65534", "50"],
        "{out}"
    );
    let out = run_ok(&lcd, &["-u", "1000:1001"], &["id", "-u"]);
    assert_eq!(out, "1000\n");
    // The process's supplementary groups start with its primary gid, as docker's (whose root has
    // `Groups: 0`, and nobody `Groups: 65534`).
    let groups = ["grep", "^Groups:", "/proc/self/status"];
    assert_eq!(kernel_groups(&run_ok(&lcd, &[], &groups)), ["0"]);
    assert_eq!(
        kernel_groups(&run_ok(&lcd, &["-u", "nobody"], &groups)),
        ["65534"]
    );
    // exec -u resolves in the container too.
    let id = lcd
        .run(&["run", "-d", lcd.rootfs(), "sleep", "60"])
        .ok()
        .trim()
        .to_string();
    let out = lcd.run(&["exec", "-u", "nobody", &id, "id"]);
    assert!(
        out.ok().starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{out}"
    );
    for (user, expected) in [
        (None, "0"),
        (Some("nobody"), "65534"),
        (Some("65534"), "65534"),
    ] {
        let mut args = vec!["exec"];
        if let Some(user) = user {
            args.extend(["-u", user]);
        }
        args.push(&id);
        args.extend(groups);
        let out = lcd.run(&args);
        assert_eq!(
            kernel_groups(out.ok()),
            [expected],
            "exec -u {user:?}: {out}"
        );
    }
    lcd.run(&["exec", "-u", "nosuch", &id, "id"])
        .expect_error(125, &["--user", "nosuch"]);
    lcd.run(&["rm", "-f", &id]).ok();
    lcd.assert_clean();
}

#[test]
fn devices_ulimits_and_init() {
    let lcd = Lcd::new("devs");
    let out = run_ok(
        &lcd,
        &["--device", "/dev/null:/dev/mynull"],
        &[
            "sh",
            "-c",
            "test -c /dev/mynull && echo x > /dev/mynull && echo ok",
        ],
    );
    assert_eq!(out, "ok\n");
    let out = run_ok(
        &lcd,
        &["--ulimit", "nofile=100:200"],
        &["sh", "-c", "ulimit -n; ulimit -Hn"],
    );
    assert_eq!(out, "100\n200\n");
    let out = run_ok(&lcd, &["--init"], &["cat", "/proc/1/cmdline"]);
    let argv: Vec<&str> = out.split('\0').collect();
    assert_eq!(argv[..3], ["/sbin/docker-init", "--", "cat"], "{out:?}");
    // -m 0 and --pids-limit -1 are unlimited, as in docker.
    run_ok(&lcd, &["-m", "0", "--pids-limit", "-1"], &["true"]);
    let out = run_ok(
        &lcd,
        &["--sysctl", "net.ipv4.ip_forward=1"],
        &["cat", "/proc/sys/net/ipv4/ip_forward"],
    );
    assert_eq!(out, "1\n");
    lcd.assert_clean();
}

#[test]
fn stop_honours_the_stop_signal_and_timeout() {
    let lcd = Lcd::new("stopsig");
    let script = "trap 'echo got-usr1; exit 7' USR1; echo ready; while true; do sleep 0.1; done";
    let id = lcd
        .run(&[
            "run",
            "-d",
            "--stop-signal",
            "USR1",
            lcd.rootfs(),
            "sh",
            "-c",
            script,
        ])
        .ok()
        .trim()
        .to_string();
    wait_for_log(&lcd, &id, "ready");
    let stop = lcd.run(&["stop", &id]);
    stop.ok();
    assert!(
        stop.elapsed < Duration::from_secs(8),
        "stop took {:?}",
        stop.elapsed
    );
    assert_eq!(lcd.ps_of(&id)["ExitCode"], 7, "the trap did not run");
    assert!(lcd.run(&["logs", &id]).ok().contains("got-usr1"));
    assert_eq!(lcd.inspect(&id)["Config"]["StopSignal"], "SIGUSR1");
    lcd.run(&["rm", &id]).ok();

    // sh as PID 1 ignores SIGTERM: --stop-timeout 1 kills it after a second, not ten.
    let id = lcd
        .run(&[
            "run",
            "-d",
            "--stop-timeout",
            "1",
            lcd.rootfs(),
            "sh",
            "-c",
            "echo ready; while true; do sleep 0.1; done",
        ])
        .ok()
        .trim()
        .to_string();
    wait_for_log(&lcd, &id, "ready");
    let stop = lcd.run(&["stop", &id]);
    stop.ok();
    assert!(
        stop.elapsed >= Duration::from_millis(900) && stop.elapsed < Duration::from_secs(8),
        "stop took {:?}",
        stop.elapsed
    );
    assert_eq!(lcd.ps_of(&id)["ExitCode"], 137);
    lcd.run(&["rm", "-f", &id]).ok();
    lcd.assert_clean();
}

fn wait_for_log(lcd: &Lcd, id: &str, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !lcd.run(&["logs", id]).ok().contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {text:?} in the logs of {id}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn oom_killed_is_recorded() {
    let lcd = Lcd::new("oom");
    let out = lcd.run(&[
        "run",
        "--name",
        "hog",
        "-m",
        "8m",
        lcd.rootfs(),
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ]);
    out.expect_code(137);
    let state = &lcd.inspect("hog")["State"];
    assert_eq!(state["OOMKilled"], true, "{state}");
    lcd.run(&["run", "--name", "fine", "-m", "8m", lcd.rootfs(), "true"])
        .ok();
    assert_eq!(lcd.inspect("fine")["State"]["OOMKilled"], false);
    lcd.run(&["rm", "hog", "fine"]).ok();
    lcd.assert_clean();
}

#[test]
fn inspect_shows_the_security_settings() {
    let lcd = Lcd::new("insp");
    lcd.run(&["create", "--name", "d", lcd.rootfs()]).ok();
    lcd.run(&["create", "--name", "p", "--privileged", lcd.rootfs()])
        .ok();
    lcd.run(&[
        "create",
        "--name",
        "c",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--security-opt",
        "seccomp=unconfined",
        "-u",
        "nobody",
        lcd.rootfs(),
    ])
    .ok();
    let host = |id: &str| lcd.inspect(id)["HostConfig"].clone();
    let d = host("d");
    assert_eq!(d["Privileged"], false);
    assert_eq!(d["Seccomp"], "default");
    assert_eq!(
        d["Capabilities"]["Effective"].as_array().map(Vec::len),
        Some(14),
        "{d}"
    );
    let p = host("p");
    assert_eq!(p["Privileged"], true);
    assert_eq!(p["Seccomp"], "unconfined");
    let c = host("c");
    assert_eq!(c["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(c["CapAdd"], serde_json::json!(["CHOWN"]));
    assert_eq!(c["SecurityOpt"], serde_json::json!(["seccomp=unconfined"]));
    assert_eq!(c["Seccomp"], "unconfined");
    assert_eq!(
        c["Capabilities"]["Effective"],
        serde_json::json!(["CAP_CHOWN"])
    );
    assert_eq!(c["User"]["Uid"], 65534);
    assert_eq!(c["User"]["Gid"], 65534);
    lcd.run(&["rm", "d", "p", "c"]).ok();
    lcd.assert_clean();
}

#[test]
fn bad_values_are_refused_before_anything_is_made() {
    let lcd = Lcd::new("bad");
    let malformed = lcd.path("bad.json");
    std::fs::write(&malformed, "{not json").expect("write");
    let malformed = format!("seccomp={}", malformed.display());
    let cases: &[(&[&str], &[&str])] = &[
        (&["--cap-add", "FOO"], &["--cap-add", "FOO"]),
        (&["--cap-drop", "NOPE"], &["--cap-drop", "NOPE"]),
        (&["--security-opt", &malformed], &["seccomp", "malformed"]),
        (
            &["--security-opt", "seccomp=/no/such.json"],
            &["seccomp", "/no/such.json"],
        ),
        (&["--security-opt", "bogus"], &["--security-opt", "bogus"]),
        (
            &["--security-opt", "no-new-privileges=maybe"],
            &["no-new-privileges"],
        ),
        (
            &["--security-opt", "apparmor=docker-default"],
            &["apparmor"],
        ),
        (
            &["--device", "/dev/nosuchdevice"],
            &["--device", "/dev/nosuchdevice"],
        ),
        (&["--device", "/dev/null:/dev/n:xyz"], &["--device"]),
        (&["--ulimit", "nofile=200:100"], &["--ulimit", "soft"]),
        (&["--ulimit", "bogus=1"], &["--ulimit", "bogus"]),
        (
            &["--sysctl", "vm.swappiness=10"],
            &["--sysctl", "vm.swappiness"],
        ),
        (&["--sysctl", "novalue"], &["--sysctl"]),
        (
            &["--privileged", "--cap-drop", "NET_RAW"],
            &["--privileged", "--cap-drop"],
        ),
        (&["--oom-score-adj", "2000"], &["--oom-score-adj"]),
        (&["--stop-signal", "NOPE"], &["--stop-signal", "NOPE"]),
        (&["-u", "nosuchuser"], &["--user", "nosuchuser"]),
        (
            &["--group-add", "nosuchgroup"],
            &["--group-add", "nosuchgroup"],
        ),
        (&["-m", "8m", "--memory-swap", "1m"], &["--memory-swap"]),
        (&["--shm-size", "lots"], &["--shm-size"]),
        (&["--cpu-shares", "1"], &["--cpu-shares"]),
    ];
    if std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists() {
        eprintln!("this host has AppArmor: apparmor=docker-default may be accepted");
    }
    for (flags, words) in cases {
        if flags.contains(&"apparmor=docker-default")
            && std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists()
        {
            continue;
        }
        for cmd in ["create", "run"] {
            let mut args = vec![cmd];
            args.extend_from_slice(flags);
            args.extend_from_slice(&[lcd.rootfs(), "true"]);
            lcd.run(&args).expect_error(125, words);
        }
    }
    assert_eq!(
        lcd.run(&["ps", "-a", "-q"]).ok(),
        "",
        "a refused container was made"
    );
    lcd.assert_clean();
}

#[test]
fn image_containers_take_the_same_flags() {
    let lcd = Lcd::new("imgsec");
    lcd.run(&["import", lcd.rootfs(), "bb"]).ok();
    let out = lcd.run(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "-u",
        "nobody",
        "--group-add",
        "50",
        "--ulimit",
        "nofile=100:200",
        "bb",
        "sh",
        "-c",
        "id -G; ulimit -n; grep CapEff /proc/self/status",
    ]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["65534", "50"],
        "{out}"
    );
    assert_eq!(lines[1], "100", "{out}");
    assert!(lines[2].ends_with("0000000000000000"), "{out}");
    // exec -u in an image container reads the snapshot's passwd.
    let id = lcd
        .run(&["run", "-d", "bb", "sleep", "60"])
        .ok()
        .trim()
        .to_string();
    let out = lcd.run(&["exec", "-u", "nobody", &id, "id"]);
    assert!(
        out.ok().starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{out}"
    );
    lcd.run(&["rm", "-f", &id]).ok();
    // An image's user gets docker's groups too: the primary gid first.
    for (user, expected) in [(None, "0"), (Some("nobody"), "65534")] {
        let mut args = vec!["run", "--rm"];
        if let Some(user) = user {
            args.extend(["-u", user]);
        }
        args.extend(["bb", "grep", "^Groups:", "/proc/self/status"]);
        let out = lcd.run(&args);
        assert_eq!(kernel_groups(out.ok()), [expected], "-u {user:?}: {out}");
    }
    // A bad value leaves no container (and no snapshot: ps -a and assert_clean check).
    lcd.run(&["run", "--rm", "--cap-add", "FOO", "bb", "true"])
        .expect_error(125, &["--cap-add", "FOO"]);
    assert_eq!(lcd.run(&["ps", "-a", "-q"]).ok(), "");
    lcd.assert_clean();
}
