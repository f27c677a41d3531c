//! `lcd rename` end to end: running and stopped containers get a new name that every command
//! resolves and shows, the old name is free for a new container, conflicts and bad names are
//! refused, and of two renames to one name exactly one wins. Each test has its own temp dir,
//! namespace and managed containerd (see `support`).

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::{Lcd, TIMEOUT};

/// `lcd inspect -f TEMPLATE GIVEN`, without the newline.
#[track_caller]
fn field(lcd: &Lcd, given: &str, template: &str) -> String {
    let out = lcd.run(&["inspect", "-f", template, given]);
    out.ok().trim_end().to_string()
}

/// The NAMES of `lcd ps -a`, sorted.
#[track_caller]
fn names(lcd: &Lcd) -> Vec<String> {
    let mut names: Vec<String> = lcd
        .ps_json()
        .iter()
        .map(|v| v["Names"].as_str().expect("Names").to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn running_and_stopped_containers_are_renamed_and_shown_by_their_new_name() {
    let lcd = Lcd::new("rename");
    let script = "echo hello; sleep 60";
    lcd.run(&["run", "-d", "--name", "a", lcd.rootfs(), "sh", "-c", script])
        .ok();
    lcd.run(&["run", "--name", "done", lcd.rootfs(), "sh", "-c", "exit 3"])
        .expect_code(3);
    lcd.run(&["create", "--name", "fresh", lcd.rootfs(), "true"])
        .ok();
    lcd.wait_state("a", "running", TIMEOUT);

    // Running, exited and never started: docker's rename prints nothing.
    for (old, new) in [("a", "b"), ("done", "finished"), ("fresh", "later")] {
        assert_eq!(lcd.run(&["rename", old, new]).ok(), "");
    }
    assert_eq!(names(&lcd), ["b", "finished", "later"]);
    let b = lcd.ps_of("b");
    assert_eq!(b["State"], "running", "{b}");
    assert_eq!(b["ID"], "a", "the id stays: {b}");
    assert_eq!(lcd.ps_of("finished")["State"], "exited");
    assert_eq!(lcd.ps_of("later")["State"], "created");
    let filtered = lcd.run(&["ps", "-a", "--filter", "name=^b$", "--format", "{{.Names}}"]);
    assert_eq!(filtered.ok(), "b\n");
    let filtered = lcd.run(&["ps", "-a", "--filter", "name=^a$", "-q"]);
    assert_eq!(filtered.ok(), "", "the old name is no name any more");
    assert_eq!(field(&lcd, "b", "{{.Id}} {{.Name}}"), "a /b");
    assert_eq!(lcd.inspect("finished")["Name"], "/finished");
    assert_eq!(lcd.inspect("finished")["State"]["ExitCode"], 3);

    // The new name works for every command; the log and the task are the container's own still.
    assert_eq!(lcd.run(&["logs", "b"]).ok(), "hello\n");
    assert_eq!(lcd.run(&["exec", "b", "echo", "inside"]).ok(), "inside\n");
    let stats = lcd.run(&["stats", "--no-stream", "--format", "{{.Name}}", "b"]);
    assert_eq!(stats.ok(), "b\n");
    // Until a container takes the old name, it still finds the renamed one by its id.
    assert_eq!(field(&lcd, "a", "{{.Name}}"), "/b");

    // The old name is free: the new container gets a generated id carrying it.
    let out = lcd.run(&[
        "run",
        "-d",
        "--name",
        "a",
        lcd.rootfs(),
        "sh",
        "-c",
        "echo new; sleep 60",
    ]);
    let new_id = out.ok().trim_end().to_string();
    assert_eq!(new_id.len(), 16, "a generated id: {out}");
    lcd.wait_state("a", "running", TIMEOUT);
    assert_eq!(
        field(&lcd, "a", "{{.Id}} {{.Name}}"),
        format!("{new_id} /a")
    );
    assert_eq!(lcd.ps_of("a")["ID"], new_id[..12]);
    assert_eq!(names(&lcd), ["a", "b", "finished", "later"]);
    // Each has its own log, and `stop` finds each by its name.
    assert_eq!(lcd.run(&["logs", "a"]).ok(), "new\n");
    assert_eq!(lcd.run(&["logs", "b"]).ok(), "hello\n");
    lcd.run(&["stop", "-t", "1", "b"]).ok();
    assert_eq!(lcd.ps_of("b")["State"], "exited");
    assert_eq!(lcd.ps_of("a")["State"], "running");
    lcd.run(&["start", "b"]).ok();
    lcd.wait_state("b", "running", TIMEOUT);

    // Back to its id, which is free as a name once the new `a` is gone; no label is left then.
    lcd.run(&["rename", "b", "a"])
        .expect_error(125, &["conflict", "\"/a\"", "already in use", &new_id]);
    lcd.run(&["rm", "-f", "a"]).ok();
    lcd.run(&["rename", "b", "a"]).ok();
    let back = lcd.inspect("a");
    assert_eq!(back["Name"], "/a", "{back}");
    assert!(back["Labels"].get("io.lcd.name").is_none(), "{back}");
    assert!(
        !lcd.log_path(&new_id).exists(),
        "the removed container's log stays"
    );

    lcd.run(&["rm", "-f", "a", "finished", "later"]).ok();
    lcd.assert_clean();
}

#[test]
fn taken_invalid_and_unchanged_names_are_refused() {
    let lcd = Lcd::new("rename-bad");
    lcd.run(&["create", "--name", "x", lcd.rootfs(), "true"])
        .ok();
    lcd.run(&["create", "--name", "y", lcd.rootfs(), "true"])
        .ok();
    lcd.run(&["rename", "x", "y"]).expect_error(
        125,
        &["conflict", "\"/y\"", "already in use by container y"],
    );
    lcd.run(&["rename", "x", "x"])
        .expect_error(125, &["same name as its current name"]);
    lcd.run(&["rename", "x", "bad/name"])
        .expect_error(125, &["invalid container name", "bad/name"]);
    lcd.run(&["rename", "x", "a..b"])
        .expect_error(125, &["invalid container name", "a..b"]);
    lcd.run(&["rename", "nosuch", "z"])
        .expect_error(125, &["no such container", "nosuch"]);
    assert_eq!(names(&lcd), ["x", "y"], "a refused rename changes nothing");

    // A renamed container's name is taken for creates and renames alike.
    lcd.run(&["rename", "x", "z"]).ok();
    for cmd in [
        vec!["create", "--name", "z", lcd.rootfs(), "true"],
        vec!["run", "--rm", "--name", "z", lcd.rootfs(), "true"],
    ] {
        lcd.run(&cmd).expect_error(
            125,
            &["conflict", "\"/z\"", "already in use by container x"],
        );
    }
    lcd.run(&["rename", "y", "z"])
        .expect_error(125, &["\"/z\"", "already in use by container x"]);
    lcd.run(&["rename", "z", "z"])
        .expect_error(125, &["same name as its current name"]);
    // Its old name (still its id) can be taken by a rename too: `x` then means that container.
    lcd.run(&["rename", "y", "x"]).ok();
    assert_eq!(field(&lcd, "x", "{{.Id}}"), "y");
    assert_eq!(field(&lcd, "z", "{{.Id}}"), "x");
    assert_eq!(names(&lcd), ["x", "z"]);

    lcd.run(&["rm", "x", "z"]).ok();
    lcd.assert_clean();
}

#[test]
fn names_come_before_ids_and_ids_before_prefixes() {
    let lcd = Lcd::new("rename-find");
    let generated = lcd.run(&["create", lcd.rootfs(), "true"]);
    let generated = generated.ok().trim_end().to_string();
    lcd.run(&["rename", &generated[..6], "web"]).ok();
    assert_eq!(field(&lcd, "web", "{{.Id}}"), generated);
    assert_eq!(field(&lcd, &generated, "{{.Name}}"), "/web");
    assert_eq!(field(&lcd, &generated[..4], "{{.Name}}"), "/web");

    lcd.run(&["create", "--name", "f502aa", lcd.rootfs(), "true"])
        .ok();
    lcd.run(&["create", "--name", "f503bb", lcd.rootfs(), "true"])
        .ok();
    lcd.run(&["inspect", "f50"])
        .expect_error(125, &["multiple containers match", "f502aa", "f503bb"]);
    // A name that is another container's id prefix: the name wins.
    lcd.run(&["rename", "web", "f50"]).ok();
    assert_eq!(field(&lcd, "f50", "{{.Id}}"), generated);
    // Renamed, a container is still found by its id and by a prefix of it.
    lcd.run(&["rename", "f502aa", "other"]).ok();
    assert_eq!(field(&lcd, "f502a", "{{.Name}}"), "/other");
    assert_eq!(field(&lcd, "f502aa", "{{.Name}}"), "/other");

    // Everything `ps -q` prints resolves, so `rm $(lcd ps -aq)` removes every container.
    let ids = lcd.ids();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let mut rm = vec!["rm"];
    rm.extend(ids.iter().map(String::as_str));
    lcd.run(&rm).ok();
    lcd.assert_clean();
}

#[test]
fn of_two_renames_to_one_name_exactly_one_wins() {
    let lcd = Lcd::new("rename-race");
    for name in ["c1", "c2", "c3"] {
        lcd.run(&["create", "--name", name, lcd.rootfs(), "true"])
            .ok();
    }
    for round in 0..3 {
        let name = format!("same{round}");
        // Two renames and a create race for one name; whatever the order, one of them gets it.
        let racers = [
            lcd.spawn(&["rename", "c1", &name], Stdio::null()),
            lcd.spawn(&["rename", "c2", &name], Stdio::null()),
            lcd.spawn(
                &["create", "--name", &name, lcd.rootfs(), "true"],
                Stdio::null(),
            ),
        ];
        let outs: Vec<_> = racers
            .into_iter()
            .map(|r| r.finish(TIMEOUT + Duration::from_secs(5)))
            .collect();
        let winners = outs.iter().filter(|o| o.code() == 0).count();
        assert_eq!(winners, 1, "round {round}: {outs:#?}");
        for lost in outs.iter().filter(|o| o.code() != 0) {
            lost.expect_error(
                125,
                &["conflict", &format!("\"/{name}\""), "already in use"],
            );
        }
        let holders: Vec<String> = names(&lcd).into_iter().filter(|n| *n == name).collect();
        assert_eq!(holders.len(), 1, "round {round}: {holders:?}");
        // Give the name back, so that the next round starts as this one did.
        if outs[2].code() == 0 {
            lcd.run(&["rm", &name]).ok();
        } else {
            let owner = if outs[0].code() == 0 { "c1" } else { "c2" };
            lcd.run(&["rename", &name, owner]).ok();
        }
        assert_eq!(names(&lcd), ["c1", "c2", "c3"], "round {round}");
    }
    lcd.run(&["rm", "c1", "c2", "c3"]).ok();
    lcd.assert_clean();
}
