//! Fault injection against a real containerd: containerd SIGKILLed in the middle of each call, a
//! shim SIGKILLed under a running task, runc wrappers that fail, kill or stall, and futures dropped
//! at random points.
//!
//! What must hold:
//! - A call cut off by containerd's death fails with `Unavailable` within a bound (never a made-up
//!   exit, never a hang), and once containerd is back the same `Client` works as before.
//! - Nothing is left half-made: no container record without its bundle dir, no bundle dir holding
//!   FIFOs without a record; once the caller has retried (or force-deleted) what failed, every FIFO
//!   belongs to a live task or exec.
//! - A dropped future is a failed call (create, start, exec) or a completed one (delete): the library
//!   undoes or finishes it by itself, in the background, within a few seconds. "The client cleans
//!   up" therefore means nothing more than waiting for that; the tests poll for it and then check
//!   that no task, exec, FIFO, container, shim or cgroup is left.
//!
//! Faults are injected by this test process only into its own containerd (SIGSTOP/SIGKILL by pid),
//! into shims of its own namespaces, and through a `runc` wrapper script written into the test's
//! temp dir and selected with `Runtime::runc_binary`.

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestEnv;
use libcontainerd::supervisor::DaemonStatus;
use libcontainerd::{
    exec_process, Backend, BackendError, Container, DirectIo, ErrorKind, EventInfo, EventMonitor,
    EventType, Id, Output, Runtime, StdioConfig, Task, TaskStatus, BUNDLE_LABEL,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

/// The longest a call may take to fail once containerd is gone, and the longest the library's
/// background cleanup of a dropped call may take.
const BOUND: Duration = Duration::from_secs(15);
/// How long the wrapper stalls a runc subcommand, so that a call is surely in flight when
/// containerd is killed.
const STALL_SECS: u32 = 2;
/// When containerd is killed after the stalled call was issued.
const KILL_AFTER: Duration = Duration::from_millis(600);

fn no_labels() -> HashMap<String, String> {
    HashMap::new()
}

fn null_io() -> StdioConfig {
    StdioConfig {
        output: Output::Null,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The faulty runc

const FAULTY_RUNC: &str = r#"#!/bin/sh
# A runc that misbehaves on request: files next to it switch faults on, per subcommand.
#   delay-<cmd>   sleep that many seconds before running <cmd>
#   fail-<cmd>    fail <cmd>, with the file's text as runc's error
#   kill-init     after a successful create, SIGKILL the container's init process
# Every call appends its subcommand to ./calls.
here=$(dirname "$0")
cmd= log= pidfile= prev=
for a in "$@"; do
  case "$prev" in
    --log) log=$a ;;
    --pid-file) pidfile=$a ;;
  esac
  if [ -n "$prev" ]; then prev=; continue; fi
  case "$a" in
    --root|--log|--log-format|--criu|--pid-file|--bundle|--process|--console-socket) prev=$a ;;
    -*) ;;
    *) [ -z "$cmd" ] && cmd=$a ;;
  esac
done
echo "$cmd" >> "$here/calls"
if [ -f "$here/delay-$cmd" ]; then sleep "$(cat "$here/delay-$cmd")"; fi
if [ -f "$here/fail-$cmd" ]; then
  msg=$(cat "$here/fail-$cmd")
  [ -n "$log" ] && printf '{"level":"error","msg":"%s","time":"2024-01-01T00:00:00Z"}\n' "$msg" >> "$log"
  echo "$msg" >&2
  exit 1
fi
if [ "$cmd" = create ] && [ -f "$here/kill-init" ]; then
  REAL_RUNC "$@" || exit $?
  kill -9 "$(cat "$pidfile")"
  exit 0
fi
exec REAL_RUNC "$@"
"#;

/// A `runc` wrapper in the test's temp dir whose faults are switched by files next to it.
struct FaultyRunc {
    dir: PathBuf,
}

impl FaultyRunc {
    fn new(env: &TestEnv) -> FaultyRunc {
        let dir = env.dir().join("faulty-runc");
        std::fs::create_dir_all(&dir).expect("wrapper dir");
        let real = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("runc is installed");
        let script = dir.join("runc");
        std::fs::write(&script, FAULTY_RUNC.replace("REAL_RUNC", real)).expect("write wrapper");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("chmod wrapper");
        FaultyRunc { dir }
    }

    fn runtime(&self) -> Runtime {
        Runtime::runc_binary(self.dir.join("runc").to_string_lossy())
    }

    fn delay(&self, cmd: &str, secs: u32) {
        std::fs::write(self.dir.join(format!("delay-{cmd}")), secs.to_string()).expect("switch");
    }

    fn fail(&self, cmd: &str, message: &str) {
        std::fs::write(self.dir.join(format!("fail-{cmd}")), message).expect("switch");
    }

    fn kill_init_after_create(&self) {
        std::fs::write(self.dir.join("kill-init"), "").expect("switch");
    }

    /// Switch every fault off.
    fn heal(&self) {
        for entry in std::fs::read_dir(&self.dir).expect("wrapper dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("delay-") || name.starts_with("fail-") || name == "kill-init" {
                std::fs::remove_file(entry.path()).expect("switch off");
            }
        }
    }

    /// The runc subcommands run so far.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// containerd faults

fn containerd_pid(env: &TestEnv) -> u32 {
    match env.daemon.status() {
        DaemonStatus::Running { pid } => pid,
        other => panic!("containerd is not running: {other:?}"),
    }
}

/// SIGKILL the test's own containerd (by pid, through the supervisor) and wait until it is gone.
async fn kill_containerd(env: &TestEnv) {
    let daemon = env.daemon.clone();
    tokio::task::spawn_blocking(move || daemon.kill())
        .await
        .expect("join")
        .expect("kill containerd");
}

/// SIGSTOP the test's own containerd and wait until every thread of it has stopped, so that a
/// request sent from now on waits unanswered in its socket.
async fn stop_containerd(env: &TestEnv) {
    let pid = containerd_pid(env);
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).expect("SIGSTOP containerd");
    let all_stopped = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("threads of containerd")
            .flatten()
            .all(|t| {
                std::fs::read_to_string(t.path().join("stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(')')
                            .map(|(_, rest)| rest.trim_start().starts_with('T'))
                    })
                    .unwrap_or(true)
            })
    };
    let deadline = Instant::now() + BOUND;
    while !all_stopped() {
        assert!(Instant::now() < deadline, "containerd did not stop");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn restart_containerd(env: &TestEnv) {
    env.daemon
        .ensure_running()
        .await
        .expect("restart containerd");
    // The same client, no reconnect by hand.
    env.client
        .version()
        .await
        .expect("the client works again once containerd is back");
}

/// Run `call` in a task, SIGKILL containerd `after` later while the call is in flight, and return
/// what the call returned. Fails the test if the call had finished before the kill (the fault
/// missed) or takes longer than [`BOUND`] after it.
async fn kill_during<T, F>(
    env: &TestEnv,
    what: &str,
    after: Duration,
    call: F,
) -> libcontainerd::Result<T>
where
    T: Send + 'static,
    F: Future<Output = libcontainerd::Result<T>> + Send + 'static,
{
    let handle = tokio::spawn(call);
    tokio::time::sleep(after).await;
    assert!(
        !handle.is_finished(),
        "{what} finished before containerd was killed: the fault missed"
    );
    kill_containerd(env).await;
    let killed = Instant::now();
    let result = tokio::time::timeout(BOUND, handle)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {BOUND:?} after containerd was killed"))
        .expect("join");
    eprintln!(
        "{what}: returned {:?} after the kill: {}",
        killed.elapsed(),
        match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{} error: {e}", e.kind()),
        }
    );
    result
}

/// The call must have failed with Unavailable: anything else would be an answer containerd never
/// gave (a fake exit, a fake success).
fn expect_unavailable<T>(what: &str, result: libcontainerd::Result<T>) -> libcontainerd::Error {
    match result {
        Ok(_) => panic!("{what} succeeded although containerd died during it"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{what}: {e}");
            e
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What may be left

fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// The bundle dirs under the client's state dir, and the FIFOs each holds.
fn bundle_dirs(env: &TestEnv) -> Vec<(String, Vec<PathBuf>)> {
    let Ok(entries) = std::fs::read_dir(env.client.state_dir()) else {
        return vec![];
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let fifos = std::fs::read_dir(e.path())
                .map(|d| {
                    d.flatten()
                        .map(|f| f.path())
                        .filter(|p| is_fifo(p))
                        .collect()
                })
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), fifos)
        })
        .collect()
}

/// Nothing half-made: every container record has its bundle dir, and every bundle dir that holds
/// FIFOs has a record.
async fn assert_nothing_half_made(env: &TestEnv) {
    let records = env.client.list_containers().await.expect("list containers");
    let ids: HashSet<String> = records.iter().map(|c| c.id.to_string()).collect();
    for record in &records {
        let bundle = record
            .labels
            .get(BUNDLE_LABEL)
            .map(PathBuf::from)
            .expect("bundle label");
        assert!(
            bundle.is_dir(),
            "container {} has a record but no bundle dir {}",
            record.id,
            bundle.display()
        );
    }
    for (name, fifos) in bundle_dirs(env) {
        assert!(
            fifos.is_empty() || ids.contains(&name),
            "bundle dir {name} holds FIFOs {fifos:?} but containerd has no container {name}"
        );
    }
}

/// Every FIFO belongs to a task or exec containerd has.
async fn assert_fifos_belong_to_live_processes(env: &TestEnv) {
    for (name, fifos) in bundle_dirs(env) {
        if fifos.is_empty() {
            continue;
        }
        let container = env
            .client
            .load_container(&TestEnv::id(&name))
            .await
            .unwrap_or_else(|e| panic!("FIFOs {fifos:?} of a missing container: {e}"));
        for fifo in fifos {
            let file = fifo
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let process = file
                .rsplit_once('-')
                .map(|(p, _)| p.to_string())
                .expect("<process>-<stream>");
            let task = container
                .task()
                .await
                .unwrap_or_else(|e| panic!("FIFO {} without a task: {e}", fifo.display()));
            if process != name {
                task.load_process(&TestEnv::id(&process))
                    .await
                    .unwrap_or_else(|e| panic!("FIFO {} without its exec: {e}", fifo.display()));
            }
        }
    }
}

/// Long-running shims of `namespace`: children of PID 1 named containerd-shim-runc-v2 with
/// `-namespace <namespace>` in their command line.
fn shims(namespace: &str) -> Vec<u32> {
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_shim = args
            .first()
            .is_some_and(|a| a.ends_with("containerd-shim-runc-v2"));
        let ours = args
            .windows(2)
            .any(|w| w[0] == "-namespace" && w[1] == namespace);
        if is_shim && ours && parent_pid(pid) == Some(1) {
            found.push(pid);
        }
    }
    found
}

/// Field 4 of /proc/<pid>/stat.
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Container cgroups left under /<namespace> in any hierarchy.
fn namespace_cgroups(namespace: &str) -> Vec<PathBuf> {
    let mut found = vec![];
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for hierarchy in hierarchies.flatten() {
            if let Ok(children) = std::fs::read_dir(hierarchy.path().join(namespace)) {
                found.extend(children.flatten().map(|c| c.path()).filter(|p| p.is_dir()));
            }
        }
    }
    found
}

/// Poll `check` until it returns None (all good) or `limit` passes; then fail with its last word.
async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            None => return,
            Some(problem) if Instant::now() > deadline => {
                panic!("{what}: still {problem} after {limit:?}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The namespace is empty: no container, no task, no bundle dir or FIFO, no shim, no cgroup.
async fn assert_clean(env: &TestEnv) {
    let containers = env.client.list_containers().await.expect("list containers");
    assert!(containers.is_empty(), "containers left: {containers:?}");
    let tasks = env.client.list_tasks().await.expect("list tasks");
    assert!(tasks.is_empty(), "tasks left: {tasks:?}");
    assert!(
        env.leftovers().is_empty(),
        "files left: {:?}",
        env.leftovers()
    );
    let namespace = env.namespace.clone();
    eventually("shims of the namespace", BOUND, || {
        let left = shims(&namespace);
        (!left.is_empty()).then(|| format!("running: {left:?}"))
    })
    .await;
    let cgroups = namespace_cgroups(&env.namespace);
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}

// ---------------------------------------------------------------------------------------------
// Small lifecycle helpers

async fn new_container(env: &TestEnv, id: &str, args: &[&str], runtime: &Runtime) -> Container {
    let spec = env.spec(args).build().expect("spec");
    env.client
        .new_container(&TestEnv::id(id), &spec, runtime, &no_labels())
        .await
        .expect("new container")
}

/// Read both output streams to the end, concurrently.
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

/// Start the container's task with piped output; returns the task and a handle on its output.
async fn start_piped(
    container: &Container,
) -> libcontainerd::Result<(Task, tokio::task::JoinHandle<(String, String)>)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = container
        .start(None, &StdioConfig::default(), |io| {
            let _ = tx.send(tokio::spawn(collect(io)));
            Ok(())
        })
        .await?;
    Ok((task, rx.await.expect("attach was called")))
}

/// After a fault: the id works again. Runs `sh -c 'echo <word>; exit 3'` as the container's task
/// (removing whatever task is left first), checks output and exit, and removes task and container.
async fn full_cycle_with_same_id(env: &TestEnv, container: &Container, word: &str) {
    if let Ok(task) = container.task().await {
        task.force_delete()
            .await
            .expect("remove the task left by the fault");
    }
    // The container's spec runs whatever it was made with; use a fresh container with the same id.
    container.delete().await.expect("delete the container");
    let again = new_container(
        env,
        container.id().as_str(),
        &["sh", "-c", &format!("echo {word}; exit 3")],
        &Runtime::default(),
    )
    .await;
    let (task, output) = start_piped(&again).await.expect("start after the fault");
    let status = task.wait().await.expect("wait");
    assert_eq!(status.code, 3);
    let (out, _) = output.await.expect("output");
    assert_eq!(out, format!("{word}\n"));
    assert_eq!(task.delete().await.expect("delete task").code, 3);
    again.delete().await.expect("delete container");
}

// ---------------------------------------------------------------------------------------------
// containerd SIGKILLed during a call

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_killed_during_container_create() {
    let env = TestEnv::new().await;
    let spec = env.spec(&["true"]).build().expect("spec");

    // Deterministically in flight: containerd is stopped when the request is sent, killed while the
    // request waits in its socket.
    stop_containerd(&env).await;
    let (client, request_spec) = (env.client.clone(), spec.clone());
    let result = kill_during(
        &env,
        "create container (containerd stopped)",
        Duration::from_millis(300),
        async move {
            client
                .new_container(
                    &TestEnv::id("made"),
                    &request_spec,
                    &Runtime::default(),
                    &no_labels(),
                )
                .await
        },
    )
    .await;
    let error = expect_unavailable("create container", result);
    assert!(
        error.to_string().contains("create container made"),
        "{error}"
    );
    restart_containerd(&env).await;
    assert_nothing_half_made(&env).await;

    // Racing the kill against a running containerd: each attempt either completed or failed with
    // Unavailable, and either way nothing is half-made.
    let mut outcomes = (0, 0);
    for attempt in 0..6u64 {
        let id = format!("race{attempt}");
        let spec = env.spec(&["true"]).build().expect("spec");
        let client = env.client.clone();
        let call = tokio::spawn(async move {
            client
                .new_container(&TestEnv::id(&id), &spec, &Runtime::default(), &no_labels())
                .await
        });
        tokio::time::sleep(Duration::from_micros(500 * attempt)).await;
        kill_containerd(&env).await;
        match tokio::time::timeout(BOUND, call)
            .await
            .expect("bounded")
            .expect("join")
        {
            Ok(_) => outcomes.0 += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                outcomes.1 += 1;
            }
        }
        restart_containerd(&env).await;
        assert_nothing_half_made(&env).await;
    }
    eprintln!(
        "create raced with SIGKILL: {} completed, {} unavailable",
        outcomes.0, outcomes.1
    );

    // The ids work again: a retry either finds the container (its create had taken effect) or makes it.
    for id in ["made", "race0", "race1", "race2", "race3", "race4", "race5"] {
        let container = match env
            .client
            .new_container(
                &TestEnv::id(id),
                &env.spec(&["true"]).build().expect("spec"),
                &Runtime::default(),
                &no_labels(),
            )
            .await
        {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => env
                .client
                .load_container(&TestEnv::id(id))
                .await
                .expect("load"),
            Err(e) => panic!("retry create {id}: {e}"),
        };
        full_cycle_with_same_id(&env, &container, id).await;
    }
    assert_clean(&env).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_killed_during_task_create() {
    let env = TestEnv::new().await;
    let runc = FaultyRunc::new(&env);
    let container = new_container(&env, "tc", &["sleep", "600"], &runc.runtime()).await;
    runc.delay("create", STALL_SECS);
    let c = container.clone();
    let result = kill_during(&env, "create task", KILL_AFTER, async move {
        c.start(None, &null_io(), |_| Ok(())).await
    })
    .await;
    expect_unavailable("create task", result);
    restart_containerd(&env).await;
    assert_nothing_half_made(&env).await;
    // The shim gave up the create when containerd died, but the restarted containerd holds it as
    // the container's task: Get finds none, Create would say it exists. Starting again must work.
    tokio::time::sleep(Duration::from_secs(u64::from(STALL_SECS))).await;
    let state = container.task().await.map(|t| t.pid());
    eprintln!(
        "after the restart: task {state:?}, shims {:?}",
        shims(&env.namespace)
    );
    runc.heal();
    let task = container
        .start(None, &null_io(), |_| Ok(()))
        .await
        .expect("start after the restart");
    assert_eq!(task.status().await.expect("status"), TaskStatus::Running);
    assert_eq!(shims(&env.namespace).len(), 1, "one shim for the one task");
    task.force_delete().await.expect("force delete");
    full_cycle_with_same_id(&env, &container, "created-again").await;
    assert_clean(&env).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_killed_during_start() {
    let env = TestEnv::new().await;
    let runc = FaultyRunc::new(&env);
    let container = new_container(&env, "st", &["sleep", "600"], &runc.runtime()).await;
    runc.delay("start", STALL_SECS);
    let c = container.clone();
    let result = kill_during(&env, "start", KILL_AFTER, async move {
        c.start(None, &null_io(), |_| Ok(())).await
    })
    .await;
    expect_unavailable("start", result);
    restart_containerd(&env).await;
    assert_nothing_half_made(&env).await;
    tokio::time::sleep(Duration::from_secs(u64::from(STALL_SECS))).await;
    match container.task().await {
        Ok(task) => eprintln!("after the restart the task is {:?}", task.status().await),
        Err(e) => eprintln!("after the restart: {e}"),
    }
    assert_fifos_belong_to_live_processes(&env).await;
    runc.heal();
    full_cycle_with_same_id(&env, &container, "started-again").await;
    assert_clean(&env).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_killed_during_exec() {
    let env = TestEnv::new().await;
    let runc = FaultyRunc::new(&env);
    let container = new_container(&env, "ex", &["sleep", "600"], &runc.runtime()).await;
    let task = container
        .start(None, &null_io(), |_| Ok(()))
        .await
        .expect("start");
    runc.delay("exec", STALL_SECS);
    let exec_id = TestEnv::id("e1");
    let process = exec_process(container.spec(), ["sh", "-c", "echo hi"])
        .build()
        .expect("exec spec");
    let (t, id, p) = (task.clone(), exec_id.clone(), process.clone());
    let result = kill_during(&env, "exec", KILL_AFTER, async move {
        t.exec(&id, p, &StdioConfig::default(), |_| Ok(())).await
    })
    .await;
    expect_unavailable("exec", result);
    restart_containerd(&env).await;
    assert_nothing_half_made(&env).await;
    tokio::time::sleep(Duration::from_secs(u64::from(STALL_SECS))).await;
    assert_eq!(task.status().await.expect("status"), TaskStatus::Running);
    assert_fifos_belong_to_live_processes(&env).await;
    runc.heal();

    // The same exec id works again: an exec left registered by the lost call is removed first.
    if let Ok(left) = task.load_process(&exec_id).await {
        eprintln!("the lost exec is still there: {:?}", left.status().await);
        let _ = left.force_delete().await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let exec = task
        .exec(&exec_id, process, &StdioConfig::default(), |io| {
            let _ = tx.send(tokio::spawn(collect(io)));
            Ok(())
        })
        .await
        .expect("exec after the restart");
    assert_eq!(exec.wait().await.expect("wait exec").code, 0);
    let (out, _) = rx.await.expect("attached").await.expect("output");
    assert_eq!(out, "hi\n");
    exec.delete().await.expect("delete exec");
    assert_fifos_belong_to_live_processes(&env).await;
    full_cycle_with_same_id(&env, &container, "exec-again").await;
    assert_clean(&env).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_killed_during_wait() {
    let env = TestEnv::new().await;
    let container = new_container(&env, "wt", &["sleep", "600"], &Runtime::default()).await;
    let task = container
        .start(None, &null_io(), |_| Ok(()))
        .await
        .expect("start");
    let t = task.clone();
    let result = kill_during(&env, "wait", Duration::from_millis(300), async move {
        t.wait().await
    })
    .await;
    expect_unavailable("wait", result);
    restart_containerd(&env).await;
    assert_nothing_half_made(&env).await;
    // The task never stopped: containerd still runs it, and a new wait sees its real exit.
    assert_eq!(task.status().await.expect("status"), TaskStatus::Running);
    let waiting = tokio::spawn({
        let task = task.clone();
        async move { task.wait().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.kill(libcontainerd::Signal::KILL).await.expect("kill");
    let status = tokio::time::timeout(BOUND, waiting)
        .await
        .expect("bounded")
        .expect("join")
        .expect("wait");
    assert_eq!(status.code, 137);
    full_cycle_with_same_id(&env, &container, "waited-again").await;
    assert_clean(&env).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_killed_during_delete() {
    let env = TestEnv::new().await;
    let runc = FaultyRunc::new(&env);
    let container = new_container(&env, "dl", &["sh", "-c", "exit 5"], &runc.runtime()).await;
    let (task, _output) = start_piped(&container).await.expect("start");
    assert_eq!(task.wait().await.expect("wait").code, 5);

    // Tasks.Delete in flight (runc delete stalled).
    runc.delay("delete", STALL_SECS);
    let t = task.clone();
    let result = kill_during(
        &env,
        "delete task",
        KILL_AFTER,
        async move { t.delete().await },
    )
    .await;
    expect_unavailable("delete task", result);
    restart_containerd(&env).await;
    assert_nothing_half_made(&env).await;
    tokio::time::sleep(Duration::from_secs(u64::from(STALL_SECS))).await;
    runc.heal();
    // The retry finishes the job: deleted now, or found gone (and its FIFOs removed with it).
    match task.delete().await {
        Ok(status) => eprintln!("retried delete: exit {}", status.code),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
            eprintln!("retried delete: {e}");
        }
    }
    assert!(
        bundle_dirs(&env).iter().all(|(_, fifos)| fifos.is_empty()),
        "{:?}",
        bundle_dirs(&env)
    );

    // Containers.Delete in flight (containerd stopped while the request waits).
    stop_containerd(&env).await;
    let c = container.clone();
    let result = kill_during(
        &env,
        "delete container",
        Duration::from_millis(300),
        async move { c.delete().await },
    )
    .await;
    expect_unavailable("delete container", result);
    restart_containerd(&env).await;
    assert_nothing_half_made(&env).await;
    match container.delete().await {
        Ok(()) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
    }
    assert!(!container.bundle_dir().exists());

    // The id can be used again.
    let again = new_container(&env, "dl", &["true"], &Runtime::default()).await;
    full_cycle_with_same_id(&env, &again, "deleted-again").await;
    assert_clean(&env).await;
    env.cleanup().await;
}
// ---------------------------------------------------------------------------------------------
// A shim SIGKILLed

/// A Backend that records every event.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(String, EventType, EventInfo)>>,
}

impl Backend for Recorder {
    fn process_event(
        &self,
        container_id: &str,
        event: EventType,
        info: EventInfo,
    ) -> Result<(), BackendError> {
        self.events
            .lock()
            .expect("events")
            .push((container_id.to_string(), event, info));
        Ok(())
    }
}

impl Recorder {
    fn exits(&self, container: &str) -> Vec<EventInfo> {
        self.events
            .lock()
            .expect("events")
            .iter()
            .filter(|(c, e, _)| c == container && *e == EventType::Exit)
            .map(|(_, _, info)| info.clone())
            .collect()
    }
}

async fn monitor(env: &TestEnv, recorder: &Arc<Recorder>) -> EventMonitor {
    let backend: Arc<dyn Backend> = recorder.clone();
    let monitor = EventMonitor::start(env.client.clone(), backend);
    tokio::time::timeout(BOUND, monitor.ready())
        .await
        .expect("monitor live in time")
        .expect("monitor running");
    monitor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shim_gives_one_exit_and_the_id_can_be_reused() {
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    let container = new_container(&env, "sk", &["sleep", "600"], &Runtime::default()).await;
    let (task, output) = start_piped(&container).await.expect("start");
    let exit = monitor.wait_exit_pid(&TestEnv::id("sk"), &TestEnv::id("sk"), task.pid());
    let waiting = tokio::spawn({
        let task = task.clone();
        async move { task.wait().await }
    });
    let shim = parent_pid(task.pid()).expect("init has a parent");
    assert_eq!(
        shims(&env.namespace),
        vec![shim],
        "the task's parent is its shim"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill(Pid::from_raw(shim as i32), Signal::SIGKILL).expect("SIGKILL the shim");

    let status = tokio::time::timeout(BOUND, exit)
        .await
        .expect("an exit reaches the monitor in time")
        .expect("exit");
    // Let late and duplicate exits (the shim's, containerd's cleanup) arrive, if any.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let exits = rec.exits("sk");
    // A wait in flight when the shim died: the real exit, or Unavailable; never a made-up code.
    let waited = tokio::time::timeout(BOUND, waiting)
        .await
        .expect("wait returns in time")
        .expect("join");
    eprintln!(
        "shim {shim} killed: exit {} reached the backend ({} exit event(s)); task.wait gave {}",
        status.code,
        exits.len(),
        match &waited {
            Ok(s) => format!("exit {}", s.code),
            Err(e) => format!("{} error: {e}", e.kind()),
        }
    );
    match waited {
        Ok(s) => assert_eq!(s.code, status.code),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
    }
    assert_eq!(exits.len(), 1, "exactly one exit: {exits:#?}");
    assert_eq!(exits[0].process_id, "sk");
    assert_eq!(exits[0].pid, task.pid());
    assert!([137, 255].contains(&exits[0].exit_code), "{:?}", exits[0]);
    assert_eq!(exits[0].exit_code, status.code);
    // The container's processes died with their shim, and the output streams ended.
    assert!(
        !Path::new(&format!("/proc/{}", task.pid())).exists(),
        "init survived its shim"
    );
    tokio::time::timeout(BOUND, output)
        .await
        .expect("output ends")
        .expect("output");

    // The task can be deleted (containerd may have done it already), and the id reused.
    match task.delete().await {
        Ok(status) => eprintln!("deleted the task: exit {}", status.code),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
            eprintln!("the task was gone already: {e}");
        }
    }
    container.delete().await.expect("delete container");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    let again = new_container(&env, "sk", &["sh", "-c", "exit 4"], &Runtime::default()).await;
    let (task2, _output) = start_piped(&again).await.expect("start again");
    let exit2 = monitor.wait_exit_pid(&TestEnv::id("sk"), &TestEnv::id("sk"), task2.pid());
    assert_eq!(task2.wait().await.expect("wait").code, 4);
    assert_eq!(
        tokio::time::timeout(BOUND, exit2)
            .await
            .expect("second exit in time")
            .expect("exit")
            .code,
        4
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let exits = rec.exits("sk");
    assert_eq!(exits.len(), 2, "{exits:#?}");
    assert_eq!(exits[1].pid, task2.pid());
    task2.delete().await.expect("delete task");
    again.delete().await.expect("delete container");
    monitor.stop();
    assert_clean(&env).await;
    env.cleanup().await;
}

/// (pid, exit status) of each exit containerd published, filled in by a subscription of its own.
type RawExits = Arc<Mutex<Vec<(u32, u32)>>>;

/// containerd's own `TaskExit`s for container `id`, as a plain subscriber of the namespace sees them.
/// To check what containerd reported, apart from what the monitor made of it.
fn raw_exits(env: &TestEnv, id: &str) -> (RawExits, tokio::task::JoinHandle<()>) {
    use containerd_client::services::v1::events_client::EventsClient;
    use prost::Message;
    let seen: RawExits = Arc::default();
    let mut request = tonic::Request::new(containerd_client::services::v1::SubscribeRequest {
        filters: vec![format!(
            "namespace=={},topic==\"/tasks/exit\"",
            env.namespace
        )],
    });
    request.metadata_mut().insert(
        "containerd-namespace",
        env.namespace.parse().expect("namespace header"),
    );
    let mut events = EventsClient::new(libcontainerd::raw::channel(&env.client));
    let (id, record) = (id.to_string(), Arc::clone(&seen));
    let reader = tokio::spawn(async move {
        let mut stream = events
            .subscribe(request)
            .await
            .expect("subscribe")
            .into_inner();
        while let Ok(Some(envelope)) = stream.message().await {
            let Some(any) = envelope.event else { continue };
            let exit = containerd_client::events::TaskExit::decode(any.value.as_slice())
                .expect("a TaskExit");
            if exit.container_id == id {
                record
                    .lock()
                    .expect("raw exits")
                    .push((exit.pid, exit.exit_status));
            }
        }
    });
    (seen, reader)
}

/// A shim killed after its `init.pid` was removed: containerd reports the task's exit without its pid
/// (it takes the pid from what the shim binary's cleanup reads in that file, and 1.6 sends the -1 of
/// the failed read, as a uint32). The monitor knows the pid from the task's start: the exit it
/// delivers carries it, and is not taken for the exit of some other process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_containerd_reports_without_a_pid_carries_the_known_pid() {
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    let (raw, raw_reader) = raw_exits(&env, "np");
    let container = new_container(&env, "np", &["sleep", "600"], &Runtime::default()).await;
    let (task, output) = start_piped(&container).await.expect("start");
    eventually("the monitor sees the start", BOUND, || {
        let seen = rec
            .events
            .lock()
            .expect("events")
            .iter()
            .any(|(c, e, _)| c == "np" && *e == EventType::Start);
        (!seen).then(|| "no start event".to_string())
    })
    .await;
    let by_pid = monitor.wait_exit_pid(&TestEnv::id("np"), &TestEnv::id("np"), task.pid());
    let shim = parent_pid(task.pid()).expect("init has a parent");
    let bundle = std::fs::read_link(format!("/proc/{shim}/cwd")).expect("the shim's bundle dir");
    std::fs::remove_file(bundle.join("init.pid")).expect("remove the shim's init.pid");
    kill(Pid::from_raw(shim as i32), Signal::SIGKILL).expect("SIGKILL the shim");

    let status = tokio::time::timeout(BOUND, by_pid)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the exit did not resolve the wait for its pid in time; containerd reported {:?}, the backend got {:#?}",
                raw.lock().expect("raw exits"),
                rec.exits("np")
            )
        })
        .expect("exit");
    // Let late and duplicate exits arrive, if any.
    tokio::time::sleep(Duration::from_secs(2)).await;
    raw_reader.abort();
    let raw = raw.lock().expect("raw exits").clone();
    assert!(
        raw.len() == 1 && [0, u32::MAX].contains(&raw[0].0),
        "containerd reports the exit once, without a pid (else the fault missed): {raw:?}"
    );
    let exits = rec.exits("np");
    assert_eq!(exits.len(), 1, "exactly one exit: {exits:#?}");
    assert_eq!(exits[0].pid, task.pid(), "{:?}", exits[0]);
    assert_eq!(exits[0].exit_code, raw[0].1);
    assert_eq!(status.code, raw[0].1);
    tokio::time::timeout(BOUND, output)
        .await
        .expect("output ends")
        .expect("output");

    match task.delete().await {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
    }
    container.delete().await.expect("delete container");
    monitor.stop();
    assert_clean(&env).await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Failing runtimes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_fails_create_is_a_clear_error_and_leaks_nothing() {
    let env = TestEnv::new().await;
    let runc = FaultyRunc::new(&env);
    runc.fail("create", "injected fault: runc create refused");
    let container = new_container(&env, "fc", &["true"], &runc.runtime()).await;
    let mut attached = false;
    let error = container
        .start(None, &StdioConfig::default(), |_| {
            attached = true;
            Ok(())
        })
        .await
        .expect_err("create must fail");
    eprintln!("failed create: {} error: {error}", error.kind());
    assert!(
        !attached,
        "attach is not called for a process that never existed"
    );
    assert!(
        error
            .to_string()
            .contains("injected fault: runc create refused"),
        "{error}"
    );
    assert_ne!(
        error.kind(),
        ErrorKind::Unavailable,
        "containerd is fine: {error}"
    );
    assert_eq!(
        container.task().await.expect_err("no task").kind(),
        ErrorKind::NotFound
    );
    assert!(
        bundle_dirs(&env).iter().all(|(_, fifos)| fifos.is_empty()),
        "{:?}",
        bundle_dirs(&env)
    );
    container.delete().await.expect("delete container");
    assert!(!container.bundle_dir().exists());
    assert_clean(&env).await;

    // Healed, the same id runs.
    runc.heal();
    let again = new_container(&env, "fc", &["sh", "-c", "echo fine"], &runc.runtime()).await;
    let (task, output) = start_piped(&again).await.expect("start after healing");
    assert_eq!(task.wait().await.expect("wait").code, 0);
    assert_eq!(output.await.expect("output").0, "fine\n");
    task.delete().await.expect("delete task");
    again.delete().await.expect("delete container");
    assert_eq!(runc.calls().iter().filter(|c| *c == "create").count(), 2);
    assert_clean(&env).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_kills_init_after_create_gives_the_right_exit() {
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    let runc = FaultyRunc::new(&env);
    runc.kill_init_after_create();
    let container = new_container(&env, "ki", &["sleep", "600"], &runc.runtime()).await;
    match start_piped(&container).await {
        Ok((task, output)) => {
            let status = tokio::time::timeout(BOUND, task.wait())
                .await
                .expect("wait in time")
                .expect("wait");
            eprintln!(
                "init killed after create: start succeeded, exit {}",
                status.code
            );
            assert_eq!(status.code, 137);
            output.await.expect("output");
            assert_eq!(task.delete().await.expect("delete").code, 137);
        }
        Err(error) => {
            eprintln!("init killed after create: {} error: {error}", error.kind());
            assert_ne!(error.kind(), ErrorKind::Unavailable, "{error}");
            assert_eq!(
                container.task().await.expect_err("no task left").kind(),
                ErrorKind::NotFound
            );
        }
    }
    // Whatever the start said, the Backend hears of at most one exit, and it is SIGKILL's.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let exits = rec.exits("ki");
    eprintln!("exits reaching the backend: {exits:?}");
    assert!(exits.len() <= 1, "{exits:#?}");
    assert!(exits.iter().all(|e| e.exit_code == 137), "{exits:#?}");
    assert!(
        bundle_dirs(&env).iter().all(|(_, fifos)| fifos.is_empty()),
        "{:?}",
        bundle_dirs(&env)
    );
    container.delete().await.expect("delete container");
    monitor.stop();
    assert_clean(&env).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_delays_exec_start_is_waited_for_or_cancelled_cleanly() {
    const DELAY: u32 = 3;
    let env = TestEnv::new().await;
    let runc = FaultyRunc::new(&env);
    let container = new_container(&env, "de", &["sleep", "600"], &runc.runtime()).await;
    let task = container
        .start(None, &null_io(), |_| Ok(()))
        .await
        .expect("start");
    runc.delay("exec", DELAY);

    // Waited for: the exec runs, late, with its output and exit code.
    let begin = Instant::now();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let exec = task
        .exec(
            &TestEnv::id("slow"),
            exec_process(container.spec(), ["sh", "-c", "echo late; exit 6"])
                .build()
                .expect("spec"),
            &StdioConfig::default(),
            |io| {
                let _ = tx.send(tokio::spawn(collect(io)));
                Ok(())
            },
        )
        .await
        .expect("a slow exec still starts");
    let took = begin.elapsed();
    assert!(took >= Duration::from_secs(u64::from(DELAY)), "{took:?}");
    assert_eq!(exec.wait().await.expect("wait").code, 6);
    assert_eq!(
        rx.await.expect("attached").await.expect("output").0,
        "late\n"
    );
    exec.delete().await.expect("delete exec");
    eprintln!("exec delayed {DELAY} s by runc: started after {took:?}");

    // Cancelled: a caller's timeout drops the exec while runc is still stalling; the library removes
    // the exec once runc is done, and the id can be used again.
    let gone = TestEnv::id("impatient");
    let process = exec_process(container.spec(), ["sleep", "600"])
        .build()
        .expect("spec");
    let dropped = tokio::time::timeout(
        Duration::from_secs(1),
        task.exec(&gone, process.clone(), &StdioConfig::default(), |_| Ok(())),
    )
    .await;
    assert!(dropped.is_err(), "the exec should still be stalled");
    let took = settles("an exec dropped while runc stalls", || {
        no_exec(&task, &gone)
    })
    .await;
    eprintln!("dropped exec removed {took:?} after the drop");
    runc.heal();
    let exec = task
        .exec(&gone, process, &null_io(), |_| Ok(()))
        .await
        .expect("the id is free again");
    exec.force_delete().await.expect("force delete");
    task.force_delete().await.expect("force delete task");
    container.delete().await.expect("delete container");
    assert_clean(&env).await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Cancellation

/// xorshift64*: reproducible random drop points (the seed is printed; `LCD_FAULT_SEED` replays).
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("LCD_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("drop points from seed {seed} (LCD_FAULT_SEED={seed} replays them)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A drop point in 1 ms .. twice `typical`: drops fall all over the call, and about half the
    /// calls complete (so that the calls after them get their turn).
    fn drop_point(&mut self, typical: Duration) -> Duration {
        let span = (typical.as_micros() as u64 * 2).max(1_000);
        Duration::from_micros(1_000 + self.next() % span)
    }
}

/// Poll the async `check` until it reports nothing wrong, within [`BOUND`].
async fn settles<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let begin = Instant::now();
    loop {
        match check().await {
            None => return begin.elapsed(),
            Some(problem) if begin.elapsed() > BOUND => {
                panic!("{what}: still {problem} after {BOUND:?}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// FIFOs of process `process` in `bundle`.
fn fifos_of(bundle: &Path, process: &str) -> Vec<PathBuf> {
    let prefix = format!("{process}-");
    std::fs::read_dir(bundle)
        .map(|d| {
            d.flatten()
                .filter(|f| f.file_name().to_string_lossy().starts_with(&prefix))
                .map(|f| f.path())
                .collect()
        })
        .unwrap_or_default()
}

/// The container has no task and its bundle dir no init FIFOs.
async fn no_task(container: &Container) -> Option<String> {
    match container.task().await {
        Ok(task) => Some(format!("a task ({:?})", task.status().await)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let fifos = fifos_of(container.bundle_dir(), container.id().as_str());
            (!fifos.is_empty()).then(|| format!("FIFOs {fifos:?}"))
        }
        Err(e) => Some(format!("error {e}")),
    }
}

/// The task has no exec `id` and the bundle dir none of its FIFOs.
async fn no_exec(task: &Task, id: &Id) -> Option<String> {
    match task.load_process(id).await {
        Ok(p) => Some(format!("exec {id} ({:?})", p.status().await)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let fifos = fifos_of(task.container().bundle_dir(), id.as_str());
            (!fifos.is_empty()).then(|| format!("FIFOs {fifos:?}"))
        }
        Err(e) => Some(format!("error {e}")),
    }
}

#[derive(Default, Debug)]
struct Drops {
    dropped: u32,
    completed: u32,
    longest_settle: Duration,
}

impl Drops {
    fn record(&mut self, completed: bool) {
        if completed {
            self.completed += 1;
        } else {
            self.dropped += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_dropped_at_random_points_leave_nothing_behind() {
    const ROUNDS: usize = 60;
    let env = TestEnv::new().await;
    let mut rng = Rng::from_env_or_clock();
    let sleeper = |c: &Container| {
        exec_process(c.spec(), ["sleep", "600"])
            .build()
            .expect("spec")
    };

    // Undisturbed, to know how long each call takes here.
    let container = new_container(&env, "measure", &["sleep", "600"], &Runtime::default()).await;
    let t = Instant::now();
    let task = container
        .start(None, &StdioConfig::default(), |_| Ok(()))
        .await
        .expect("start");
    let start_takes = t.elapsed();
    let t = Instant::now();
    let exec = task
        .exec(
            &TestEnv::id("m"),
            sleeper(&container),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .expect("exec");
    let exec_takes = t.elapsed();
    let t = Instant::now();
    exec.force_delete().await.expect("force delete exec");
    let exec_delete_takes = t.elapsed();
    let t = Instant::now();
    task.force_delete().await.expect("force delete task");
    let task_delete_takes = t.elapsed();
    let t = Instant::now();
    container.delete().await.expect("delete container");
    let delete_takes = t.elapsed();
    eprintln!(
        "undisturbed: start {start_takes:?}, exec {exec_takes:?}, exec force delete {exec_delete_takes:?}, task force delete {task_delete_takes:?}, container delete {delete_takes:?}"
    );

    let mut starts = Drops::default();
    let mut execs = Drops::default();
    let mut exec_deletes = Drops::default();
    let mut task_deletes = Drops::default();
    let mut deletes = Drops::default();
    for round in 0..ROUNDS {
        let id = format!("r{round}");
        let container = new_container(&env, &id, &["sleep", "600"], &Runtime::default()).await;

        // start: dropped, it must end as a failed start (no task, no FIFOs).
        let started = tokio::time::timeout(
            rng.drop_point(start_takes),
            container.start(None, &StdioConfig::default(), |_| Ok(())),
        )
        .await;
        starts.record(started.is_ok());
        let task = match started {
            Ok(result) => Some(result.expect("start")),
            Err(_) => {
                let took = settles("a dropped start", || no_task(&container)).await;
                starts.longest_settle = starts.longest_settle.max(took);
                None
            }
        };

        if let Some(task) = task {
            // exec: dropped, it must end as a failed exec (no process, no FIFOs).
            let exec_id = TestEnv::id(&format!("e{round}"));
            let executed = tokio::time::timeout(
                rng.drop_point(exec_takes),
                task.exec(
                    &exec_id,
                    sleeper(&container),
                    &StdioConfig::default(),
                    |_| Ok(()),
                ),
            )
            .await;
            execs.record(executed.is_ok());
            match executed {
                Ok(result) => {
                    let exec = result.expect("exec");
                    // exec force delete: dropped, it still completes.
                    let deleted = tokio::time::timeout(
                        rng.drop_point(exec_delete_takes),
                        exec.force_delete(),
                    )
                    .await;
                    exec_deletes.record(deleted.is_ok());
                    if let Ok(result) = deleted {
                        result.expect("force delete exec");
                    }
                    let took = settles("a dropped exec delete", || no_exec(&task, &exec_id)).await;
                    exec_deletes.longest_settle = exec_deletes.longest_settle.max(took);
                }
                Err(_) => {
                    let took = settles("a dropped exec", || no_exec(&task, &exec_id)).await;
                    execs.longest_settle = execs.longest_settle.max(took);
                }
            }
            // task force delete: dropped, it still completes.
            let deleted =
                tokio::time::timeout(rng.drop_point(task_delete_takes), task.force_delete()).await;
            task_deletes.record(deleted.is_ok());
            if let Ok(result) = deleted {
                result.expect("force delete task");
            }
            let took = settles("a dropped task delete", || no_task(&container)).await;
            task_deletes.longest_settle = task_deletes.longest_settle.max(took);
        }

        // container delete: dropped, it still completes (record and bundle dir both go).
        let deleted = tokio::time::timeout(rng.drop_point(delete_takes), container.delete()).await;
        deletes.record(deleted.is_ok());
        if let Ok(result) = deleted {
            result.expect("delete container");
        }
        let took = settles("a dropped container delete", || async {
            let record = env.client.load_container(container.id()).await;
            match (record, container.bundle_dir().exists()) {
                (Err(e), false) if e.kind() == ErrorKind::NotFound => None,
                (record, dir) => Some(format!(
                    "record {:?}, bundle dir {}",
                    record.map(|c| c.id().clone()).map_err(|e| e.kind()),
                    if dir { "present" } else { "gone" }
                )),
            }
        })
        .await;
        deletes.longest_settle = deletes.longest_settle.max(took);
        assert_nothing_half_made(&env).await;
    }
    eprintln!("over {ROUNDS} rounds (dropped/completed, longest wait for the library's cleanup):");
    for (name, d) in [
        ("start", &starts),
        ("exec", &execs),
        ("exec force delete", &exec_deletes),
        ("task force delete", &task_deletes),
        ("container delete", &deletes),
    ] {
        eprintln!(
            "  {name}: {} dropped, {} completed, settled within {:?}",
            d.dropped, d.completed, d.longest_settle
        );
    }
    assert!(starts.dropped > 0 && execs.dropped + exec_deletes.dropped > 0);
    assert_clean(&env).await;
    env.cleanup().await;
}
