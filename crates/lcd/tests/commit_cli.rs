//! `lcd commit`, `lcd history` and `lcd image prune` as a docker user types them, on images the
//! test makes itself (`lcd rootfs busybox` + `lcd import`): a commit keeps what the container
//! wrote, changed and deleted, takes `-c`, `-m`, `-a`, moves a tag (the old image stays, known by
//! its ID), pauses a running container only while it reads its changes, and makes images that
//! containerd's own `ctr` imports and runs; bad input is one line and 125, with nothing made.

mod support;

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{Lcd, PROMPT, TIMEOUT};

/// `lcd events` for running container `id`, one action per line, returned once the subscription
/// is live (it has shown an exec made for that purpose).
fn follow_events(lcd: &Lcd, id: &str) -> support::Running {
    let filter = format!("container={id}");
    let mut events = lcd.spawn(
        &["events", "--format", "{{.Action}}", "--filter", &filter],
        Stdio::null(),
    );
    let deadline = std::time::Instant::now() + PROMPT;
    loop {
        lcd.run(&["exec", id, "true"]).ok();
        if events.next_line(Duration::from_millis(500)).is_some() {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lcd events showed nothing"
        );
    }
}

/// Leases, unfinished writes and blobs of the namespace, as `ctr` lists them (header lines left out).
fn content_state(lcd: &Lcd) -> (Vec<String>, Vec<String>, Vec<String>) {
    let rows = |text: String| -> Vec<String> {
        text.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    };
    (
        rows(lcd.ctr(&["leases", "ls"])),
        rows(lcd.ctr(&["content", "active"])),
        rows(lcd.ctr(&["content", "ls"])),
    )
}

/// The fixture with its busybox rootfs imported as image `busybox`.
fn with_busybox(tag: &str) -> Lcd {
    let lcd = Lcd::new(tag);
    lcd.run(&["import", lcd.rootfs(), "busybox"]).ok();
    lcd
}

fn image_id(out: &str) -> String {
    let id = out.trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "not an image ID: {out:?}"
    );
    id
}

fn short(id: &str) -> &str {
    &id[7..19]
}

#[test]
fn a_commit_keeps_what_the_container_wrote_changed_and_deleted() {
    let lcd = with_busybox("commit");
    let out = lcd.run(&[
        "run",
        "--name",
        "w",
        "busybox",
        "sh",
        "-c",
        "echo new > /new; echo extra >> /etc/passwd; rm /bin/vi; rm -r /home; mkdir -p /d/e; echo x > /d/e/f",
    ]);
    out.ok();
    let out = lcd.run(&[
        "commit",
        "-m",
        "first commit",
        "-a",
        "Tester <t@example.com>",
        "-c",
        r#"CMD ["cat","/new"]"#,
        "-c",
        "ENV A=1",
        "w",
        "committed:1",
    ]);
    let id = image_id(out.ok());

    // The committed image runs at once: its new command and env, and the container's changes,
    // deletions included (whiteouts).
    assert_eq!(lcd.run(&["run", "--rm", "committed:1"]).ok(), "new\n");
    let out = lcd.run(&[
        "run",
        "--rm",
        "committed:1",
        "sh",
        "-c",
        "echo $A; tail -n 1 /etc/passwd; test -e /bin/vi || echo no-vi; test -e /home || echo no-home; cat /d/e/f",
    ]);
    assert_eq!(out.ok(), "1\nextra\nno-vi\nno-home\nx\n", "{out}");
    // The image the container came from is as it was.
    let out = lcd.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "test -e /new || echo no-new; test -e /bin/vi && echo vi; test -d /home && echo home; grep -c extra /etc/passwd",
    ]);
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(out.stdout, "no-new\nvi\nhome\n0\n", "{out}");

    // -m and -a in inspect and history; the CMD and ENV changes in the config.
    let inspect: serde_json::Value =
        serde_json::from_str(lcd.run(&["image", "inspect", "committed:1"]).ok()).expect("json");
    let image = &inspect[0];
    assert_eq!(image["Id"], id.as_str(), "{image}");
    assert_eq!(image["Author"], "Tester <t@example.com>", "{image}");
    assert_eq!(image["Comment"], "first commit", "{image}");
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["cat", "/new"]));
    assert_eq!(image["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(image["RootFS"]["Layers"].as_array().map(Vec::len), Some(2));

    // history: docker's columns, newest first; the ID on the newest step only.
    let out = lcd.run(&["history", "committed:1"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for column in ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"] {
        assert!(lines[0].contains(column), "{out}");
    }
    assert!(lines[1].starts_with(short(&id)), "{out}");
    assert!(lines[1].ends_with("first commit"), "{out}");
    // CREATED BY is the container's command, cut to 45 characters.
    assert!(
        lines[1].contains("sh -c echo new > /new; echo extra >> /etc/pa…"),
        "{out}"
    );
    assert!(lines[2].starts_with("<missing>"), "{out}");
    assert!(lines[2].ends_with("imported by lcd"), "{out}");
    let out = lcd.run(&["history", "-q", "committed:1"]);
    assert_eq!(out.ok(), format!("{}\n<missing>\n", short(&id)));
    let out = lcd.run(&[
        "history",
        "--no-trunc",
        "-H=false",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
        "committed:1",
    ]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let first: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(first[0], id);
    assert!(first[1].ends_with("echo x > /d/e/f"), "{out}");
    assert!(first[2].parse::<u64>().is_ok_and(|n| n > 0), "{out}");
    assert_eq!(first[3], "first commit");
    let out = lcd.run(&["image", "history", "--format", "json", short(&id)]);
    let rows: Vec<serde_json::Value> = out
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["ID"], short(&id));
    assert_eq!(rows[1]["ID"], "<missing>");
    assert_eq!(rows[0]["Comment"], "first commit");
    assert!(rows[0]["CreatedSince"]
        .as_str()
        .unwrap_or_default()
        .ends_with("ago"));

    lcd.run(&["rm", "w"]).ok();
    lcd.run(&["rmi", "committed:1", "busybox"]).ok();
    assert_eq!(content_state(&lcd), (vec![], vec![], vec![]));
    lcd.assert_clean();
}

#[test]
fn a_commit_to_a_taken_name_moves_it_and_prune_removes_what_nothing_uses() {
    let lcd = with_busybox("committag");
    lcd.run(&["run", "--name", "w", "busybox", "sh", "-c", "echo one > /f"])
        .ok();
    let first = image_id(lcd.run(&["commit", "w", "app"]).ok());
    lcd.run(&["run", "-d", "--name", "old", "app", "sleep", "600"])
        .ok();
    lcd.run(&[
        "run",
        "--name",
        "w2",
        "busybox",
        "sh",
        "-c",
        "echo two > /f",
    ])
    .ok();
    let second = image_id(lcd.run(&["commit", "w2", "app"]).ok());
    assert_ne!(first, second);
    // The tag moved; the image it named stays, known by its ID (docker's dangling <none>).
    assert_eq!(lcd.run(&["run", "--rm", "app", "cat", "/f"]).ok(), "two\n");
    let out = lcd.run(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut rows: Vec<&str> = out.ok().lines().collect();
    rows.sort();
    let mut expected = vec![
        format!("<none>:<none> {}", short(&first)),
        format!("app:latest {}", short(&second)),
    ];
    let busybox = lcd
        .run(&["images", "-q", "busybox"])
        .ok()
        .trim()
        .to_string();
    expected.push(format!("busybox:latest {busybox}"));
    expected.sort();
    assert_eq!(rows, expected, "{out}");
    // An ID, whole or a prefix, names it.
    let out = lcd.run(&["run", "--rm", short(&first), "cat", "/f"]);
    assert_eq!(out.ok(), "one\n", "{out}");
    let out = lcd.run(&["run", "--rm", &first, "cat", "/f"]);
    assert_eq!(out.ok(), "one\n", "{out}");
    let out = lcd.run(&["history", "-q", short(&first)]);
    assert_eq!(out.ok(), format!("{}\n<missing>\n", short(&first)), "{out}");
    // prune: a dangling image stays while a container runs on it (made from the name it had)...
    assert_eq!(
        lcd.run(&["image", "prune", "-f"]).ok(),
        "Total reclaimed space: 0B\n"
    );
    lcd.run(&["rm", "-f", "old"]).ok();
    // ... and goes when none does; one a container was made from stays.
    let nameless = image_id(lcd.run(&["commit", "w"]).ok());
    assert!(lcd.run(&["images"]).ok().contains(short(&nameless)));
    lcd.run(&["run", "-d", "--name", "user", &nameless, "sleep", "600"])
        .ok();
    let out = lcd.run(&["image", "prune", "-f"]);
    assert!(
        out.ok().starts_with(&format!(
            "Deleted Images:\ndeleted: {first}\n\nTotal reclaimed space: "
        )),
        "{out}"
    );
    let ids = lcd.run(&["images", "-q"]).ok().to_string();
    assert!(!ids.contains(short(&first)), "{ids}");
    assert!(ids.contains(short(&nameless)), "{ids}");
    // Without -f, only a "y" goes on.
    let out = lcd.run_input(&["image", "prune", "-a"], b"");
    assert!(out.ok().contains(
        "WARNING! This will remove all images without at least one container associated to them."
    ));
    assert_eq!(lcd.run(&["images", "-q"]).ok(), ids);
    // -a: every image no container uses (w and w2 were made from busybox, user from nameless).
    let out = lcd.run(&["image", "prune", "-a", "-f"]);
    let text = out.ok();
    assert!(
        text.starts_with(&format!(
            "Deleted Images:\nuntagged: app:latest\ndeleted: {second}\n\nTotal reclaimed space: "
        )),
        "{out}"
    );
    let left = lcd.run(&["images", "-q"]).ok().to_string();
    assert_eq!(left.lines().count(), 2, "{left}");
    assert!(
        left.contains(&busybox) && left.contains(short(&nameless)),
        "{left}"
    );
    assert_eq!(
        lcd.run(&["image", "prune", "-f"]).ok(),
        "Total reclaimed space: 0B\n"
    );

    lcd.run(&["rm", "-f", "w", "w2", "user"]).ok();
    let out = lcd.run(&["rmi", short(&nameless)]);
    assert_eq!(out.ok(), format!("Deleted: {nameless}\n"), "{out}");
    let out = lcd.run(&["image", "prune", "-a", "-f"]);
    assert!(out.ok().contains("untagged: busybox:latest"), "{out}");
    assert_eq!(lcd.run(&["images", "-q"]).ok(), "");
    assert_eq!(content_state(&lcd), (vec![], vec![], vec![]));
    lcd.assert_clean();
}

/// A running container is paused while its changes are read and runs again after (`pause` and
/// `unpause` events bracket the commit); `--pause=false` leaves it running throughout; one the
/// user paused stays paused.
#[test]
fn a_running_container_is_paused_only_during_the_commit() {
    let lcd = with_busybox("commitrun");
    lcd.run(&["run", "-d", "--name", "r", "busybox", "sleep", "600"])
        .ok();
    lcd.run(&["exec", "r", "sh", "-c", "echo live > /live"])
        .ok();
    let mut events = follow_events(&lcd, "r");
    // The stream drained up to a marker: a pause and unpause of the user's own.
    lcd.run(&["pause", "r"]).ok();
    events.wait_for_line("pause", PROMPT);
    lcd.run(&["unpause", "r"]).ok();
    events.wait_for_line("unpause", PROMPT);

    let id = image_id(lcd.run(&["commit", "r", "live:1"]).ok());
    assert_eq!(next_state_change(&mut events).as_deref(), Some("pause"));
    assert_eq!(next_state_change(&mut events).as_deref(), Some("unpause"));
    assert_eq!(lcd.inspect("r")["State"]["Status"], "running");
    let out = lcd.run(&["run", "--rm", "live:1", "cat", "/live"]);
    assert_eq!(out.ok(), "live\n", "{out}");

    // --pause=false: the next event after the commit is the marker exec's, not a pause.
    image_id(lcd.run(&["commit", "--pause=false", "r", "live:2"]).ok());
    lcd.run(&["exec", "r", "true"]).ok();
    loop {
        let line = events.next_line(PROMPT).expect("the marker exec's events");
        assert_ne!(line, "pause\n", "--pause=false paused the container");
        if line == "exec_create\n" {
            break;
        }
    }
    events.signal(Signal::SIGTERM);
    events.finish(TIMEOUT).expect_code(0);

    // Paused by the user: left paused.
    lcd.run(&["pause", "r"]).ok();
    image_id(lcd.run(&["commit", "r", "live:3"]).ok());
    assert_eq!(lcd.inspect("r")["State"]["Status"], "paused");
    lcd.run(&["unpause", "r"]).ok();
    let out = lcd.run(&["history", "live:1"]);
    assert!(
        out.ok()
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains(short(&id)) && l.contains("sleep 600")),
        "{out}"
    );

    lcd.run(&["rm", "-f", "r"]).ok();
    lcd.run(&["rmi", "live:1", "live:2", "live:3", "busybox"])
        .ok();
    assert_eq!(content_state(&lcd), (vec![], vec![], vec![]));
    lcd.assert_clean();
}

/// Ctrl-C while the commit has the container paused: the container runs again, lcd exits 130 and
/// nothing of the commit stays (no image, blob, lease or unfinished write).
#[test]
fn an_interrupted_commit_resumes_the_container_and_leaves_nothing() {
    let lcd = with_busybox("commitint");
    lcd.run(&["run", "-d", "--name", "r", "busybox", "sleep", "600"])
        .ok();
    // Enough data that reading it takes a while (the commit is interrupted once it has paused).
    lcd.run(&[
        "exec",
        "r",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/big bs=1M count=64 2>/dev/null",
    ])
    .ok();
    let before = content_state(&lcd);
    let mut events = follow_events(&lcd, "r");
    // Should a commit finish before its interruption lands, another one is interrupted.
    let mut interrupted = false;
    for _ in 0..3 {
        let commit = lcd.spawn(&["commit", "r", "big:1"], Stdio::null());
        assert_eq!(next_state_change(&mut events).as_deref(), Some("pause"));
        commit.signal(Signal::SIGINT);
        let out = commit.finish(TIMEOUT);
        assert_eq!(next_state_change(&mut events).as_deref(), Some("unpause"));
        if out.code() == 0 {
            lcd.run(&["rmi", "big:1"]).ok();
            continue;
        }
        assert_eq!(out.code(), 130, "{out}");
        interrupted = true;
        break;
    }
    assert!(interrupted, "every commit finished before its Ctrl-C");
    assert_eq!(lcd.inspect("r")["State"]["Status"], "running");
    assert!(!lcd.run(&["images"]).ok().contains("big"));
    assert_eq!(content_state(&lcd), before);
    events.signal(Signal::SIGTERM);
    events.finish(TIMEOUT).expect_code(0);

    lcd.run(&["rm", "-f", "r"]).ok();
    lcd.run(&["rmi", "busybox"]).ok();
    lcd.assert_clean();
}

/// The next `pause` or `unpause` event (the exec events of the test's markers, whose exits may
/// arrive late, are skipped).
fn next_state_change(events: &mut support::Running) -> Option<String> {
    loop {
        let line = events.next_line(PROMPT)?;
        let action = line.trim_end();
        if !matches!(action, "exec_create" | "exec_start" | "die") {
            return Some(action.to_string());
        }
    }
}

/// Bad input: one line, 125, and nothing made (no image, blob, lease or unfinished write).
#[test]
fn bad_commits_are_refused_before_anything_is_made() {
    let lcd = with_busybox("commitbad");
    lcd.run(&["run", "--name", "w", "busybox", "sh", "-c", "echo x > /x"])
        .ok();
    lcd.run(&["run", "--name", "dir", lcd.rootfs(), "true"])
        .ok();
    let before = content_state(&lcd);
    let images = lcd.run(&["images", "-q"]).ok().to_string();
    for (args, words) in [
        (
            vec!["commit", "-c", "RUN echo hi", "w", "x"],
            vec!["RUN is not a valid change command"],
        ),
        (
            vec!["commit", "-c", "COPY . /", "w"],
            vec!["COPY is not a valid change command"],
        ),
        (
            vec!["commit", "-c", "ENV", "w"],
            vec!["ENV needs an argument"],
        ),
        (
            vec!["commit", "-c", "CMD [\"unterminated", "w"],
            vec!["not a JSON array"],
        ),
        (
            vec!["commit", "-c", "STOPSIGNAL SIGNOPE", "w"],
            vec!["STOPSIGNAL"],
        ),
        (vec!["commit", "w", "Not/Valid"], vec!["Not/Valid"]),
        (
            vec!["commit", "w", &format!("x@sha256:{}", "a".repeat(64))],
            vec!["digest reference"],
        ),
        (
            vec!["commit", "nosuch", "x"],
            vec!["no such container: nosuch"],
        ),
        (
            vec!["commit", "dir", "x"],
            vec![
                "lcd commit needs a container made from an image",
                "lcd import",
            ],
        ),
        (vec!["history", "nosuch"], vec!["no such image: nosuch"]),
    ] {
        lcd.run(&args).expect_error(125, &words);
    }
    assert_eq!(content_state(&lcd), before);
    assert_eq!(lcd.run(&["images", "-q"]).ok(), images);

    lcd.run(&["rm", "w", "dir"]).ok();
    lcd.run(&["rmi", "busybox"]).ok();
    lcd.assert_clean();
}

/// What lcd committed and saved, containerd's own client imports and runs.
#[test]
fn a_saved_commit_runs_under_ctr() {
    let lcd = with_busybox("commitctr");
    lcd.run(&[
        "run",
        "--name",
        "w",
        "busybox",
        "sh",
        "-c",
        "echo committed > /c; rm /bin/vi",
    ])
    .ok();
    image_id(lcd.run(&["commit", "-c", "WORKDIR /tmp", "w", "bb:2"]).ok());
    let archive = lcd.path("bb2.tar");
    let archive = archive.to_str().expect("utf-8");
    lcd.run(&["save", "-o", archive, "bb:2"]).ok();
    lcd.run(&["rm", "w"]).ok();
    lcd.run(&["rmi", "bb:2", "busybox"]).ok();
    lcd.ctr(&["images", "import", archive]);
    let out = lcd.ctr(&[
        "run",
        "--rm",
        "docker.io/library/bb:2",
        "ctr-run",
        "sh",
        "-c",
        "cat /c; pwd; test -e /bin/vi || echo no-vi",
    ]);
    assert_eq!(out, "committed\n/tmp\nno-vi\n");
    lcd.ctr(&["images", "rm", "--sync", "docker.io/library/bb:2"]);
    lcd.assert_clean();
    // ctr's runc keeps its state under containerd's default root, and its container's cgroup
    // parent stays: remove both (rmdir: only if empty).
    let _ = std::fs::remove_dir(std::path::Path::new("/run/containerd/runc").join(&lcd.ns));
    if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
        for controller in controllers.flatten() {
            let _ = std::fs::remove_dir(controller.path().join(&lcd.ns));
        }
    }
}
