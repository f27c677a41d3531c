//! End-to-end tests of the commands a docker user reaches for beyond the lifecycle: wait, cp,
//! diff, export, container/system prune, system df, info, logs' filters and the logs of
//! attached containers, --env-file/--label/--label-file, completion and man. Each test has its own
//! temp dir, namespace and managed containerd (see `support`).

mod support;

use std::io::Write;
use std::process::Stdio;
use support::Lcd;

/// Mounts lcd made for a copy, export or diff that are still there.
fn leftover_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("lcd-rootfs-"))
        .map(str::to_string)
        .collect()
}

/// A tar stream's entry names, through the system's tar.
fn tar_names(archive: &[u8]) -> Vec<String> {
    let mut child = std::process::Command::new("tar")
        .arg("-t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = archive.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("tar -t");
    writer.join().expect("writer");
    assert!(out.status.success(), "tar -t failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

/// An image of the fixture's rootfs, imported as `box`.
fn import_box(lcd: &Lcd) {
    lcd.run(&["import", lcd.rootfs(), "box"]).ok();
}

#[test]
fn wait_prints_each_exit_code_in_order_and_reports_unknown_ids() {
    let lcd = Lcd::new("wait");
    lcd.run(&[
        "run",
        "-d",
        "--name",
        "three",
        lcd.rootfs(),
        "sh",
        "-c",
        "sleep 1; exit 3",
    ])
    .ok();
    lcd.run(&["run", "--name", "seven", lcd.rootfs(), "sh", "-c", "exit 7"])
        .expect_code(7);
    lcd.run(&["create", "--name", "fresh", lcd.rootfs(), "true"])
        .ok();
    let out = lcd.run(&["wait", "three", "seven", "fresh"]);
    assert_eq!(out.ok(), "3\n7\n0\n", "{out}");
    let out = lcd.run(&["wait", "seven", "nosuch"]);
    out.expect_code(125);
    assert_eq!(out.stdout, "7\n", "{out}");
    assert!(out.stderr.contains("nosuch"), "{out}");
    lcd.run(&["rm", "-f", "three", "seven", "fresh"]).ok();
    lcd.assert_clean();
}

#[test]
fn cp_copies_both_ways_for_running_and_stopped_rootfs_containers() {
    let lcd = Lcd::new("cp");
    let host = lcd.path("host");
    std::fs::create_dir_all(host.join("dir/sub")).expect("mkdir");
    std::fs::write(host.join("dir/sub/f.txt"), "from the host\n").expect("write");
    std::fs::write(host.join("one.txt"), "one\n").expect("write");
    let host_dir = host.join("dir").display().to_string();
    let one = host.join("one.txt").display().to_string();

    // Stopped: the container has never run.
    lcd.run(&["create", "--name", "c", lcd.rootfs(), "sleep", "60"])
        .ok();
    lcd.run(&["cp", &one, "c:/tmp/"]).ok();
    lcd.run(&["cp", &host_dir, "c:/tmp/copied"]).ok();
    // Running.
    lcd.run(&["start", "c"]).ok();
    let out = lcd.run(&["exec", "c", "cat", "/tmp/one.txt", "/tmp/copied/sub/f.txt"]);
    assert_eq!(out.ok(), "one\nfrom the host\n", "{out}");
    lcd.run(&[
        "exec",
        "c",
        "sh",
        "-c",
        "mkdir /tmp/made && echo inside > /tmp/made/g",
    ])
    .ok();
    let back = host.join("back");
    lcd.run(&["cp", "c:/tmp/made", &back.display().to_string()])
        .ok();
    assert_eq!(
        std::fs::read_to_string(back.join("g")).expect("g"),
        "inside\n"
    );
    // Into an existing directory: under the source's name; SRC/. copies what is inside.
    lcd.run(&["cp", "c:/tmp/made", &host.display().to_string()])
        .ok();
    assert!(host.join("made/g").is_file());
    lcd.run(&["cp", "c:/tmp/made/.", &host_dir]).ok();
    assert!(host.join("dir/g").is_file());

    // Tar streams: out on stdout, in from stdin.
    let mut cmd = lcd.command(["cp", "c:/tmp/made", "-"]);
    cmd.stdout(Stdio::piped());
    let tar = cmd.output().expect("cp to stdout");
    assert!(tar.status.success());
    assert_eq!(tar_names(&tar.stdout), ["made", "made/g"]);
    let out = lcd.run_input(&["cp", "-", "c:/root"], &tar.stdout);
    out.ok();
    let out = lcd.run(&["exec", "c", "cat", "/root/made/g"]);
    assert_eq!(out.ok(), "inside\n", "{out}");

    // Errors, one line each, nothing changed.
    lcd.run(&["cp", "c:/nosuch", &host.display().to_string()])
        .expect_error(125, &["could not find the file /nosuch in container c"]);
    lcd.run(&["cp", &one, "c:/nodir/"])
        .expect_error(125, &["no such directory"]);
    lcd.run(&["cp", &host_dir, "c:/bin/sh"])
        .expect_error(125, &["cannot overwrite non-directory"]);
    lcd.run(&["cp", &one, "nosuch:/tmp"])
        .expect_error(125, &["nosuch"]);
    lcd.run(&["cp", &one, &host_dir])
        .expect_error(125, &["at least one container"]);
    lcd.run(&["cp", "c:/a", "c:/b"])
        .expect_error(125, &["between containers"]);
    lcd.run(&["cp", "-", "c:/tmp/one.txt"])
        .expect_error(125, &["must be a directory"]);

    lcd.run(&["rm", "-f", "c"]).ok();
    assert!(leftover_mounts().is_empty(), "{:?}", leftover_mounts());
    lcd.assert_clean();
}

#[test]
fn cp_never_follows_a_containers_symlink_out_of_it() {
    let lcd = Lcd::new("cpsym");
    // Inside the container, /escape leads to "/" and /etc-link to /etc: the container's own.
    std::os::unix::fs::symlink("/", lcd.rootfs.join("escape")).expect("symlink");
    std::os::unix::fs::symlink("/etc", lcd.rootfs.join("etc-link")).expect("symlink");
    let marker = lcd.path("marker.txt");
    std::fs::write(&marker, "marker\n").expect("write");
    let marker = marker.display().to_string();
    lcd.run(&["run", "-d", "--name", "s", lcd.rootfs(), "sleep", "60"])
        .ok();
    lcd.run(&["cp", &marker, "s:/etc-link/"]).ok();
    assert!(
        lcd.rootfs.join("etc/marker.txt").is_file(),
        "landed in the container's /etc"
    );
    assert!(
        !std::path::Path::new("/etc/marker.txt").exists(),
        "wrote into the host's /etc"
    );
    // -L follows the link, inside the container.
    let mut cmd = lcd.command(["cp", "-L", "s:/escape/etc/passwd", "-"]);
    cmd.stdout(Stdio::piped());
    let tar = cmd.output().expect("cp");
    assert!(tar.status.success());
    assert_eq!(tar_names(&tar.stdout), ["passwd"]);
    let mut cmd = lcd.command(["cp", "s:/escape", "-"]);
    cmd.stdout(Stdio::piped());
    let tar = cmd.output().expect("cp");
    assert_eq!(
        tar_names(&tar.stdout),
        ["escape"],
        "a link is copied as a link"
    );
    lcd.run(&["rm", "-f", "s"]).ok();
    lcd.assert_clean();
}

#[test]
fn image_containers_diff_export_and_cp_through_their_snapshot() {
    let lcd = Lcd::new("diff");
    import_box(&lcd);
    let script = "echo hi > /tmp/x; rm /bin/ls; mkdir -p /new/sub; sleep 60";
    lcd.run(&["run", "-d", "--name", "d", "box", "sh", "-c", script])
        .ok();
    // The script's changes are in once /new/sub exists.
    lcd.run(&[
        "exec",
        "d",
        "sh",
        "-c",
        "while [ ! -d /new/sub ]; do sleep 0.05; done",
    ])
    .ok();
    let expected = "C /bin\nD /bin/ls\nA /new\nA /new/sub\nC /tmp\nA /tmp/x\n";
    assert_eq!(lcd.run(&["diff", "d"]).ok(), expected);

    let archive = lcd.path("d.tar");
    lcd.run(&["export", "-o", &archive.display().to_string(), "d"])
        .ok();
    let names = tar_names(&std::fs::read(&archive).expect("archive"));
    assert!(names.iter().any(|n| n == "tmp/x"), "{names:?}");
    assert!(names.iter().any(|n| n == "proc"), "{names:?}");
    assert!(!names.iter().any(|n| n == "bin/ls"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("proc/")), "{names:?}");

    // Stopped, the snapshot is mounted for the copy, read-write.
    lcd.run(&["stop", "-t", "0", "d"]).ok();
    let file = lcd.path("in.txt");
    std::fs::write(&file, "into the snapshot\n").expect("write");
    lcd.run(&["cp", &file.display().to_string(), "d:/in.txt"])
        .ok();
    let mut cmd = lcd.command(["cp", "d:/in.txt", "-"]);
    cmd.stdout(Stdio::piped());
    let tar = cmd.output().expect("cp");
    assert_eq!(tar_names(&tar.stdout), ["in.txt"]);
    assert!(lcd.run(&["diff", "d"]).ok().contains("A /in.txt\n"));
    assert!(leftover_mounts().is_empty(), "{:?}", leftover_mounts());

    // A rootfs-directory container has no original to compare with.
    lcd.run(&["create", "--name", "dir", lcd.rootfs(), "true"])
        .ok();
    lcd.run(&["diff", "dir"])
        .expect_error(125, &["needs a container made from an image"]);
    lcd.run(&["export", "nosuch"])
        .expect_error(125, &["nosuch"]);
    lcd.run(&["rm", "-f", "d", "dir"]).ok();
    lcd.assert_clean();
}

#[test]
fn prune_df_and_info_agree_on_what_there_is() {
    let lcd = Lcd::new("prune");
    import_box(&lcd);
    lcd.run(&["run", "-d", "--name", "up", "box", "sleep", "60"])
        .ok();
    lcd.run(&["run", "--name", "done", "box", "sh", "-c", "echo out"])
        .ok();
    lcd.run(&["create", "--name", "new", lcd.rootfs(), "true"])
        .ok();

    let info: serde_json::Value =
        serde_json::from_str(lcd.run(&["info", "--format", "json"]).ok()).expect("json");
    assert_eq!(info["Containers"], 3, "{info}");
    assert_eq!(info["ContainersRunning"], 1, "{info}");
    assert_eq!(info["ContainersStopped"], 2, "{info}");
    assert_eq!(info["Images"], 1, "{info}");
    assert_eq!(info["DockerRootDir"], lcd.data_root().display().to_string());
    let out = lcd.run(&[
        "info",
        "--format",
        "{{.ContainersRunning}}/{{.Containers}} {{json .Images}}",
    ]);
    assert_eq!(out.ok(), "1/3 1\n", "{out}");
    lcd.run(&["info", "--format", "{{.Nope}}"])
        .expect_error(125, &["Nope"]);
    let text = lcd.run(&["system", "info"]).ok().to_string();
    assert!(
        text.contains(" Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n"),
        "{text}"
    );

    let df = lcd.run(&["system", "df"]).ok().to_string();
    let lines: Vec<&str> = df.lines().collect();
    assert!(
        lines[0].starts_with("TYPE") && lines[0].ends_with("RECLAIMABLE"),
        "{df}"
    );
    let row = |kind: &str| -> Vec<String> {
        let line = lines.iter().find(|l| l.starts_with(kind)).expect("row");
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(row("Images")[1..3], ["1", "1"], "{df}");
    assert_eq!(row("Containers")[1..3], ["3", "1"], "{df}");

    // Without -f, only a "y" goes on: no answer removes nothing.
    let out = lcd.run_input(&["container", "prune"], b"");
    assert!(out
        .ok()
        .contains("Are you sure you want to continue? [y/N]"));
    assert_eq!(lcd.ids().len(), 3);
    let out = lcd.run_input(&["container", "prune"], b"y\n");
    let text = out.ok();
    assert!(text.contains("Deleted Containers:\n"), "{out}");
    assert!(
        text.contains("\ndone\n") && text.contains("\nnew\n"),
        "{out}"
    );
    assert!(text.contains("Total reclaimed space: "), "{out}");
    assert_eq!(lcd.ids(), ["up"]);
    assert!(!lcd.log_path("done").exists(), "prune left the log");

    // system prune -a: an image no container uses goes; the one in use stays.
    lcd.run(&["tag", "box", "other:1"]).ok();
    lcd.run(&["import", lcd.rootfs(), "unused"]).ok();
    lcd.run(&["stop", "-t", "0", "up"]).ok();
    lcd.run(&["run", "-d", "--name", "keep", "box", "sleep", "60"])
        .ok();
    let out = lcd.run(&["system", "prune", "-f", "-a"]);
    let text = out.ok();
    assert!(text.contains("Deleted Containers:\nup\n"), "{out}");
    assert!(text.contains("Deleted Images:\n"), "{out}");
    assert_eq!(lcd.ids(), ["keep"]);
    let images = lcd.run(&["images", "-q"]).ok().to_string();
    assert_eq!(images.lines().count(), 1, "the used image stays: {images}");
    assert!(lcd.run(&["images"]).ok().contains("box"));
    lcd.run(&["rm", "-f", "keep"]).ok();
    lcd.assert_clean();
}

#[test]
fn logs_of_attached_containers_keep_their_streams_and_filter_like_dockers() {
    let lcd = Lcd::new("logs");
    let out = lcd.run(&[
        "run",
        "--name",
        "a",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo one; echo two >&2; echo three; printf four",
    ]);
    assert_eq!(out.ok(), "one\nthree\nfour");
    let out = lcd.run(&["logs", "a"]);
    assert_eq!(out.ok(), "one\nthree\nfour", "{out}");
    assert_eq!(out.stderr, "two\n", "{out}");
    assert_eq!(lcd.run(&["logs", "--tail", "2", "a"]).ok(), "three\nfour");
    assert_eq!(lcd.run(&["logs", "-n", "0", "a"]).ok(), "");
    assert_eq!(
        lcd.run(&["logs", "--details", "a"]).ok(),
        " one\n three\n four"
    );
    let stamped = lcd.run(&["logs", "-t", "a"]).ok().to_string();
    for line in stamped.lines() {
        let (stamp, _) = line.split_once(' ').expect("a time first");
        assert!(stamp.len() == 30 && stamp.ends_with('Z'), "{stamped}");
    }
    assert_eq!(
        lcd.run(&["logs", "--since", "1h", "a"]).ok(),
        "one\nthree\nfour"
    );
    assert_eq!(lcd.run(&["logs", "--until", "2000-01-01", "a"]).ok(), "");
    assert_eq!(
        lcd.run(&["logs", "--since", "2000-01-01T00:00:00Z", "a"])
            .ok(),
        "one\nthree\nfour"
    );
    lcd.run(&["logs", "--since", "bad", "a"])
        .expect_error(125, &["invalid value for \"since\""]);
    lcd.run(&["logs", "--tail", "x", "a"])
        .expect_error(125, &["tail"]);

    // -d -t: the terminal's output is logged too (docker's \r\n included).
    lcd.run(&[
        "run",
        "-d",
        "-t",
        "--name",
        "t",
        lcd.rootfs(),
        "echo",
        "on a tty",
    ])
    .ok();
    lcd.run(&["wait", "t"]).ok();
    let out = lcd.run(&["logs", "t"]);
    assert_eq!(out.ok(), "on a tty\r\n", "{out}");
    // start -a appends the new run's output.
    lcd.run(&["start", "-a", "a"]).ok();
    assert_eq!(lcd.run(&["logs", "--tail", "1", "a"]).ok(), "four");
    assert_eq!(lcd.run(&["logs", "a"]).ok().matches("one").count(), 2);
    // --rm keeps no log.
    lcd.run(&["run", "--rm", "--name", "gone", lcd.rootfs(), "echo", "x"])
        .ok();
    assert!(!lcd.log_path("gone").exists());
    lcd.run(&["rm", "-f", "a", "t"]).ok();
    lcd.assert_clean();
}

#[test]
fn env_files_and_labels_reach_the_container() {
    let lcd = Lcd::new("meta");
    let env = lcd.path("env");
    std::fs::write(&env, "# comment\nA=from file\n\nB=b\n").expect("write");
    let labels = lcd.path("labels");
    std::fs::write(&labels, "team=db\n# comment\n  tier=1\n").expect("write");
    let env = env.display().to_string();
    let labels = labels.display().to_string();
    let out = lcd.run(&[
        "run",
        "--rm",
        "--env-file",
        &env,
        "-e",
        "B=flag",
        "--label-file",
        &labels,
        "-l",
        "team=web",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo \"$A|$B\"",
    ]);
    assert_eq!(out.ok(), "from file|flag\n", "{out}");
    lcd.run(&[
        "create",
        "--name",
        "l",
        "--label-file",
        &labels,
        "--label",
        "x=1",
        lcd.rootfs(),
    ])
    .ok();
    let inspect = lcd.inspect("l");
    assert_eq!(inspect["Labels"]["team"], "db", "{inspect}");
    assert_eq!(inspect["Labels"]["tier"], "1", "{inspect}");
    assert_eq!(inspect["Labels"]["x"], "1", "{inspect}");
    lcd.run(&[
        "run",
        "--rm",
        "--env-file",
        "/nonexistent/env",
        lcd.rootfs(),
        "true",
    ])
    .expect_error(125, &["--env-file /nonexistent/env"]);
    lcd.run(&[
        "run",
        "--rm",
        "-l",
        "io.lcd.exit-code=0",
        lcd.rootfs(),
        "true",
    ])
    .expect_error(125, &["lcd's own"]);
    // containerd drops a label with an empty value: refused, not lost.
    lcd.run(&["create", "-l", "flag", lcd.rootfs()])
        .expect_error(125, &["empty value"]);
    lcd.run(&["rm", "l"]).ok();
    lcd.assert_clean();
}

#[test]
fn completion_scripts_and_the_man_page_come_from_the_definitions() {
    let lcd = Lcd::bare("complete");
    for shell in ["bash", "zsh", "fish"] {
        let out = lcd.run(&["completion", shell]);
        let script = out.ok();
        assert!(script.contains("lcd"), "{shell}: {out}");
        assert!(
            script.contains("checkpoint"),
            "{shell}: every command is in it"
        );
    }
    lcd.run(&["completion", "tcsh"]).expect_code(125);
    let page = lcd.run(&["man"]).ok().to_string();
    assert!(
        page.starts_with(".ie") || page.contains(".TH lcd 1"),
        "{page}"
    );
    let dir = lcd.path("man");
    lcd.run(&["man", "--dir", &dir.display().to_string()]).ok();
    assert!(dir.join("lcd.1").is_file());
    assert!(dir.join("lcd-run.1").is_file());
}
