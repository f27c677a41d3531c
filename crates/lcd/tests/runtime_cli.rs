//! End-to-end tests of `--runtime` through the built `lcd`: docker's names (runc, a runc-compatible
//! binary by name or path under the runc shim, another shim by its runtime name), the name kept
//! on the container for `inspect`, `start` and the agent's restarts, `lcd info`'s list, the
//! one-line refusals (unknown names, crun on a host whose cgroup layout it refuses), and docker's
//! exit codes and refusals in crun's words as well as runc's.
//!
//! crun runs containers here only where the host's cgroups suit it. On a hybrid host (cgroup v1
//! plus controllers on cgroup v2, which crun refuses) the crun tests run it behind a small script
//! that hides the cgroup v2 mount from crun in a mount namespace of the script's own, so crun's
//! own messages are still what lcd classifies; the host's mounts are never changed.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use support::{entries, in_private_namespace, is_alive, shims_of, Lcd, PROMPT};

/// Poll `check` until it holds, panicking with `what` after [`PROMPT`].
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROMPT;
    while !check() {
        assert!(Instant::now() < deadline, "not within {PROMPT:?}: {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// `name` in `PATH`, as an absolute path.
fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_absolute() && p.is_file())
}

/// Write an executable script.
fn script(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A runc-compatible runtime of the test's own: a script at `<tmp>/<name>` that appends each
/// call's arguments to `<tmp>/<name>.calls` and runs runc. Returns (script, calls file).
fn runc_wrapper(lcd: &Lcd, name: &str) -> (PathBuf, PathBuf) {
    let runc = in_path("runc").expect("runc in PATH");
    let path = lcd.path(name);
    let calls = lcd.path(&format!("{name}.calls"));
    script(
        &path,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            runc.display()
        ),
    );
    (path, calls)
}

/// The calls the wrapper logged that create container `id`'s task (`... create ... ID`).
fn creates_of(calls: &Path, id: &str) -> usize {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.contains(&"create") && words.last() == Some(&id)
        })
        .count()
}

/// The cgroup v2 hierarchy's controllers on a hybrid host (cgroup v1 at /sys/fs/cgroup, cgroup v2
/// at /sys/fs/cgroup/unified), where crun refuses to run; `None` elsewhere.
fn hybrid_controllers() -> Option<String> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return None; // cgroup v2 only
    }
    let text = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").ok()?;
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// crun as a runtime that works on this host: crun itself, or on a hybrid host a script that runs
/// it with the cgroup v2 mount hidden (in a mount namespace of its own). `None` without crun.
fn working_crun(lcd: &Lcd) -> Option<PathBuf> {
    let crun = in_path("crun")?;
    if hybrid_controllers().is_none() {
        return Some(crun);
    }
    let path = lcd.path("crun-v1");
    script(
        &path,
        &format!(
            "#!/bin/sh\nexec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"' '{}' \"$@\"\n",
            crun.display()
        ),
    );
    Some(path)
}

/// Pids of live shims whose binary ends with `shim` and that serve namespace `ns`.
fn shims_named(shim: &str, ns: &str) -> Vec<u32> {
    entries(Path::new("/proc"))
        .into_iter()
        .filter_map(|entry| {
            let pid = entry.file_name()?.to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let named = args.first().is_some_and(|a| a.ends_with(shim.as_bytes()));
            let ours = args
                .windows(2)
                .any(|w| w[0] == b"-namespace" && w[1] == ns.as_bytes());
            (named && ours && is_alive(pid)).then_some(pid)
        })
        .collect()
}

#[test]
fn unknown_runtimes_are_one_line_and_nothing_is_created() {
    let lcd = Lcd::new("rtbad");
    let rootfs = lcd.rootfs();
    lcd.run(&["run", "--rm", "--runtime", "nope", rootfs, "true"])
        .expect_error(125, &["--runtime nope", "unknown or invalid runtime name"]);
    lcd.run(&[
        "create",
        "--runtime",
        "io.containerd.nope.v1",
        rootfs,
        "true",
    ])
    .expect_error(
        125,
        &["--runtime io.containerd.nope.v1", "containerd-shim-nope-v1"],
    );
    let plain = lcd.path("plain-file");
    std::fs::write(&plain, "not a program").expect("write");
    let plain = plain.to_str().expect("utf-8 path");
    lcd.run(&["run", "--rm", "--runtime", plain, rootfs, "true"])
        .expect_error(125, &["--runtime", "no executable file at"]);
    let liar = lcd.path("not-a-runtime");
    script(&liar, "#!/bin/sh\necho nothing to see >&2\nexit 3\n");
    let liar = liar.to_str().expect("utf-8 path");
    lcd.run(&["run", "-d", "--runtime", liar, rootfs, "true"])
        .expect_error(125, &["is not an OCI runtime", "nothing to see"]);
    // A flag without its value is a usage error; after the image it is the command's argument.
    lcd.run(&["run", "--rm", "--runtime"]).expect_code(125);
    lcd.run(&["run", "--rm", rootfs, "true", "--runtime"]).ok();
    lcd.assert_clean();
}

#[test]
fn a_runc_compatible_binary_runs_under_the_runc_shim_for_run_start_and_restarts() {
    let lcd = Lcd::new("rtbin");
    let rootfs = lcd.rootfs();
    let (wrapper, calls) = runc_wrapper(&lcd, "myrt");
    let wrapper_arg = wrapper.to_str().expect("utf-8 path");

    // By path: the shim runs it (BinaryName), with a state root of its own under the exec root.
    let out = lcd.run(&[
        "run",
        "--rm",
        "--name",
        "bypath",
        "--runtime",
        wrapper_arg,
        rootfs,
        "echo",
        "hi",
    ]);
    assert_eq!(out.ok(), "hi\n");
    assert_eq!(creates_of(&calls, "bypath"), 1, "{calls:?}");
    let logged = std::fs::read_to_string(&calls).expect("calls");
    let root = lcd.exec_root().join("runtime-myrt");
    assert!(
        logged.contains(&format!("--root {}", root.display())),
        "{logged}"
    );
    // A command that cannot run is docker's 127 through it too.
    lcd.run(&["run", "--rm", "--runtime", wrapper_arg, rootfs, "nope"])
        .expect_error(127, &["nope"]);

    // By name in PATH: recorded on the container, and `start` uses it.
    let path = format!(
        "{}:{}",
        lcd.dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut create = lcd.command([
        "create",
        "--name",
        "byname",
        "--runtime",
        "myrt",
        rootfs,
        "sh",
        "-c",
        "exit 7",
    ]);
    create.env("PATH", &path);
    assert_eq!(lcd.output(create).ok(), "byname\n");
    assert_eq!(lcd.inspect("byname")["HostConfig"]["Runtime"], "myrt");
    assert_eq!(creates_of(&calls, "byname"), 0);
    lcd.run(&["start", "-a", "byname"]).expect_code(7);
    assert_eq!(creates_of(&calls, "byname"), 1);

    // The agent's restarts go through it as well.
    lcd.run(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "on-failure:1",
        "--runtime",
        wrapper_arg,
        rootfs,
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    eventually("again is restarted once, then stays exited", || {
        let inspect = lcd.inspect("again");
        inspect["RestartCount"] == 1
            && inspect["State"]["Status"] == "exited"
            && shims_of(&lcd.ns).is_empty()
    });
    assert_eq!(creates_of(&calls, "again"), 2);
    assert_eq!(
        lcd.inspect("again")["HostConfig"]["Runtime"],
        wrapper_arg,
        "a path is recorded as the absolute path it is"
    );

    // Without --runtime: runc, as docker shows it.
    lcd.run(&["create", "--name", "plain", rootfs, "true"]).ok();
    assert_eq!(lcd.inspect("plain")["HostConfig"]["Runtime"], "runc");
    assert_eq!(creates_of(&calls, "plain"), 0);

    lcd.run(&["rm", "byname", "again", "plain"]).ok();
    lcd.assert_clean();
}

#[test]
fn another_shim_is_named_by_its_runtime_name() {
    let lcd = Lcd::new("rtshim");
    // containerd finds shims in its PATH (the tests' own) and beside its binary.
    let beside = std::env::var_os("LCD_TEST_CONTAINERD")
        .map(PathBuf::from)
        .and_then(|c| c.parent().map(|d| d.join("containerd-shim-runc-v1")));
    if in_path("containerd-shim-runc-v1").is_none() && !beside.is_some_and(|p| p.is_file()) {
        eprintln!("skipped: no containerd-shim-runc-v1 in PATH or beside containerd");
        return;
    }
    let rootfs = lcd.rootfs();
    // The runc shim's own name is the default runtime.
    let out = lcd.run(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        rootfs,
        "echo",
        "v2",
    ]);
    assert_eq!(out.ok(), "v2\n");

    lcd.run(&[
        "run",
        "-d",
        "--name",
        "old",
        "--runtime",
        "io.containerd.runc.v1",
        rootfs,
        "sleep",
        "600",
    ])
    .ok();
    assert_eq!(
        shims_named("containerd-shim-runc-v1", &lcd.ns).len(),
        1,
        "the container runs under the v1 shim"
    );
    assert_eq!(
        lcd.inspect("old")["HostConfig"]["Runtime"],
        "io.containerd.runc.v1"
    );
    // Another version of the runc shim gets lcd's runc options: runc's state under the exec root.
    assert!(
        lcd.exec_root()
            .join("runc")
            .join(&lcd.ns)
            .join("old")
            .is_dir(),
        "runc state under the exec root"
    );
    assert_eq!(lcd.run(&["exec", "old", "echo", "in"]).ok(), "in\n");
    lcd.run(&["rm", "-f", "old"]).ok();
    eventually("the v1 shim exits", || {
        shims_named("containerd-shim-runc-v1", &lcd.ns).is_empty()
    });
    lcd.assert_clean();
}

#[test]
fn info_lists_the_runtimes_and_the_default() {
    let lcd = Lcd::new("rtinfo");
    let out = lcd.run(&["info", "--format", "json"]);
    let info: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(info["DefaultRuntime"], "runc", "{info}");
    let runtimes = info["Runtimes"].as_object().expect("Runtimes");
    assert!(runtimes.contains_key("runc"), "{info}");
    assert!(runtimes.contains_key("io.containerd.runc.v2"), "{info}");
    if let Some(crun) = in_path("crun") {
        assert_eq!(
            runtimes["crun"]["path"],
            crun.to_str().expect("utf-8"),
            "{info}"
        );
        let warned = info["Warnings"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w.as_str().is_some_and(|w| w.contains("crun")))
        });
        assert_eq!(warned, hybrid_controllers().is_some(), "{info}");
    }
    let text = lcd.run(&["info"]);
    assert!(
        text.ok()
            .lines()
            .any(|l| l.starts_with(" Runtimes: ") && l.split_whitespace().any(|w| w == "runc")),
        "{text}"
    );
    assert!(text.ok().contains(" Default Runtime: runc\n"), "{text}");
}

#[test]
fn crun_on_a_host_it_refuses_is_one_line() {
    let Some(crun) = in_path("crun") else {
        eprintln!("skipped: no crun (Debian package crun)");
        return;
    };
    let lcd = Lcd::new("rthybrid");
    let rootfs = lcd.rootfs();
    let Some(controllers) = hybrid_controllers() else {
        // crun works here: it runs the container.
        let out = lcd.run(&["run", "--rm", "--runtime", "crun", rootfs, "echo", "hi"]);
        assert_eq!(out.ok(), "hi\n");
        eprintln!("crun runs containers on this host (no hybrid cgroups): the refusal is not testable here");
        lcd.assert_clean();
        return;
    };
    // Refused before anything is created, naming the layout and the way out.
    lcd.run(&["run", "--rm", "--runtime", "crun", rootfs, "true"])
        .expect_error(
            125,
            &[
                "--runtime crun",
                &controllers,
                "cgroups in hybrid mode not supported",
                "--runtime runc",
            ],
        );
    lcd.run(&["create", "--runtime", "crun", rootfs, "true"])
        .expect_error(125, &["cgroups in hybrid mode not supported"]);
    lcd.assert_clean();

    // A script in front of crun is not judged in advance (it might hide the cgroup v2 mount):
    // crun's own refusal is recognised when the task is created.
    let front = lcd.path("crun-front");
    script(
        &front,
        &format!("#!/bin/sh\nexec '{}' \"$@\"\n", crun.display()),
    );
    let front = front.to_str().expect("utf-8 path");
    lcd.run(&["create", "--name", "fr", "--runtime", front, rootfs, "true"])
        .ok();
    lcd.run(&["start", "fr"])
        .expect_error(125, &["container fr", "hybrid cgroup layout"]);
    assert_eq!(lcd.inspect("fr")["State"]["Status"], "created");
    lcd.run(&["rm", "fr"]).ok();
    lcd.run(&["run", "--rm", "--runtime", front, rootfs, "true"])
        .expect_error(125, &["hybrid cgroup layout", "crun does"]);
    lcd.assert_clean();
}

#[test]
fn crun_s_failures_get_docker_s_exit_codes_and_refusals() {
    let lcd = Lcd::new("rtcrun");
    let Some(crun) = working_crun(&lcd) else {
        eprintln!("skipped: no crun (Debian package crun)");
        return;
    };
    let rootfs = lcd.rootfs();
    let crun = crun.to_str().expect("utf-8 path");
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--runtime", crun];
        all.extend_from_slice(args);
        lcd.run(&all)
    };
    assert_eq!(run(&[rootfs, "echo", "hi"]).ok(), "hi\n");
    // In runc's words, as docker says it: crun's "open executable: Permission denied" does not
    // even name the file.
    run(&[rootfs, "/etc/passwd"]).expect_error(126, &["exec: \"/etc/passwd\": permission denied"]);
    run(&[rootfs, "/bin"]).expect_error(126, &["exec: \"/bin\""]);
    run(&[rootfs, "nope"])
        .expect_error(127, &["exec: \"nope\": executable file not found in $PATH"]);
    // docker's unlimited pids limit (-1), which crun 1.8 would write to pids.max as it is.
    run(&["--pids-limit", "-1", rootfs, "true"]).ok();

    // A running container: exec's codes, and the kernel's refusals of memory limits.
    let fill = "head -c 52428800 /dev/zero > /dev/shm/x; : > /filled; exec sleep 600";
    lcd.run(&[
        "run",
        "-d",
        "--name",
        "mem",
        "--runtime",
        crun,
        "-m",
        "100m",
        "--memory-swap",
        "200m",
        rootfs,
        "sh",
        "-c",
        fill,
    ])
    .ok();
    eventually("the container fills /dev/shm", || {
        lcd.run(&["exec", "mem", "test", "-e", "/filled"]).code() == 0
    });
    lcd.run(&["exec", "mem", "nope"])
        .expect_error(127, &["nope"]);
    lcd.run(&["exec", "mem", "/etc/passwd"])
        .expect_error(126, &["/etc/passwd"]);
    lcd.run(&["update", "--memory", "20m", "mem"])
        .expect_error(125, &["memory limit is below what the container uses"]);
    lcd.run(&["update", "--memory", "300m", "mem"])
        .expect_error(125, &["memory+swap"]);
    lcd.run(&["update", "--memory", "150m", "mem"]).ok();
    lcd.run(&["rm", "-f", "mem"]).ok();
    lcd.assert_clean();
}

#[test]
fn a_failing_network_hook_says_why_under_runc_and_crun() {
    // The bridge network's hook, in a namespace of the test's own (a failure is undone, but the
    // undo runs the bridge plugin's DEL).
    if !in_private_namespace("a_failing_network_hook_says_why_under_runc_and_crun") {
        return;
    }
    let lcd = Lcd::new("rthook");
    let rootfs = lcd.rootfs();
    // The attach hook runs CNI's loopback plugin first: one that fails makes the hook fail before
    // the bridge plugin makes anything.
    let plugins = lcd.path("plugins");
    std::fs::create_dir(&plugins).expect("plugins dir");
    for name in ["bridge", "host-local", "portmap"] {
        std::os::unix::fs::symlink(Path::new("/usr/lib/cni").join(name), plugins.join(name))
            .expect("plugin link");
    }
    script(
        &plugins.join("loopback"),
        "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"loopback says no\"}'\nexit 1\n",
    );
    let mut runtimes = vec![None];
    match working_crun(&lcd) {
        Some(crun) => runtimes.push(Some(crun)),
        None => eprintln!("no crun (Debian package crun): runc only"),
    }
    for runtime in &runtimes {
        let mut args = vec!["run", "--rm", "--network", "bridge"];
        if let Some(crun) = runtime {
            args.extend(["--runtime", crun.to_str().expect("utf-8 path")]);
        }
        args.extend([rootfs, "true"]);
        let mut cmd = lcd.command(&args);
        cmd.env("LCD_CNI_PATH", &plugins);
        let out = lcd.output(cmd);
        let line = out.expect_error(125, &["loopback says no"]);
        assert_eq!(
            line, "lcd: network: CNI plugin loopback ADD failed: loopback says no",
            "{runtime:?}"
        );
        assert!(
            lcd.ids().is_empty(),
            "{runtime:?}: the failed run left a container"
        );
    }
    lcd.assert_clean();
}
