//! Images through `lcd`, as a docker user types them: import a directory, run it copy-on-write,
//! list, tag, save, remove, load, inspect; pull from a real registry on 127.0.0.1 and run what
//! was pulled. Every bad input is one line and exit 125.

mod support;

// The images crate's fixture image (busybox, a user `app`, a whiteout, /app/hello.txt) and its
// test registry (Debian's docker-registry on 127.0.0.1, pushed to through the HTTP API).
#[allow(dead_code)]
#[path = "../../images/tests/common/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "../../images/tests/common/registry.rs"]
mod registry;

use support::Lcd;

#[test]
fn an_imported_directory_runs_copy_on_write_and_round_trips_through_save_and_load() {
    let lcd = Lcd::new("img");
    let id = lcd
        .run(&["import", lcd.rootfs(), "busybox"])
        .ok()
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let images = lcd.run(&["images"]).ok().to_string();
    assert!(images.starts_with("REPOSITORY"), "{images}");
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox ") && l.contains(" latest ") && l.contains(short)),
        "{images}"
    );
    assert_eq!(lcd.run(&["images", "-q"]).ok(), format!("{short}\n"));

    // The container writes to its own snapshot, never to the directory the image came from.
    let out = lcd.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo hi > /x && cat /x",
    ]);
    assert_eq!(out.ok(), "hi\n", "{out}");
    assert!(
        !lcd.rootfs.join("x").exists(),
        "the run wrote to the rootfs"
    );

    // An image in use stays unless forced.
    lcd.run(&["run", "-d", "--name", "user", "busybox", "sleep", "600"])
        .ok();
    let ps = lcd.ps_of("user");
    assert_eq!(ps["Image"], "busybox", "{ps}");
    lcd.run(&["rmi", "busybox"])
        .expect_error(125, &["container user uses it"]);
    lcd.run(&["rm", "-f", "user"]).ok();

    lcd.run(&["tag", "busybox", "bb:1"]).ok();
    let archive = lcd.path("bb.tar");
    let archive = archive.to_str().expect("utf-8");
    lcd.run(&["save", "-o", archive, "bb:1"]).ok();
    // An ID under two repository names: docker's conflict, and both names stay.
    lcd.run(&["rmi", short]).expect_error(
        125,
        &["must be forced", "referenced in multiple repositories"],
    );
    lcd.run(&["image", "inspect", "bb:1", "busybox"]).ok();
    let out = lcd.run(&["rmi", "bb:1", "busybox"]);
    assert_eq!(
        out.ok(),
        format!("Untagged: bb:1\nUntagged: busybox:latest\nDeleted: {id}\n"),
        "{out}"
    );
    assert_eq!(lcd.run(&["images", "-q"]).ok(), "");
    assert_eq!(
        lcd.run(&["load", "-i", archive]).ok(),
        "Loaded image: bb:1\n"
    );
    // --entrypoint replaces the command; the words after the image are its arguments.
    let out = lcd.run(&["run", "--rm", "--entrypoint", "echo", "bb:1", "from", "bb"]);
    assert_eq!(out.ok(), "from bb\n", "{out}");
    let inspect: serde_json::Value =
        serde_json::from_str(lcd.run(&["image", "inspect", "bb:1"]).ok()).expect("json");
    assert_eq!(inspect[0]["Id"], id.as_str(), "{inspect}");

    // Bad input: one line, 125, nothing made.
    lcd.run(&["run", "--pull", "never", "--rm", "nosuch", "true"])
        .expect_error(125, &["no such image: nosuch"]);
    lcd.run(&["import", &lcd.path("missing").display().to_string(), "x"])
        .expect_error(125, &["no such file or directory"]);
    lcd.run(&["rmi", "nosuch"])
        .expect_error(125, &["no such image"]);
    lcd.run(&["tag", "bb:1", "Not/Valid"])
        .expect_error(125, &["Not/Valid"]);
    lcd.run(&["load", "-i", lcd.rootfs()])
        .expect_error(125, &[]);
    // By ID, as docker: its one name untagged, the image deleted.
    let out = lcd.run(&["rmi", short]);
    assert_eq!(
        out.ok(),
        format!("Untagged: bb:1\nDeleted: {id}\n"),
        "{out}"
    );
    assert_eq!(lcd.run(&["images", "-q"]).ok(), "");
    lcd.assert_clean();
}

#[test]
fn pull_from_a_local_registry_and_run() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fixture = image::Fixture::new(None);
    let registry = runtime.block_on(registry::Registry::with_app(&fixture));
    let lcd = Lcd::bare("pull");
    let name = format!("{}/fixture/app:1", registry.addr);
    let out = lcd.run(&["pull", &name]);
    assert_eq!(out.ok(), format!("{name}\n"), "{out}");
    // The image's own entrypoint, command, user and working dir.
    let out = lcd.run(&["run", "--rm", &name]);
    assert_eq!(out.ok(), image::HELLO, "{out}");
    let out = lcd.run(&["run", "--rm", &name, "id -u; pwd"]);
    assert_eq!(out.ok(), "1000\n/app\n", "{out}");
    // --pull missing (the default) fetches what is not stored; a tag the registry lacks fails.
    lcd.run(&["rmi", &name]).ok();
    let out = lcd.run(&["run", "--rm", &name]);
    assert_eq!(out.ok(), image::HELLO, "{out}");
    let missing = format!("{}/fixture/app:2", registry.addr);
    lcd.run(&["run", "--rm", &missing])
        .expect_error(125, &["fixture/app:2"]);
    lcd.run(&["pull", "not a reference"]).expect_error(125, &[]);
    registry.stop();
    lcd.assert_clean();
}

/// Interop with containerd's own client on the same containerd: what `ctr images import` stored,
/// lcd runs; what lcd loaded, `ctr run` runs.
#[test]
fn images_move_between_ctr_and_lcd() {
    let lcd = Lcd::new("ctr");
    lcd.run(&["import", lcd.rootfs(), "bb:1"]).ok();
    let archive = lcd.path("bb.tar");
    let archive = archive.to_str().expect("utf-8");
    lcd.run(&["save", "-o", archive, "bb:1"]).ok();
    lcd.run(&["rmi", "bb:1"]).ok();
    let ctr = |args: &[&str]| lcd.ctr(args);
    // ctr imports (and unpacks); lcd runs it.
    ctr(&["images", "import", archive]);
    let out = lcd.run(&["run", "--rm", "--pull", "never", "bb:1", "echo", "from ctr"]);
    assert_eq!(out.ok(), "from ctr\n", "{out}");
    lcd.run(&["rmi", "bb:1"]).ok();
    // lcd loads; ctr runs it.
    lcd.run(&["load", "-i", archive]).ok();
    let out = ctr(&[
        "run",
        "--rm",
        "docker.io/library/bb:1",
        "ctr-run",
        "echo",
        "from lcd",
    ]);
    assert_eq!(out, "from lcd\n");
    lcd.run(&["rmi", "bb:1"]).ok();
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

/// Ctrl-C in the middle of `lcd pull` (a layer half sent, its connection held by the front): lcd
/// deletes the pull's lease with a synchronous GC and exits 130 (128 + SIGINT, as docker's CLI);
/// no lease, ingest, image or snapshot stays; the next `lcd pull` completes.
#[test]
fn ctrl_c_during_pull_leaves_nothing_and_the_next_pull_completes() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fixture = image::Fixture::new(None);
    let (registry, front) = runtime.block_on(async {
        let registry = registry::Registry::with_app(&fixture).await;
        let front = registry::Front::start(
            &registry.addr,
            registry::FrontConfig {
                hold_blob: Some(fixture.layers[0].digest()),
                ..Default::default()
            },
        )
        .await;
        (registry, front)
    });
    let lcd = Lcd::bare("pullint");
    let name = format!("{}/fixture/app:1", front.addr);
    let pulling = lcd.spawn(&["pull", &name], std::process::Stdio::null());
    runtime.block_on(front.wait_held());
    // Without the header line.
    let ctr = |args: &[&str]| {
        lcd.ctr(args)
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Mid-way: the half layer sits in an open ingest, under the pull's lease.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ctr(&["content", "active"]).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no ingest");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(ctr(&["leases", "ls"]).len(), 1);
    pulling.signal(nix::sys::signal::Signal::SIGINT);
    let out = pulling.finish(std::time::Duration::from_secs(20));
    assert_eq!(out.code(), 130, "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(out.stderr, "", "{out}");
    assert_eq!(ctr(&["leases", "ls"]), Vec::<String>::new(), "leases left");
    assert_eq!(ctr(&["content", "active"]), Vec::<String>::new(), "ingests");
    assert_eq!(ctr(&["content", "ls"]), Vec::<String>::new(), "blobs left");
    assert_eq!(ctr(&["images", "ls"]), Vec::<String>::new(), "images left");
    front.release();

    let out = lcd.run(&["pull", &name]);
    assert_eq!(out.ok(), format!("{name}\n"), "{out}");
    let out = lcd.run(&["run", "--rm", &name]);
    assert_eq!(out.ok(), image::HELLO, "{out}");
    assert_eq!(ctr(&["leases", "ls"]), Vec::<String>::new(), "leases left");
    assert_eq!(ctr(&["content", "active"]), Vec::<String>::new(), "ingests");
    lcd.run(&["rmi", &name]).ok();
    drop(front);
    registry.stop();
    lcd.assert_clean();
}

/// A name that moves to another image (here by `import`; `pull`, `load`, `tag` and `commit` name
/// images the same way) leaves the image it named listed as `<none>` by its ID, still runnable,
/// until `image prune` removes it: docker's dangling image.
#[test]
fn a_name_that_moves_leaves_the_old_image_dangling() {
    let lcd = Lcd::new("imgmove");
    let import = || {
        lcd.run(&["import", lcd.rootfs(), "busybox"])
            .ok()
            .trim()
            .to_string()
    };
    let short = |id: &str| id["sha256:".len().."sha256:".len() + 12].to_string();
    let first = import();
    let archive = lcd.path("first.tar");
    let archive = archive.to_str().expect("utf-8");
    lcd.run(&["save", "-o", archive, "busybox"]).ok();
    std::fs::write(lcd.rootfs.join("second"), "2\n").expect("write to the rootfs");
    let second = import();
    assert_ne!(first, second);
    let rows = || {
        let out = lcd.run(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
        let mut rows: Vec<String> = out.ok().lines().map(str::to_string).collect();
        rows.sort();
        rows
    };
    assert_eq!(
        rows(),
        vec![
            format!("<none>:<none> {}", short(&first)),
            format!("busybox:latest {}", short(&second)),
        ]
    );
    let has_second = |image: &str| {
        lcd.run(&[
            "run",
            "--rm",
            image,
            "sh",
            "-c",
            "test -e /second && echo yes || echo no",
        ])
        .ok()
        .to_string()
    };
    assert_eq!(has_second(&short(&first)), "no\n");
    assert_eq!(has_second("busybox"), "yes\n");

    // A tag that moves to an image named elsewhere leaves nothing new behind.
    lcd.run(&["tag", &short(&first), "bb:1"]).ok();
    lcd.run(&["tag", "busybox", "bb:1"]).ok();
    assert_eq!(
        rows(),
        vec![
            format!("<none>:<none> {}", short(&first)),
            format!("bb:1 {}", short(&second)),
            format!("busybox:latest {}", short(&second)),
        ]
    );
    let out = lcd.run(&["image", "prune", "-f"]);
    assert!(out.ok().contains(&first), "{out}");

    // load says so, as docker, when a name it loads leaves an image nothing else names.
    lcd.run(&["rmi", "bb:1"]).ok();
    let out = lcd.run(&["load", "-i", archive]);
    assert_eq!(
        out.ok(),
        format!(
            "The image busybox:latest already exists, renaming the old one with ID {second} to empty string\nLoaded image: busybox:latest\n"
        ),
        "{out}"
    );
    assert_eq!(has_second("busybox"), "no\n");
    lcd.run(&["rmi", "busybox"]).ok();
    lcd.run(&["image", "prune", "-f"]).ok();
    assert_eq!(lcd.run(&["images", "-q"]).ok(), "");
    lcd.assert_clean();
}
