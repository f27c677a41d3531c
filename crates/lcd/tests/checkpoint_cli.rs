//! `lcd checkpoint create|ls|rm` and `lcd start --checkpoint` end to end, with the real criu: a
//! counter resumes where it was checkpointed, and every bad input or fault (a missing or broken
//! criu, a name that exists, a stopped, paused or terminal container, a corrupt checkpoint, a
//! restore while running, a full disk, a TCP connection) is one clear line that leaves the
//! container as it was. Where no working criu exists the real dumps are skipped with the reason.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Lcd, PROMPT};

/// Why CRIU cannot checkpoint on this machine, if it cannot.
fn criu_unusable() -> Option<String> {
    match std::process::Command::new("criu").arg("check").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "criu check failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .find(|l| l.contains("Error"))
                .unwrap_or("no output")
        )),
        Err(e) => Some(format!("cannot run criu: {e}")),
    }
}

macro_rules! require_criu {
    () => {
        if let Some(reason) = criu_unusable() {
            eprintln!("skipped: {reason} (`bash .ci/install` builds a working criu)");
            return;
        }
    };
}

/// The numbers a counter appended to `path`, one per line.
fn counts(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Wait until `path` holds more than `n` counts (bounded only to fail a hang, not to time).
fn wait_for_counts(path: &Path, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = counts(path);
        if found.len() > n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} never got past {n} counts",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_consecutive(values: &[u64]) {
    for pair in values.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "gap or restart: {values:?}");
    }
}

const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i >> /count.log; sleep 0.05; done";

/// Run the counter detached as `name` and wait until it has counted a little.
fn run_counter(lcd: &Lcd, name: &str) -> PathBuf {
    lcd.run(&[
        "run",
        "-d",
        "--name",
        name,
        lcd.rootfs(),
        "sh",
        "-c",
        COUNTER,
    ])
    .ok();
    let log = lcd.rootfs.join("count.log");
    wait_for_counts(&log, 5);
    log
}

fn checkpoint_names(lcd: &Lcd, args: &[&str]) -> Vec<String> {
    let mut full = vec!["checkpoint", "ls"];
    full.extend_from_slice(args);
    let out = lcd.run(&full);
    let mut lines = out.ok().lines().map(str::to_string);
    assert_eq!(lines.next().as_deref(), Some("CHECKPOINT NAME"), "{out}");
    lines.collect()
}

#[test]
fn checkpoint_create_then_start_resumes_the_counter() {
    require_criu!();
    let lcd = Lcd::new("cp-resume");
    let log = run_counter(&lcd, "c");
    let out = lcd.run(&["checkpoint", "create", "c", "cp1"]);
    assert_eq!(out.ok(), "cp1\n");
    lcd.wait_state("c", "exited", PROMPT);
    let at_dump = counts(&log);
    assert_eq!(checkpoint_names(&lcd, &["c"]), ["cp1"]);

    assert_eq!(lcd.run(&["start", "--checkpoint", "cp1", "c"]).ok(), "c\n");
    lcd.wait_state("c", "running", PROMPT);
    let after = wait_for_counts(&log, at_dump.len() + 5);
    assert_consecutive(&after);

    // Restoring while it runs, and a name that exists: one line each, it runs on.
    lcd.run(&["start", "--checkpoint", "cp1", "c"])
        .expect_error(125, &["c", "running"]);
    lcd.run(&["checkpoint", "create", "c", "cp1"])
        .expect_error(125, &["cp1", "already exists", "c"]);
    lcd.wait_state("c", "running", PROMPT);

    // --leave-running: it keeps counting; ls shows both, rm takes one away.
    let out = lcd.run(&["checkpoint", "create", "--leave-running", "c", "cp2"]);
    assert_eq!(out.ok(), "cp2\n");
    lcd.wait_state("c", "running", PROMPT);
    let n = counts(&log).len();
    wait_for_counts(&log, n + 5);
    assert_eq!(checkpoint_names(&lcd, &["c"]), ["cp1", "cp2"]);
    lcd.run(&["checkpoint", "rm", "c", "cp2"]).ok();
    assert_eq!(checkpoint_names(&lcd, &["c"]), ["cp1"]);
    lcd.run(&["checkpoint", "rm", "c", "cp2"])
        .expect_error(125, &["cp2", "does not exist", "c"]);

    // The container's checkpoints go with it.
    let kept = lcd.data_root().join("checkpoints");
    assert!(support::entries(&kept).iter().any(|p| p.is_dir()));
    lcd.run(&["rm", "-f", "c"]).ok();
    let left: Vec<PathBuf> = support::entries(&kept)
        .iter()
        .flat_map(|ns| support::entries(ns))
        .collect();
    assert!(left.is_empty(), "checkpoints left after rm: {left:?}");
    lcd.assert_clean();
}

#[test]
fn a_checkpoint_dir_holds_checkpoints_a_new_container_can_start_from() {
    require_criu!();
    let lcd = Lcd::new("cp-dir");
    let log = run_counter(&lcd, "a");
    let dir = lcd.path("cps");
    let dir = dir.to_str().expect("utf-8 path");
    lcd.run(&["checkpoint", "create", "--checkpoint-dir", dir, "a", "one"])
        .ok();
    let at_dump = counts(&log).len();
    assert!(Path::new(dir).join("one/inventory.img").is_file());
    assert_eq!(
        checkpoint_names(&lcd, &["--checkpoint-dir", dir, "a"]),
        ["one"]
    );
    assert!(checkpoint_names(&lcd, &["a"]).is_empty());
    lcd.run(&["rm", "a"]).ok();

    // Another container of the same rootfs and command, restored from the first one's checkpoint.
    lcd.run(&["create", "--name", "b", lcd.rootfs(), "sh", "-c", COUNTER])
        .ok();
    lcd.run(&["start", "--checkpoint", "one", "b"])
        .expect_error(125, &["one", "does not exist", "b"]);
    lcd.run(&["start", "--checkpoint", "one", "--checkpoint-dir", dir, "b"])
        .ok();
    let after = wait_for_counts(&log, at_dump + 5);
    assert_consecutive(&after);
    lcd.run(&["rm", "-f", "b"]).ok();
    // A --checkpoint-dir is the user's: it stays.
    assert!(Path::new(dir).join("one/inventory.img").is_file());
    lcd.assert_clean();
}

#[test]
fn checkpoints_of_containers_that_cannot_be_checkpointed_are_refused() {
    let lcd = Lcd::new("cp-refuse");
    lcd.run(&["create", "--name", "made", lcd.rootfs(), "sleep", "60"])
        .ok();
    lcd.run(&["checkpoint", "create", "made", "cp"])
        .expect_error(125, &["made", "not running"]);
    lcd.run(&["run", "--name", "done", lcd.rootfs(), "true"])
        .ok();
    lcd.run(&["checkpoint", "create", "done", "cp"])
        .expect_error(125, &["done", "not running"]);
    lcd.run(&["run", "-d", "--name", "p", lcd.rootfs(), "sleep", "60"])
        .ok();
    lcd.run(&["pause", "p"]).ok();
    lcd.run(&["checkpoint", "create", "p", "cp"])
        .expect_error(125, &["p", "paused", "unpause"]);
    lcd.wait_state("p", "paused", PROMPT);
    lcd.run(&["unpause", "p"]).ok();
    lcd.run(&[
        "run",
        "-d",
        "-t",
        "--name",
        "tty",
        lcd.rootfs(),
        "sleep",
        "60",
    ])
    .ok();
    lcd.run(&["checkpoint", "create", "tty", "cp"])
        .expect_error(125, &["tty", "terminal"]);
    lcd.wait_state("tty", "running", PROMPT);
    for bad in ["_x", "a/b", ".."] {
        lcd.run(&["checkpoint", "create", "p", bad])
            .expect_error(125, &["invalid checkpoint name"]);
    }
    lcd.run(&[
        "checkpoint",
        "create",
        "--checkpoint-dir",
        "a/../b",
        "p",
        "cp",
    ])
    .expect_error(125, &[".."]);
    lcd.run(&["checkpoint", "create", "nosuch", "cp"])
        .expect_error(125, &["nosuch"]);
    lcd.run(&["start", "--checkpoint", "cp", "made"])
        .expect_error(125, &["cp", "does not exist", "made"]);
    lcd.wait_state("p", "running", PROMPT);
    assert!(
        !lcd.data_root().join("checkpoints").exists() || {
            let made: Vec<PathBuf> = support::entries(&lcd.data_root().join("checkpoints"))
                .iter()
                .flat_map(|ns| support::entries(ns))
                .flat_map(|c| support::entries(&c))
                .collect();
            made.is_empty()
        }
    );
    lcd.run(&["rm", "-f", "made", "done", "p", "tty"]).ok();
    lcd.assert_clean();
}

/// A directory holding a `criu` that fails `criu check` as bookworm's 3.17 does on this kernel.
fn broken_criu_dir(lcd: &Lcd) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = lcd.path("broken-criu");
    std::fs::create_dir_all(&dir).expect("make the broken criu");
    let criu = dir.join("criu");
    std::fs::write(
        &criu,
        "#!/bin/sh\necho 'Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.' >&2\nexit 1\n",
    )
    .expect("make the broken criu");
    std::fs::set_permissions(&criu, std::fs::Permissions::from_mode(0o755))
        .expect("make the broken criu");
    dir
}

#[test]
fn a_missing_or_broken_criu_says_which_and_how_to_get_one() {
    let lcd = Lcd::new("cp-criu");
    lcd.run(&["run", "-d", "--name", "c", lcd.rootfs(), "sleep", "60"])
        .ok();
    // No criu at all in PATH (/usr/bin has containerd and runc, not criu).
    let mut cmd = lcd.command(["checkpoint", "create", "c", "cp"]);
    cmd.env("PATH", "/usr/bin:/bin");
    lcd.output(cmd)
        .expect_error(125, &["criu is not installed", "bash .ci/install"]);
    // A criu that fails its check: the error names it and criu's reason.
    let broken = broken_criu_dir(&lcd);
    let path = format!("{}:/usr/bin:/bin", broken.display());
    let mut cmd = lcd.command(["checkpoint", "create", "c", "cp"]);
    cmd.env("PATH", &path);
    lcd.output(cmd).expect_error(
        125,
        &[
            &broken.join("criu").display().to_string(),
            "criu check",
            "vdso",
            "bash .ci/install",
        ],
    );
    lcd.wait_state("c", "running", PROMPT);
    assert!(checkpoint_names(&lcd, &["c"]).is_empty());
    lcd.run(&["rm", "-f", "c"]).ok();
    lcd.assert_clean();
}

#[test]
fn a_corrupt_checkpoint_fails_to_start_and_the_container_stays_exited() {
    require_criu!();
    let lcd = Lcd::new("cp-corrupt");
    lcd.run(&["create", "--name", "c", lcd.rootfs(), "sleep", "60"])
        .ok();
    let dir = lcd.path("cps");
    std::fs::create_dir_all(dir.join("junk")).expect("write the junk checkpoint");
    std::fs::write(dir.join("junk/inventory.img"), b"not criu").expect("write the junk");
    std::fs::write(dir.join("junk/pages-1.img"), vec![0u8; 4096]).expect("write the junk");
    let dir = dir.to_str().expect("utf-8 path");
    let line = lcd
        .run(&[
            "start",
            "--checkpoint",
            "junk",
            "--checkpoint-dir",
            dir,
            "c",
        ])
        .expect_error(125, &["restore container c from checkpoint junk"])
        .to_string();
    eprintln!("{line}");
    let state = lcd.ps_of("c")["State"].clone();
    assert_eq!(state, "created", "the container stays as it was");
    // It still starts normally.
    lcd.run(&["start", "c"]).ok();
    lcd.wait_state("c", "running", PROMPT);
    lcd.run(&["rm", "-f", "c"]).ok();
    lcd.assert_clean();
}

#[test]
fn a_dump_into_a_full_disk_is_one_line_and_the_container_runs_on() {
    require_criu!();
    let lcd = Lcd::new("cp-full");
    // Holds 8 MB in memory: its pages do not fit in 64 KiB.
    let script = "x=$(head -c 8000000 /dev/zero | tr '\\0' a); echo ready > /ready; while :; do sleep 1; done";
    lcd.run(&["run", "-d", "--name", "c", lcd.rootfs(), "sh", "-c", script])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lcd.rootfs.join("ready").exists() {
        assert!(Instant::now() < deadline, "the container never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let small = lcd.path("small");
    std::fs::create_dir(&small).expect("make the mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "lcd-test-small"])
        .arg(&small)
        .status()
        .expect("run mount");
    assert!(mounted.success(), "mount a small tmpfs");
    let out = lcd.run(&[
        "checkpoint",
        "create",
        "--checkpoint-dir",
        small.to_str().expect("utf-8 path"),
        "c",
        "cp",
    ]);
    let left = support::entries(&small);
    let unmounted = std::process::Command::new("umount")
        .arg(&small)
        .status()
        .expect("run umount");
    assert!(unmounted.success(), "unmount the small tmpfs");
    out.expect_error(125, &["c", "No space left on device"]);
    assert!(
        left.iter().all(|p| support::entries(p).is_empty()),
        "a failed dump leaves no images: {left:?}"
    );
    lcd.wait_state("c", "running", PROMPT);
    lcd.run(&["rm", "-f", "c"]).ok();
    lcd.assert_clean();
}

#[test]
fn an_established_tcp_connection_is_refused_by_criu_and_the_container_runs_on() {
    require_criu!();
    let lcd = Lcd::new("cp-tcp");
    // A server and a client inside the container's own network namespace, on its loopback.
    // The client retries until the server listens.
    let script = "ip link set lo up 2>/dev/null; nc -l -p 5000 -e cat & while :; do (while :; do echo x; sleep 1; done) | nc 127.0.0.1 5000 > /dev/null; sleep 0.1; done";
    lcd.run(&["run", "-d", "--name", "c", lcd.rootfs(), "sh", "-c", script])
        .ok();
    // Wait until the container's namespace has an established connection (state 01).
    let pid = lcd.inspect("c")["State"]["Pid"]
        .as_u64()
        .expect("the container's pid");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
        if tcp
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(3) == Some("01"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no TCP connection in the container: {tcp}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = lcd.run(&["checkpoint", "create", "c", "cp"]);
    eprintln!("{out}");
    out.expect_error(125, &["c", "established TCP connections", "close them"]);
    lcd.wait_state("c", "running", PROMPT);
    assert!(checkpoint_names(&lcd, &["c"]).is_empty());
    lcd.run(&["rm", "-f", "c"]).ok();
    lcd.assert_clean();
}

/// The counts a counter appended to `/count.log` in container `id`, read with `lcd exec`.
fn counts_in(lcd: &Lcd, id: &str) -> Vec<u64> {
    lcd.run(&["exec", id, "cat", "/count.log"])
        .ok()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_for_counts_in(lcd: &Lcd, id: &str, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = counts_in(lcd, id);
        if found.len() > n {
            return found;
        }
        assert!(Instant::now() < deadline, "{id} never got past {n} counts");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_container_from_an_image_resumes_on_its_own_snapshot() {
    require_criu!();
    let lcd = Lcd::new("cp-image");
    lcd.run(&["import", lcd.rootfs(), "box"]).ok();
    lcd.run(&["run", "-d", "--name", "c", "box", "sh", "-c", COUNTER])
        .ok();
    wait_for_counts_in(&lcd, "c", 5);
    lcd.run(&["checkpoint", "create", "c", "cp1"]).ok();
    lcd.wait_state("c", "exited", PROMPT);
    lcd.run(&["start", "--checkpoint", "cp1", "c"]).ok();
    lcd.wait_state("c", "running", PROMPT);
    let before = counts_in(&lcd, "c").len();
    let after = wait_for_counts_in(&lcd, "c", before + 5);
    // The file on the container's own snapshot goes on in one unbroken sequence.
    assert_consecutive(&after);
    lcd.run(&["rm", "-f", "c"]).ok();
    lcd.run(&["rmi", "box"]).ok();
    lcd.assert_clean();
}
