//! Docker's secure defaults and security options in real containers: the default seccomp profile,
//! capabilities, privileged, users and groups, devices, ulimits, sysctls, an init; and every bad
//! option refused before anything is created.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use common::TestEnv;
use libcontainerd::spec::{capability_mask, for_container, Seccomp, SpecBuilder};
use libcontainerd::{exec_process, Container, DirectIo, ErrorKind, Runtime, StdioConfig, Task};
use tokio::io::AsyncReadExt;

/// Debian's tini package: `/usr/bin/tini` is dynamically linked, this one runs in any rootfs.
const TINI: &str = "/usr/bin/tini-static";

async fn collect(io: DirectIo) -> (String, String) {
    async fn drain(r: Option<libcontainerd::OutputReader>) -> String {
        let mut buf = vec![];
        if let Some(mut r) = r {
            r.read_to_end(&mut buf).await.expect("read output");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
    tokio::join!(drain(io.stdout), drain(io.stderr))
}

struct Ran {
    code: u32,
    out: String,
    err: String,
}

/// Run `spec` to completion as container `name`, then remove it.
async fn run(env: &TestEnv, name: &str, spec: SpecBuilder) -> Ran {
    let spec = spec.build().expect("spec");
    let c = env
        .client
        .new_container(
            &TestEnv::id(name),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("create container");
    let (task, io) = c
        .create_task(None, &StdioConfig::default())
        .await
        .expect("create task");
    let output = tokio::spawn(collect(io));
    task.start().await.expect("start");
    let status = tokio::time::timeout(Duration::from_secs(60), task.wait())
        .await
        .expect("exit in time")
        .expect("wait");
    let (out, err) = output.await.expect("output");
    task.delete().await.expect("delete task");
    c.delete().await.expect("delete container");
    Ran {
        code: status.code,
        out,
        err,
    }
}

/// The fields of /proc/self/status the security options change.
async fn status(env: &TestEnv, name: &str, spec: SpecBuilder) -> BTreeMap<String, String> {
    let ran = run(
        env,
        name,
        spec.args([
            "grep",
            "-E",
            "^(Seccomp|Seccomp_filters|NoNewPrivs|CapEff|CapBnd|Groups):",
            "/proc/self/status",
        ]),
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.err);
    ran.out
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn hex(mask: u64) -> String {
    format!("{mask:016x}")
}

#[tokio::test]
async fn default_seccomp_capabilities_and_privileged_in_proc_status() {
    let env = TestEnv::new().await;
    let default = status(&env, "default", env.spec(&[])).await;
    assert_eq!(default["Seccomp"], "2", "{default:?}");
    let filters: u32 = default["Seccomp_filters"].parse().unwrap();
    assert!(filters >= 1, "{default:?}");
    assert_eq!(default["CapEff"], "00000000a80425fb");
    assert_eq!(default["CapBnd"], "00000000a80425fb");
    assert_eq!(default["NoNewPrivs"], "0");

    let unconfined = status(
        &env,
        "unconfined",
        env.spec(&[]).seccomp(Seccomp::Unconfined),
    )
    .await;
    assert_eq!(unconfined["Seccomp"], "0");

    let admin = status(&env, "netadmin", env.spec(&[]).cap_add("NET_ADMIN")).await;
    assert_eq!(admin["CapEff"], "00000000a80435fb");
    assert_eq!(admin["Seccomp"], "2");

    let none = status(&env, "dropall", env.spec(&[]).cap_drop("ALL")).await;
    assert_eq!(none["CapEff"], "0000000000000000");
    assert_eq!(none["Seccomp"], "2");

    let nnp = status(&env, "nnp", env.spec(&[]).no_new_privileges(true)).await;
    assert_eq!(nnp["NoNewPrivs"], "1");

    let privileged = status(&env, "privileged", env.spec(&[]).privileged(true)).await;
    assert_eq!(privileged["Seccomp"], "0");
    // Every capability this host has (what docker's ALL means): the host's own bounding set.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = host
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(privileged["CapEff"], host_bnd);

    println!("| container | Seccomp | NoNewPrivs | CapEff | Groups |");
    println!("|---|---|---|---|---|");
    for (name, s) in [
        ("default", &default),
        ("privileged", &privileged),
        ("cap_drop ALL", &none),
        ("cap_add NET_ADMIN", &admin),
        ("no_new_privileges", &nnp),
        ("seccomp unconfined", &unconfined),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            s["Seccomp"], s["NoNewPrivs"], s["CapEff"], s["Groups"]
        );
    }
    assert_eq!(
        hex(capability_mask(&libcontainerd::spec::DEFAULT_CAPABILITIES)),
        "00000000a80425fb"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn the_default_profile_denies_with_eperm_and_privileged_allows() {
    let env = TestEnv::new().await;
    // A user namespace needs no capability, so only seccomp stands in the way.
    let denied = run(&env, "unshare", env.spec(&["unshare", "-U", "true"])).await;
    assert_ne!(denied.code, 0);
    assert!(
        denied.err.contains("Operation not permitted"),
        "{}",
        denied.err
    );
    let unconfined = run(
        &env,
        "unshare-unconfined",
        env.spec(&["unshare", "-U", "true"])
            .seccomp(Seccomp::Unconfined),
    )
    .await;
    assert_eq!(unconfined.code, 0, "{}", unconfined.err);

    let mount = ["mount", "-t", "tmpfs", "none", "/tmp"];
    let denied = run(&env, "mount", env.spec(&mount)).await;
    assert_ne!(denied.code, 0);
    // busybox's words for EPERM from mount(2).
    assert!(
        denied.err.contains("mount: permission denied"),
        "{}",
        denied.err
    );

    let privileged = run(
        &env,
        "privileged",
        env.spec(&[
            "sh",
            "-c",
            "unshare -U true && mount -t tmpfs none /tmp && grep -c ' /tmp tmpfs' /proc/mounts \
             && grep -w sysfs /proc/mounts",
        ])
        .privileged(true),
    )
    .await;
    assert_eq!(privileged.code, 0, "{}", privileged.err);
    assert!(privileged.out.starts_with("1\n"), "{}", privileged.out);
    assert!(
        privileged.out.contains("sysfs /sys sysfs rw"),
        "{}",
        privileged.out
    );
    // A privileged container sees the host's devices.
    let devices = run(
        &env,
        "privileged-dev",
        env.spec(&[
            "sh",
            "-c",
            "test -c /dev/kmsg -o -c /dev/mem -o -c /dev/loop-control && echo host",
        ])
        .privileged(true),
    )
    .await;
    assert_eq!(devices.out, "host\n", "{}", devices.err);

    // CAP_SYS_ADMIN alone opens mount in the profile (and gives the capability).
    let admin = run(&env, "admin", env.spec(&mount).cap_add("SYS_ADMIN")).await;
    assert_eq!(admin.code, 0, "{}", admin.err);
    env.cleanup().await;
}

#[tokio::test]
async fn users_resolve_against_the_rootfs() {
    let env = TestEnv::new().await;
    // The busybox rootfs has root and nobody; give nobody a supplementary group.
    let group = env.rootfs.join("etc/group");
    let mut text = std::fs::read_to_string(&group).unwrap();
    text.push_str("audio:x:29:nobody\n");
    std::fs::write(&group, text).unwrap();

    // The kernel keeps the groups sorted, so `id` lists them in order.
    let id = |name: &'static str, spec: SpecBuilder| {
        let env = &env;
        async move {
            let ran = run(env, name, spec.args(["id"])).await;
            assert_eq!(ran.code, 0, "{}", ran.err);
            ran.out.trim().to_string()
        }
    };
    let rootfs = env.rootfs.clone();
    let by_uid = id("uid", env.spec(&[]).user_from_rootfs("65534", &rootfs)).await;
    assert_eq!(
        by_uid,
        "uid=65534(nobody) gid=65534(nogroup) groups=29(audio),65534(nogroup)"
    );
    let by_name = id("name", env.spec(&[]).user_from_rootfs("nobody", &rootfs)).await;
    assert_eq!(by_name, by_uid);
    let with_group = id(
        "group",
        env.spec(&[]).user_from_rootfs("nobody:root", &rootfs),
    )
    .await;
    assert_eq!(with_group, "uid=65534(nobody) gid=0(root) groups=0(root)");
    let added = id(
        "added",
        env.spec(&[])
            .user_from_rootfs("65534", &rootfs)
            .group_add(1234)
            .group_add("root"),
    )
    .await;
    assert_eq!(
        added,
        "uid=65534(nobody) gid=65534(nogroup) groups=0(root),29(audio),1234,65534(nogroup)"
    );
    let unknown = id("unknown", env.spec(&[]).user_from_rootfs("4242", &rootfs)).await;
    assert_eq!(unknown, "uid=4242 gid=0(root) groups=0(root)");
    // The numeric form is taken as is (no lookup): the gid stays 0.
    let numeric = id("numeric", env.spec(&[]).user(65534, 0)).await;
    assert_eq!(numeric, "uid=65534(nobody) gid=0(root)");
    env.cleanup().await;
}

#[tokio::test]
async fn devices_ulimits_sysctls_and_resources() {
    let env = TestEnv::new().await;
    let ran = run(
        &env,
        "dev",
        env.spec(&[
            "sh",
            "-c",
            "test -c /dev/mynull && echo hi > /dev/mynull && stat -c '%t,%T' /dev/mynull; \
             ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj; \
             grep ' /dev/shm ' /proc/mounts",
        ])
        .device("/dev/null", "/dev/mynull", "rwm")
        .ulimit("nofile", 100, 200)
        .sysctl("net.ipv4.ip_forward", "1")
        .oom_score_adj(500)
        .shm_size(2 << 20)
        .memory_limit(64 << 20)
        .pids_limit(-1)
        .cpu_shares(512),
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.err);
    let lines: Vec<&str> = ran.out.lines().collect();
    assert_eq!(lines[..5], ["1,3", "100", "200", "1", "500"], "{}", ran.out);
    assert!(lines[5].contains("size=2048k"), "{}", lines[5]);
    // Without the mapping the device is not there, and the default nofile is 1024.
    let ran = run(
        &env,
        "nodev",
        env.spec(&["sh", "-c", "test -e /dev/mynull || echo absent; ulimit -n"]),
    )
    .await;
    assert_eq!(ran.out, "absent\n1024\n");
    env.cleanup().await;
}

async fn zombies(task: &Task, container: &Container, n: u32) -> usize {
    let script = "for f in /proc/[0-9]*/stat; do read -r l < $f && case \"$l\" in *') Z '*) echo Z;; esac; done; true";
    let (exec, io) = task
        .spawn_exec(
            &TestEnv::id(&format!("z{n}")),
            exec_process(container.spec(), ["sh", "-c", script])
                .build()
                .expect("zombie check"),
            &StdioConfig::default(),
        )
        .await
        .expect("exec");
    let (out, _) = collect(io).await;
    exec.wait().await.expect("wait exec");
    exec.delete().await.expect("delete exec");
    out.lines().count()
}

/// Start `spec`, then watch for a zombie for up to `limit`: the count seen last.
async fn zombies_after(
    env: &TestEnv,
    name: &str,
    spec: SpecBuilder,
    want: usize,
) -> (usize, String) {
    let spec = spec.build().expect("zombie check");
    let c = env
        .client
        .new_container(
            &TestEnv::id(name),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("zombie check");
    let (task, _io) = c
        .spawn(None, &StdioConfig::default())
        .await
        .expect("zombie check");
    let start = Instant::now();
    let mut seen = 0;
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        seen = zombies(&task, &c, n).await;
        n += 1;
        if seen == want {
            break;
        }
    }
    let comm = {
        let (exec, io) = task
            .spawn_exec(
                &TestEnv::id("comm"),
                exec_process(c.spec(), ["cat", "/proc/1/comm"])
                    .build()
                    .expect("zombie check"),
                &StdioConfig::default(),
            )
            .await
            .expect("zombie check");
        let (out, _) = collect(io).await;
        exec.wait().await.expect("zombie check");
        exec.delete().await.expect("zombie check");
        out.trim().to_string()
    };
    task.force_delete().await.expect("zombie check");
    c.delete().await.expect("zombie check");
    (seen, comm)
}

#[tokio::test]
async fn an_init_reaps_orphans() {
    if !Path::new(TINI).exists() {
        eprintln!("skipped: {TINI} is missing (apt-get install tini)");
        return;
    }
    let env = TestEnv::new().await;
    // An orphan whose new parent, PID 1, never waits: `sleep` after exec.
    let orphan = ["sh", "-c", "(sleep 0.1 &); exec sleep 60"];
    let (without, pid1) = zombies_after(&env, "noinit", env.spec(&orphan), 1).await;
    assert_eq!(
        (without, pid1.as_str()),
        (1, "sleep"),
        "without an init the orphan stays a zombie"
    );
    let (with, pid1) = zombies_after(&env, "init", env.spec(&orphan).init(TINI), 0).await;
    assert_eq!(
        (with, pid1.as_str()),
        (0, "docker-init"),
        "the init reaps it"
    );

    // The init runs the command as its child with `--`, and passes the exit code on.
    let ran = run(
        &env,
        "initargs",
        env.spec(&["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 7"])
            .init(TINI),
    )
    .await;
    assert_eq!(ran.code, 7);
    assert_eq!(
        ran.out,
        "/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' '; exit 7 "
    );
    env.cleanup().await;
}

#[tokio::test]
async fn bad_options_are_refused_before_anything_is_created() {
    let env = TestEnv::new().await;
    let dir = env.dir().to_path_buf();
    let bad_profile = dir.join("bad-profile.json");
    std::fs::write(
        &bad_profile,
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [",
    )
    .unwrap();
    let cases: Vec<(SpecBuilder, &str)> = vec![
        (
            env.spec(&["true"]).cap_add("CAP_FLY"),
            "cap_add: unknown capability \"CAP_FLY\"",
        ),
        (
            env.spec(&["true"]).cap_drop("NOPE"),
            "cap_drop: unknown capability",
        ),
        (
            env.spec(&["true"])
                .seccomp(Seccomp::File(bad_profile.clone())),
            "malformed profile: EOF while parsing",
        ),
        (
            env.spec(&["true"])
                .device("/dev/does-not-exist", "/dev/x", "rwm"),
            "device /dev/does-not-exist: cannot use it on the host",
        ),
        (
            env.spec(&["true"]).ulimit("nofile", 300, 200),
            "ulimit nofile: soft limit must be less than or equal to hard limit",
        ),
        (
            env.spec(&["true"]).sysctl("kernel.panic", "1"),
            "sysctl kernel.panic is not allowed",
        ),
        (
            env.spec(&["true"]).privileged(true).cap_drop("ALL"),
            "privileged: cap_drop ALL contradicts it",
        ),
        (
            env.spec(&["true"]).init("/nonexistent/tini"),
            "init /nonexistent/tini: cannot use it",
        ),
        (
            env.spec(&["true"]).user_from_rootfs("ghost", &env.rootfs),
            "user: unable to find user ghost",
        ),
        (
            env.spec(&["true"]).oom_score_adj(-1001),
            "oom_score_adj -1001 is out of range",
        ),
    ];
    for (spec, needle) in cases {
        let err = spec.build().expect_err(needle);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
    assert!(env.client.list_containers().await.unwrap().is_empty());
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

/// Not a check: the size of the stored spec with the profile, and what the filter costs a
/// `run --rm` (create, start, wait, delete) of `true`. `cargo test --test security -- --ignored
/// --nocapture`.
#[tokio::test]
#[ignore]
async fn measure_seccomp_cost() {
    let env = TestEnv::new().await;
    let ns = libcontainerd::Id::new("default").unwrap();
    for (label, seccomp) in [
        ("default", Seccomp::Default),
        ("unconfined", Seccomp::Unconfined),
    ] {
        let spec = env
            .spec(&["true"])
            .seccomp(seccomp.clone())
            .build()
            .unwrap();
        let bound = for_container(&spec, &ns, &TestEnv::id("c1")).unwrap();
        let json = serde_json::to_vec(&bound).unwrap();
        println!("spec json with seccomp {label}: {} bytes", json.len());
    }
    for round in 0..3 {
        for (label, seccomp) in [
            ("default", Seccomp::Default),
            ("unconfined", Seccomp::Unconfined),
        ] {
            let start = Instant::now();
            for i in 0..20 {
                let ran = run(
                    &env,
                    &format!("m{round}{label}{i}"),
                    env.spec(&["true"]).seccomp(seccomp.clone()),
                )
                .await;
                assert_eq!(ran.code, 0);
            }
            let spent = start.elapsed();
            println!(
                "round {round}: 20 lifecycles, seccomp {label}: {spent:?} ({:?} each)",
                spent / 20
            );
        }
    }
    env.cleanup().await;
}
