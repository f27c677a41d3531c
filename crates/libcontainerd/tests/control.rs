//! Pause/resume, stats, process listing and resource updates against a real containerd and runc,
//! checked against what the kernel says (`/proc`, the container's cgroup files).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::{eventually, TestEnv};
use libcontainerd::oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use libcontainerd::stats::Raw;
use libcontainerd::{Container, DirectIo, ErrorKind, Runtime, StdioConfig, Task, TaskStatus};

const MIB: u64 = 1 << 20;

/// Create and start container `id` running `args`; the returned stdio keeps its output pipes open.
async fn run(env: &TestEnv, id: &str, args: &[&str]) -> (Container, Task, DirectIo) {
    let spec = env.spec(args).build().expect("build the spec");
    run_spec(env, id, spec).await
}

async fn run_spec(
    env: &TestEnv,
    id: &str,
    spec: libcontainerd::oci_spec::runtime::Spec,
) -> (Container, Task, DirectIo) {
    let container = env
        .client
        .new_container(
            &TestEnv::id(id),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("start the container");
    let (task, io) = container
        .create_task(None, &StdioConfig::default())
        .await
        .expect("start the container");
    task.start().await.expect("start the container");
    (container, task, io)
}

async fn remove(container: &Container, task: &Task) {
    task.force_delete().await.expect("remove the container");
    container.delete().await.expect("remove the container");
}

/// The container's directory in a cgroup v1 controller (the spec's cgroups path is /<ns>/<id>).
fn cgroup_file(env: &TestEnv, controller: &str, id: &str, file: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(&env.namespace)
        .join(id)
        .join(file)
}

fn read_cgroup(env: &TestEnv, controller: &str, id: &str, file: &str) -> String {
    let path = cgroup_file(env, controller, id, file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// This machine's hierarchy: the tests read v1 files, and say so when they cannot.
fn cgroup_v1() -> bool {
    Path::new("/sys/fs/cgroup/memory").is_dir()
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    let after_comm = &stat[stat.rfind(')').expect("the command in parentheses") + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of the stat line; `after_comm` starts at field 3.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[tokio::test]
async fn pause_freezes_a_busy_loop_and_resume_runs_it_again() {
    let env = TestEnv::new().await;
    let (c, task, _io) = run(&env, "busy", &["sh", "-c", "while :; do :; done"]).await;
    let pid = task.pid();
    let t0 = cpu_ticks(pid);
    eventually(Duration::from_secs(5), || {
        (cpu_ticks(pid) > t0).then_some(())
    })
    .await
    .expect("the loop uses CPU");

    task.pause().await.unwrap();
    assert_eq!(task.status().await.unwrap(), TaskStatus::Paused);
    if cgroup_v1() {
        assert_eq!(
            read_cgroup(&env, "freezer", "busy", "freezer.state"),
            "FROZEN"
        );
    }
    let frozen = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cpu_ticks(pid), frozen, "a paused process must not run");

    let err = task.pause().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("already paused"), "{err}");

    task.resume().await.unwrap();
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
    eventually(Duration::from_secs(5), || {
        (cpu_ticks(pid) > frozen).then_some(())
    })
    .await
    .expect("a resumed process runs again");

    let err = task.resume().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("not paused"), "{err}");

    task.kill(libcontainerd::Signal::KILL).await.unwrap();
    task.wait().await.unwrap();
    let err = task.pause().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("stopped"), "{err}");
    let err = task.resume().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");

    remove(&c, &task).await;
    let err = task.pause().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    env.cleanup().await;
}

#[tokio::test]
async fn stats_show_fifty_mebibytes_written_to_a_tmpfs() {
    let env = TestEnv::new().await;
    // /dev/shm is a tmpfs: its pages are charged to the container's memory cgroup.
    let script = "head -c 52428800 /dev/zero | tr '\\0' a > /dev/shm/x; exec sleep 600";
    let (c, task, _io) = run(&env, "mem", &["sh", "-c", script]).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let stats = task.stats().await.unwrap();
        // Wait for the whole file: usage also counts the shell's own pages, so it can pass 50 MiB
        // while the last of the file is still being written.
        let written = stats.memory.usage >= 50 * MIB && stats.memory.cache >= 50 * MIB;
        if written || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let m = &stats.memory;
    assert!(m.usage >= 50 * MIB, "usage {} < 50 MiB: {m:?}", m.usage);
    assert!(m.working_set() >= 50 * MIB, "{m:?}");
    assert!(m.usage < 80 * MIB, "{m:?}");
    assert!(m.cache >= 50 * MIB, "tmpfs pages are page cache: {m:?}");
    assert_eq!(m.limit, None, "no limit was set: {m:?}");
    assert!(stats.pids.current >= 1);
    assert!(stats.cpu.total_ns > 0);
    let age = SystemTime::now()
        .duration_since(stats.read)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(10), "read {:?}", stats.read);

    if cgroup_v1() {
        let Raw::V1(raw) = &stats.raw else {
            panic!("a cgroup v1 host must send v1 metrics: {:?}", stats.raw)
        };
        assert!(raw.memory.is_some());
        assert_eq!(
            stats.cpu.per_cpu_ns.len(),
            num_cpus_possible(),
            "{:?}",
            stats.cpu
        );
        assert!(stats.cpu.throttling.is_some());
        let kernel: u64 = read_cgroup(&env, "memory", "mem", "memory.usage_in_bytes")
            .parse()
            .unwrap();
        assert!(kernel >= 50 * MIB, "{kernel}");
        eprintln!(
            "cgroup v1 metrics: oom_control {} (oom_kills {:?})",
            if raw.memory_oom_control.is_some() {
                "sent"
            } else {
                "not sent"
            },
            m.oom_kills
        );
    } else {
        assert!(matches!(stats.raw, Raw::V2(_)));
    }
    remove(&c, &task).await;
    env.cleanup().await;
}

/// The CPUs cpuacct reports on: every possible CPU.
fn num_cpus_possible() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .expect("read the possible CPUs");
    text.trim()
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => {
                b.parse::<usize>().expect("read the possible CPUs")
                    - a.parse::<usize>().expect("read the possible CPUs")
                    + 1
            }
            None => 1,
        })
        .sum()
}

#[tokio::test]
async fn stats_of_stopped_and_deleted_tasks_are_clear_errors() {
    let env = TestEnv::new().await;
    let (c, task, _io) = run(&env, "done", &["true"]).await;
    task.wait().await.unwrap();
    let err = task.stats().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("stopped"), "{err}");

    task.delete().await.unwrap();
    let err = task.stats().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no task"), "{err}");
    c.delete().await.unwrap();
    let err = task.stats().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    env.cleanup().await;
}

#[tokio::test]
async fn update_resources_reaches_the_cgroup() {
    if !cgroup_v1() {
        eprintln!("skipped: this test reads cgroup v1 files and the host has none");
        return;
    }
    let env = TestEnv::new().await;
    let (c, task, _io) = run(&env, "upd", &["sleep", "600"]).await;

    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(100 << 20)).set_swap(Some(200 << 20));
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(Some(512))
        .set_quota(Some(50_000))
        .set_period(Some(100_000))
        .set_cpus(Some("0".into()));
    let mut pids = LinuxPids::default();
    pids.set_limit(50);
    let mut resources = LinuxResources::default();
    resources
        .set_memory(Some(memory))
        .set_cpu(Some(cpu))
        .set_pids(Some(pids));
    task.update_resources(&resources).await.unwrap();

    let file = |controller, name| read_cgroup(&env, controller, "upd", name);
    assert_eq!(file("memory", "memory.limit_in_bytes"), "104857600");
    assert_eq!(file("memory", "memory.memsw.limit_in_bytes"), "209715200");
    assert_eq!(file("cpu", "cpu.shares"), "512");
    assert_eq!(file("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(file("cpuset", "cpuset.cpus"), "0");
    assert_eq!(file("pids", "pids.max"), "50");

    let stats = task.stats().await.unwrap();
    assert_eq!(stats.memory.limit, Some(100 * MIB));
    assert_eq!(stats.memory.memory_swap_limit, Some(200 * MIB));
    assert_eq!(stats.pids.limit, Some(50));

    // Only what is set changes: raising memory alone leaves the pids limit.
    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(150 << 20));
    let mut resources = LinuxResources::default();
    resources.set_memory(Some(memory));
    task.update_resources(&resources).await.unwrap();
    assert_eq!(file("memory", "memory.limit_in_bytes"), "157286400");
    assert_eq!(file("pids", "pids.max"), "50");

    // Above the 200 MiB memory+swap limit the kernel refuses memory alone.
    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(300 << 20));
    let mut resources = LinuxResources::default();
    resources.set_memory(Some(memory));
    let err = task.update_resources(&resources).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("memory+swap"), "{err}");
    assert!(!err.to_string().contains('\n'), "{err:?}");
    assert_eq!(file("memory", "memory.limit_in_bytes"), "157286400");

    remove(&c, &task).await;
    env.cleanup().await;
}

/// Limits set on the container's record outlive its task: the next task starts with them.
#[tokio::test]
async fn resources_set_on_the_container_reach_its_next_task() {
    let env = TestEnv::new().await;
    let (mut c, task, _io) = run(&env, "keep", &["true"]).await;
    task.wait().await.unwrap();
    task.delete().await.unwrap();
    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(64 << 20));
    let mut pids = LinuxPids::default();
    pids.set_limit(30);
    let mut resources = LinuxResources::default();
    resources.set_memory(Some(memory)).set_pids(Some(pids));
    c.set_resources(&resources).await.unwrap();
    let limit = |c: &Container| {
        let linux = c.spec().linux().clone().unwrap();
        let resources = linux.resources().clone().unwrap();
        (
            resources.memory().unwrap().limit(),
            resources.pids().unwrap().limit(),
        )
    };
    assert_eq!(limit(&c), (Some(64 << 20), 30));
    // Stored: a fresh load sees it, and the next task runs with it.
    let loaded = env.client.load_container(c.id()).await.unwrap();
    assert_eq!(limit(&loaded), (Some(64 << 20), 30));
    let (task, _io) = loaded
        .create_task(None, &StdioConfig::default())
        .await
        .unwrap();
    if cgroup_v1() {
        let file = |controller, name| read_cgroup(&env, controller, "keep", name);
        assert_eq!(file("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(file("pids", "pids.max"), "30");
    }
    remove(&loaded, &task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_memory_limit_below_usage_or_malformed_is_refused() {
    let env = TestEnv::new().await;
    let script =
        "head -c 52428800 /dev/zero | tr '\\0' a > /dev/shm/x; : > /filled; exec sleep 600";
    let (c, task, _io) = run(&env, "low", &["sh", "-c", script]).await;
    let filled = env.rootfs.join("filled");
    eventually(Duration::from_secs(20), || filled.exists().then_some(()))
        .await
        .expect("the container fills /dev/shm");
    let before = cgroup_v1().then(|| read_cgroup(&env, "memory", "low", "memory.limit_in_bytes"));

    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(20 << 20));
    let mut resources = LinuxResources::default();
    resources.set_memory(Some(memory));
    let err = task.update_resources(&resources).await.unwrap_err();
    assert!(!err.to_string().contains('\n'), "one line: {err:?}");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("memory limit"), "{err}");
    assert!(err.to_string().contains("container low"), "{err}");
    if let Some(before) = before {
        assert_eq!(
            read_cgroup(&env, "memory", "low", "memory.limit_in_bytes"),
            before,
            "a refused limit must not stick"
        );
    }
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);

    for (limit, swap) in [(Some(1024), None), (Some(64 << 20), Some(32 << 20))] {
        let mut memory = LinuxMemory::default();
        memory.set_limit(limit).set_swap(swap);
        let mut resources = LinuxResources::default();
        resources.set_memory(Some(memory));
        let err = task.update_resources(&resources).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }

    task.kill(libcontainerd::Signal::KILL).await.unwrap();
    task.wait().await.unwrap();
    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(64 << 20));
    let mut resources = LinuxResources::default();
    resources.set_memory(Some(memory));
    let err = task.update_resources(&resources).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("not running"), "{err}");
    remove(&c, &task).await;
    env.cleanup().await;
}

/// Waits without forking (`read -t` on a FIFO it holds open), so it works at the pids limit.
const WAIT_FOR: &str = "mkfifo /tmp/f; exec 3<>/tmp/f; \
    waitfor() { while [ ! -e \"$1\" ]; do read -t 0.1 x <&3; done; }; ";

#[tokio::test]
async fn a_pids_limit_of_ten_stops_the_eleventh_process_until_raised() {
    let env = TestEnv::new().await;
    // init + 8 sleeps + one subshell = 10 processes. On /try the subshell forks an eleventh (and
    // dies when that fails); on /more init starts six more.
    let script = format!(
        "{WAIT_FOR}for i in 1 2 3 4 5 6 7 8; do sleep 600 & done; \
         ( waitfor /try; sleep 600 & : > /forked ) & \
         : > /ready; waitfor /more; \
         for i in 1 2 3 4 5 6; do sleep 600 & done; : > /done; wait"
    );
    let spec = env
        .spec(&["sh", "-c", &script])
        .pids_limit(10)
        .build()
        .unwrap();
    let (c, task, _io) = run_spec(&env, "pids", spec).await;
    let root = env.rootfs.clone();
    eventually(Duration::from_secs(20), || {
        root.join("ready").exists().then_some(())
    })
    .await
    .expect("the container starts its processes");
    let listed = task.pids().await.unwrap();
    assert_eq!(listed.len(), 10, "{listed:?}");
    if cgroup_v1() {
        assert_eq!(read_cgroup(&env, "pids", "pids", "pids.max"), "10");
    }

    std::fs::write(root.join("try"), "").unwrap();
    let subshell_gone = eventually(Duration::from_secs(10), || {
        let count = std::fs::read_to_string(cgroup_file(&env, "pids", "pids", "pids.current"))
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()?;
        (count == 9).then_some(())
    })
    .await;
    assert!(subshell_gone.is_some(), "the failed fork ends the subshell");
    assert!(
        !root.join("forked").exists(),
        "an eleventh process was forked"
    );
    if cgroup_v1() {
        let events = read_cgroup(&env, "pids", "pids", "pids.events");
        assert_ne!(events, "max 0", "the kernel counted no refused fork");
    }

    let mut pids = LinuxPids::default();
    pids.set_limit(20);
    let mut resources = LinuxResources::default();
    resources.set_pids(Some(pids));
    task.update_resources(&resources).await.unwrap();
    if cgroup_v1() {
        assert_eq!(read_cgroup(&env, "pids", "pids", "pids.max"), "20");
    }
    std::fs::write(root.join("more"), "").unwrap();
    eventually(Duration::from_secs(10), || {
        root.join("done").exists().then_some(())
    })
    .await
    .expect("with the raised limit, six more processes start");
    let listed = task.pids().await.unwrap();
    assert_eq!(listed.len(), 15, "{listed:?}");
    assert_eq!(task.stats().await.unwrap().pids.limit, Some(20));
    remove(&c, &task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn pids_and_summary_list_the_processes_a_container_started() {
    let env = TestEnv::new().await;
    let (c, task, _io) = run(
        &env,
        "top",
        &["sh", "-c", "sleep 601 & sleep 602 & exec sleep 603"],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let processes = loop {
        let processes = task.summary().await.unwrap();
        let sleeping = processes
            .iter()
            .filter(|p| p.command.starts_with("sleep 60"))
            .count();
        if sleeping == 3 || Instant::now() > deadline {
            break processes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut commands: Vec<&str> = processes.iter().map(|p| p.command.as_str()).collect();
    commands.sort();
    assert_eq!(
        commands,
        ["sleep 601", "sleep 602", "sleep 603"],
        "{processes:?}"
    );
    let init = processes.iter().find(|p| p.pid == task.pid()).unwrap();
    assert_eq!(init.command, "sleep 603");
    for p in &processes {
        assert_eq!(p.uid, 0);
        assert_eq!(p.exec_id, None);
        assert!(p.started <= SystemTime::now());
        if p.pid != task.pid() {
            assert_eq!(p.ppid, task.pid(), "{p:?}");
        }
    }
    let pids: Vec<u32> = task.pids().await.unwrap().iter().map(|p| p.pid).collect();
    assert_eq!(pids.len(), 3);
    assert!(pids.contains(&task.pid()));

    remove(&c, &task).await;
    let err = task.pids().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    env.cleanup().await;
}
