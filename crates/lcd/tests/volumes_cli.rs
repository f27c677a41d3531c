//! Volumes and mounts through `lcd`, as a docker user types them: `-v` bind mounts (read-write,
//! `:ro`), named and anonymous volumes filled from the image on first use, `--mount`, `--tmpfs`,
//! `lcd volume ...`, and `--read-only` never changing the host. Every bad input is one line and
//! exit 125, and leaves no volume, directory or container behind.

mod support;

use std::path::Path;

use support::{entries, Lcd};

/// The volumes lcd keeps for the fixture's namespace.
fn volume_dirs(lcd: &Lcd) -> Vec<std::path::PathBuf> {
    entries(&lcd.data_root().join("volumes").join(&lcd.ns))
}

fn volume_names(lcd: &Lcd) -> Vec<String> {
    lcd.run(&["volume", "ls", "-q"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Put `/data/seed` into the fixture's rootfs and import it as image `img`.
fn image_with_data(lcd: &Lcd) {
    std::fs::create_dir_all(lcd.rootfs.join("data")).expect("mkdir /data in the rootfs");
    std::fs::write(lcd.rootfs.join("data/seed"), "from the image\n").expect("write /data/seed");
    lcd.run(&["import", lcd.rootfs(), "img"]).ok();
}

#[test]
fn bind_mounts_are_read_write_or_read_only_and_inspect_shows_them() {
    let lcd = Lcd::new("bind");
    let rw = lcd.path("rw");
    std::fs::create_dir(&rw).unwrap();
    std::fs::write(rw.join("in"), "from the host\n").unwrap();
    let ro = lcd.path("ro");
    std::fs::create_dir(&ro).unwrap();
    // A missing -v source is created, as docker does.
    let made = lcd.path("made/by/lcd");
    let rw_arg = format!("{}:/rw", rw.display());
    let ro_arg = format!("{}:/ro:ro", ro.display());
    let made_arg = format!("{}:/made", made.display());
    let out = lcd.run(&[
        "run",
        "--rm",
        "-v",
        &rw_arg,
        "-v",
        &ro_arg,
        "-v",
        &made_arg,
        lcd.rootfs(),
        "sh",
        "-c",
        "cat /rw/in && echo from the container > /rw/out && echo x > /made/x",
    ]);
    assert_eq!(out.ok(), "from the host\n", "{out}");
    assert_eq!(
        std::fs::read_to_string(rw.join("out")).unwrap(),
        "from the container\n"
    );
    assert_eq!(std::fs::read_to_string(made.join("x")).unwrap(), "x\n");

    // :ro and --mount readonly: writes fail with EROFS.
    let mount_arg = format!("type=bind,source={},target=/m,readonly", ro.display());
    for flag in [["-v", ro_arg.as_str()], ["--mount", mount_arg.as_str()]] {
        let target = if flag[0] == "-v" { "/ro/x" } else { "/m/x" };
        let out = lcd.run(&[
            "run",
            "--rm",
            flag[0],
            flag[1],
            lcd.rootfs(),
            "touch",
            target,
        ]);
        assert_eq!(out.code(), 1, "{out}");
        assert!(out.stderr.contains("Read-only file system"), "{out}");
    }
    assert!(entries(&ro).is_empty(), "a read-only mount was written");

    // inspect's Mounts, in docker's form.
    lcd.run(&[
        "create",
        "--name",
        "c",
        "-v",
        &ro_arg,
        "--mount",
        &format!("type=bind,src={},dst=/w", rw.display()),
        lcd.rootfs(),
    ])
    .ok();
    let mounts = lcd.inspect("c")["Mounts"].clone();
    assert_eq!(
        mounts[0],
        serde_json::json!({"Type": "bind", "Source": ro.display().to_string(), "Destination": "/ro", "Mode": "ro", "RW": false, "Propagation": "rprivate"}),
        "{mounts}"
    );
    assert_eq!(mounts[1]["Destination"], "/w");
    assert_eq!(mounts[1]["RW"], true);
    lcd.run(&["rm", "c"]).ok();
    lcd.assert_clean();
}

#[test]
fn a_named_volume_is_filled_from_the_image_once_and_outlives_its_container() {
    let lcd = Lcd::new("named");
    image_with_data(&lcd);
    let out = lcd.run(&[
        "run",
        "--rm",
        "-v",
        "store:/data",
        "img",
        "sh",
        "-c",
        "cat /data/seed && rm /data/seed && echo kept > /data/mine",
    ]);
    assert_eq!(out.ok(), "from the image\n", "{out}");
    // It outlived its container, and is not filled again: the image's seed stays deleted.
    assert_eq!(volume_names(&lcd), ["store"]);
    let out = lcd.run(&["run", "--rm", "-v", "store:/data", "img", "ls", "/data"]);
    assert_eq!(out.ok(), "mine\n", "{out}");
    let inspect: serde_json::Value =
        serde_json::from_str(lcd.run(&["volume", "inspect", "store"]).ok()).unwrap();
    let mountpoint = inspect[0]["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!(inspect[0]["Name"], "store");
    assert_eq!(inspect[0]["Driver"], "local");
    assert_eq!(
        std::fs::read_to_string(Path::new(&mountpoint).join("mine")).unwrap(),
        "kept\n"
    );

    // A rootfs directory fills a new volume from itself; nocopy leaves it empty.
    let out = lcd.run(&[
        "run",
        "--rm",
        "-v",
        "fromdir:/data",
        lcd.rootfs(),
        "cat",
        "/data/seed",
    ]);
    assert_eq!(out.ok(), "from the image\n", "{out}");
    let out = lcd.run(&[
        "run",
        "--rm",
        "-v",
        "empty:/data:nocopy",
        "img",
        "ls",
        "/data",
    ]);
    assert_eq!(out.ok(), "", "{out}");

    // An anonymous volume is filled too, listed while its container exists, and removed with
    // `rm -v`; `run --rm` removes its own.
    lcd.run(&["create", "--name", "anon", "-v", "/data", "img", "true"])
        .ok();
    let names = volume_names(&lcd);
    assert_eq!(names.len(), 4, "{names:?}");
    let anonymous = names
        .iter()
        .find(|n| n.len() == 64)
        .expect("an anonymous volume")
        .clone();
    let mounts = lcd.inspect("anon")["Mounts"].clone();
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Name"], anonymous.as_str());
    lcd.run(&["rm", "-v", "anon"]).ok();
    assert!(!volume_names(&lcd).contains(&anonymous));
    lcd.run(&["run", "--rm", "-v", "/data", "img", "true"]).ok();
    assert_eq!(volume_names(&lcd), ["empty", "fromdir", "store"]);

    // --volumes-from shares another container's volumes and binds, :ro makes them read-only.
    let host = lcd.path("host");
    std::fs::create_dir(&host).expect("mkdir");
    let bind = format!("{}:/h", host.display());
    lcd.run(&[
        "create",
        "--name",
        "owner",
        "-v",
        "store:/data",
        "-v",
        &bind,
        "img",
        "true",
    ])
    .ok();
    let out = lcd.run(&[
        "run",
        "--rm",
        "--volumes-from",
        "owner",
        "img",
        "sh",
        "-c",
        "cat /data/mine && echo x > /h/x",
    ]);
    assert_eq!(out.ok(), "kept\n", "{out}");
    assert!(host.join("x").exists());
    let out = lcd.run(&[
        "run",
        "--rm",
        "--volumes-from",
        "owner:ro",
        "img",
        "touch",
        "/data/y",
    ]);
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    lcd.run(&["run", "--rm", "--volumes-from", "nobody", "img", "true"])
        .expect_error(125, &["--volumes-from nobody"]);
    lcd.run(&["rm", "owner"]).ok();

    lcd.run(&["volume", "rm", "store", "fromdir", "empty"]).ok();
    assert!(volume_dirs(&lcd).is_empty(), "{:?}", volume_dirs(&lcd));
    lcd.run(&["rmi", "img"]).ok();
    lcd.assert_clean();
}

#[test]
fn tmpfs_mounts_carry_their_options() {
    let lcd = Lcd::new("tmpfs");
    let out = lcd.run(&[
        "run",
        "--rm",
        "--tmpfs",
        "/t:size=1m,mode=700",
        "--mount",
        "type=tmpfs,target=/d,tmpfs-size=2m,tmpfs-mode=1770",
        "--tmpfs",
        "/x:exec",
        lcd.rootfs(),
        "grep",
        "-E",
        " /(t|d|x) ",
        "/proc/mounts",
    ]);
    let text = out.ok();
    let line = |target: &str| {
        text.lines()
            .find(|l| l.split(' ').nth(1) == Some(target))
            .unwrap_or_else(|| panic!("no {target} in {text}"))
            .split(' ')
            .nth(3)
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let t = line("/t");
    for option in ["nosuid", "nodev", "noexec", "size=1024k", "mode=700"] {
        assert!(
            t.iter().any(|o| o == option),
            "{option} missing on /t: {t:?}"
        );
    }
    let d = line("/d");
    for option in ["nosuid", "nodev", "noexec", "size=2048k", "mode=1770"] {
        assert!(
            d.iter().any(|o| o == option),
            "{option} missing on /d: {d:?}"
        );
    }
    // exec undoes docker's default noexec.
    assert!(!line("/x").iter().any(|o| o == "noexec"), "{text}");
    // --shm-size sizes /dev/shm.
    let out = lcd.run(&[
        "run",
        "--rm",
        "--shm-size",
        "2m",
        lcd.rootfs(),
        "grep",
        " /dev/shm ",
        "/proc/mounts",
    ]);
    assert!(out.ok().contains("size=2048k"), "{out}");
    lcd.assert_clean();
}

#[test]
fn a_volume_in_use_cannot_be_removed() {
    let lcd = Lcd::new("inuse");
    assert_eq!(lcd.run(&["volume", "create", "v1"]).ok(), "v1\n");
    // Creating it again is fine, as in docker.
    lcd.run(&["volume", "create", "v1"]).ok();
    lcd.run(&["create", "--name", "user", "-v", "v1:/data", lcd.rootfs()])
        .ok();
    lcd.run(&["volume", "rm", "v1"])
        .expect_error(125, &["remove v1: volume is in use", "user"]);
    lcd.run(&["volume", "prune", "-a"]).ok();
    assert_eq!(volume_names(&lcd), ["v1"]);
    let listed: serde_json::Value =
        serde_json::from_str(lcd.run(&["volume", "ls", "--format", "json"]).ok().trim())
            .expect("one JSON object");
    assert_eq!(listed["Name"], "v1");
    assert_eq!(listed["Driver"], "local");
    lcd.run(&["rm", "user"]).ok();
    lcd.run(&["volume", "rm", "nope"])
        .expect_error(125, &["get nope: no such volume"]);
    lcd.run(&["volume", "inspect", "nope"]).expect_code(125);
    // prune takes anonymous volumes no container uses (here: one whose container was removed
    // without -v), and named ones too with -a; `volume create` without a name is a named one.
    lcd.run(&["create", "--name", "anon", "-v", "/data", lcd.rootfs()])
        .ok();
    lcd.run(&["rm", "anon"]).ok();
    let generated = lcd.run(&["volume", "create"]).ok().trim().to_string();
    assert_eq!(volume_names(&lcd).len(), 3);
    let pruned = lcd.run(&["volume", "prune", "-f"]).ok().to_string();
    assert_eq!(pruned.lines().count(), 2, "{pruned}");
    let mut left = vec![generated, "v1".to_string()];
    left.sort();
    assert_eq!(volume_names(&lcd), left);
    lcd.run(&["volume", "prune", "-a", "-f"]).ok();
    assert!(volume_names(&lcd).is_empty());
    lcd.run(&["volume", "create", "a b"])
        .expect_error(125, &["invalid characters for a local volume name"]);
    lcd.assert_clean();
}

#[test]
fn bad_mount_flags_are_one_line_errors_that_leave_nothing() {
    let lcd = Lcd::new("badmount");
    let host = lcd.path("host");
    std::fs::create_dir(&host).unwrap();
    let h = host.display().to_string();
    let fresh = lcd.path("fresh/dir").display().to_string();
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (
            vec!["-v".into(), "rel/dir:/c".into()],
            &["--volume rel/dir:/c", "use absolute path"],
        ),
        (
            vec!["-v".into(), format!("{h}:c")],
            &["mount path must be absolute"],
        ),
        (
            vec!["-v".into(), format!("{h}:/c:bogus")],
            &["invalid mode: bogus"],
        ),
        (
            vec!["-v".into(), "/a:/b:/c:/d".into()],
            &["too many colons"],
        ),
        (
            vec!["-v".into(), format!("{h}:/")],
            &["destination can't be '/'"],
        ),
        (
            vec![
                "--mount".into(),
                "type=bind,source=/nonexistent-lcd,target=/c".into(),
            ],
            &["bind source path does not exist: /nonexistent-lcd"],
        ),
        (
            vec![
                "--mount".into(),
                format!("type=bind,src={h},dst=/c,bogus=1"),
            ],
            &["unexpected key 'bogus'"],
        ),
        (
            vec!["--mount".into(), "type=nfs,target=/c".into()],
            &["mount type unknown"],
        ),
        (
            vec!["--mount".into(), format!("type=bind,source={h}")],
            &["target is required"],
        ),
        (
            vec!["--tmpfs".into(), "relative".into()],
            &["--tmpfs relative", "must be absolute"],
        ),
        (
            vec![
                "-v".into(),
                format!("{h}:/c"),
                "--tmpfs".into(),
                "/c".into(),
            ],
            &["duplicate mount point: /c"],
        ),
        // A later failure undoes what the mounts made: the new volume and the new host directory.
        (
            vec![
                "-v".into(),
                "newvol:/v".into(),
                "-v".into(),
                format!("{fresh}:/f"),
                "--ulimit".into(),
                "bogus=1".into(),
            ],
            &["--ulimit"],
        ),
    ];
    for (flags, words) in &cases {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter().map(String::as_str));
        args.extend([lcd.rootfs(), "true"]);
        lcd.run(&args).expect_error(125, words);
    }
    assert!(volume_dirs(&lcd).is_empty(), "{:?}", volume_dirs(&lcd));
    assert!(!lcd.path("fresh").exists(), "a host directory was left");
    assert!(entries(&host).is_empty());
    lcd.assert_clean();
}

#[test]
fn read_only_never_changes_the_host() {
    let lcd = Lcd::new("ro");
    // runc would create a missing working directory or mount point in the rootfs directory.
    lcd.run(&[
        "run",
        "--rm",
        "--read-only",
        "-w",
        "/nonexistent",
        lcd.rootfs(),
        "pwd",
    ])
    .expect_error(125, &["--workdir /nonexistent", "read-only"]);
    lcd.run(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        "/newpoint",
        lcd.rootfs(),
        "true",
    ])
    .expect_error(125, &["mount point /newpoint", "read-only"]);
    assert!(!lcd.rootfs.join("nonexistent").exists());
    assert!(!lcd.rootfs.join("newpoint").exists());
    assert!(volume_dirs(&lcd).is_empty());
    // What exists works, and stays read-only.
    let out = lcd.run(&[
        "run",
        "--rm",
        "--read-only",
        "-w",
        "/tmp",
        lcd.rootfs(),
        "pwd",
    ]);
    assert_eq!(out.ok(), "/tmp\n", "{out}");
    // An image's container has a snapshot of its own: docker's behaviour, the directory is made
    // there and the image's source directory never changes.
    lcd.run(&["import", lcd.rootfs(), "img"]).ok();
    let out = lcd.run(&[
        "run",
        "--rm",
        "--read-only",
        "-w",
        "/nonexistent",
        "img",
        "pwd",
    ]);
    assert_eq!(out.ok(), "/nonexistent\n", "{out}");
    assert!(!lcd.rootfs.join("nonexistent").exists());
    lcd.run(&["rmi", "img"]).ok();
    lcd.assert_clean();
}
