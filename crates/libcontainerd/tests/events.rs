//! Events against a real containerd: every event kind reaches the Backend with its fields, order per
//! container over many parallel containers, a slow handler's isolation, exits that survive
//! containerd being SIGKILLed and down for longer than the shim retries, and execs that started while
//! the monitor alone was cut off from containerd.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::TestEnv;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, GetRequest, KillRequest, PauseTaskRequest,
    PublishRequest, ResumeTaskRequest, StartRequest,
};
use libcontainerd::{
    Backend, BackendError, Client, ClientConfig, Container, ErrorKind, EventInfo, EventMonitor,
    EventType, MonitorOptions, Output, Runtime, StdioConfig, Task,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

/// Tests that compare the process's open file descriptors take this exclusively; every other test
/// shares it, so they still run in parallel with each other.
static FD_SENSITIVE: RwLock<()> = RwLock::const_new(());

const LONG: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Rec {
    container: String,
    event: EventType,
    info: EventInfo,
    at: SystemTime,
}

/// A Backend that records every call; it can be told to sleep or fail for chosen containers.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Rec>>,
    delays: Mutex<HashMap<String, Duration>>,
    failing: Mutex<Vec<String>>,
}

impl Backend for Recorder {
    fn process_event(
        &self,
        container_id: &str,
        event: EventType,
        info: EventInfo,
    ) -> Result<(), BackendError> {
        let delay = self
            .delays
            .lock()
            .expect("delays lock")
            .get(container_id)
            .copied();
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
        self.events.lock().expect("events lock").push(Rec {
            container: container_id.to_string(),
            event,
            info,
            at: SystemTime::now(),
        });
        if self
            .failing
            .lock()
            .expect("failing lock")
            .iter()
            .any(|c| c == container_id)
        {
            return Err(format!("refusing events of {container_id}").into());
        }
        Ok(())
    }
}

impl Recorder {
    fn all(&self) -> Vec<Rec> {
        self.events.lock().expect("events lock").clone()
    }

    fn of(&self, container: &str) -> Vec<Rec> {
        self.all()
            .into_iter()
            .filter(|r| r.container == container)
            .collect()
    }

    fn kinds(&self, container: &str) -> Vec<EventType> {
        self.of(container).iter().map(|r| r.event).collect()
    }

    fn exits(&self, container: &str, process: &str) -> Vec<Rec> {
        self.of(container)
            .into_iter()
            .filter(|r| r.event == EventType::Exit && r.info.process_id == process)
            .collect()
    }

    fn count(&self, container: &str, event: EventType) -> usize {
        self.of(container)
            .iter()
            .filter(|r| r.event == event)
            .count()
    }

    /// Wait until `done` holds for the recorded events; on timeout, fail showing them.
    async fn wait(&self, what: &str, limit: Duration, done: impl Fn(&[Rec]) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            // A copy: `done` may look at the recorder itself.
            if done(&self.all()) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {limit:?} waiting for {what}; recorded: {:#?}",
                    self.all()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_event(&self, container: &str, event: EventType) {
        let what = format!("{event} of {container}");
        self.wait(&what, LONG, |all| {
            all.iter()
                .any(|r| r.container == container && r.event == event)
        })
        .await;
    }
}

fn null_io() -> StdioConfig {
    StdioConfig {
        output: Output::Null,
        ..Default::default()
    }
}

async fn create(env: &TestEnv, id: &str, args: &[&str]) -> Container {
    let spec = env.spec(args).build().expect("spec");
    env.client
        .new_container(
            &TestEnv::id(id),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("create container")
}

async fn run(env: &TestEnv, id: &str, args: &[&str]) -> (Container, Task) {
    let container = create(env, id, args).await;
    let task = container
        .start(None, &null_io(), |_| Ok(()))
        .await
        .expect("start task");
    (container, task)
}

async fn remove(container: &Container, task: &Task) {
    task.force_delete().await.expect("delete task");
    container.delete().await.expect("delete container");
}

async fn monitor(env: &TestEnv, recorder: &Arc<Recorder>) -> EventMonitor {
    monitor_with(env, recorder, MonitorOptions::default()).await
}

async fn monitor_with(
    env: &TestEnv,
    recorder: &Arc<Recorder>,
    options: MonitorOptions,
) -> EventMonitor {
    let backend: Arc<dyn Backend> = recorder.clone();
    let monitor = EventMonitor::start_with(env.client.clone(), backend, options);
    tokio::time::timeout(LONG, monitor.ready())
        .await
        .expect("monitor live in time")
        .expect("monitor running");
    monitor
}

fn request<T>(env: &TestEnv, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "containerd-namespace",
        env.namespace.parse().expect("namespace header"),
    );
    request
}

fn tasks(env: &TestEnv) -> TasksClient<tonic::transport::Channel> {
    TasksClient::new(libcontainerd::raw::channel(&env.client))
}

/// Add and start exec `exec_id` running `args` in `container`'s task with no stdio, by the raw RPCs
/// (independent of the library's exec API); returns its pid.
async fn exec(env: &TestEnv, container: &Container, exec_id: &str, args: &[&str]) -> u32 {
    let mut process = container
        .spec()
        .process()
        .clone()
        .expect("spec has a process");
    process.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
    let spec = prost_types::Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
        value: serde_json::to_vec(&process).expect("process json"),
    };
    let mut tasks = tasks(env);
    tasks
        .exec(request(
            env,
            ExecProcessRequest {
                container_id: container.id().to_string(),
                exec_id: exec_id.into(),
                spec: Some(spec),
                ..Default::default()
            },
        ))
        .await
        .expect("exec");
    tasks
        .start(request(
            env,
            StartRequest {
                container_id: container.id().to_string(),
                exec_id: exec_id.into(),
            },
        ))
        .await
        .expect("start exec")
        .into_inner()
        .pid
}

/// SIGKILL containerd and start it again on the same socket; wait until the monitor has
/// resubscribed.
async fn restart_containerd(env: &TestEnv, monitor: &EventMonitor, down_for: Duration) {
    let before = monitor.state().subscriptions;
    env.daemon.kill().expect("kill containerd");
    tokio::time::sleep(down_for).await;
    env.daemon
        .ensure_running()
        .await
        .expect("restart containerd");
    tokio::time::timeout(
        LONG,
        monitor.wait_state(|s| s.live && s.subscriptions > before),
    )
    .await
    .expect("resubscribed in time")
    .expect("monitor running");
}

/// Publish a `TaskExit` into the test's namespace, as containerd would.
async fn publish_exit(env: &TestEnv, container: &str, process: &str, pid: u32, code: u32) {
    let exit = containerd_client::events::TaskExit {
        container_id: container.into(),
        id: process.into(),
        pid,
        exit_status: code,
        exited_at: Some(prost_types::Timestamp::from(SystemTime::now())),
    };
    EventsClient::new(libcontainerd::raw::channel(&env.client))
        .publish(request(
            env,
            PublishRequest {
                topic: "/tasks/exit".into(),
                event: Some(prost_types::Any {
                    type_url: "containerd.events.TaskExit".into(),
                    value: prost::Message::encode_to_vec(&exit),
                }),
            },
        ))
        .await
        .expect("publish a TaskExit");
}

/// Wait until containerd reports exec `exec_id` of `container` stopped.
async fn wait_exec_stopped(env: &TestEnv, container: &str, exec_id: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        let process = tasks(env)
            .get(request(
                env,
                GetRequest {
                    container_id: container.into(),
                    exec_id: exec_id.into(),
                },
            ))
            .await
            .expect("get the exec")
            .into_inner()
            .process
            .expect("a process");
        if process.status == containerd_client::types::v1::Status::Stopped as i32 {
            return;
        }
        assert!(Instant::now() < deadline, "exec {exec_id} did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn kill_exec(env: &TestEnv, container: &str, exec_id: &str) {
    tasks(env)
        .kill(request(
            env,
            KillRequest {
                container_id: container.into(),
                exec_id: exec_id.into(),
                signal: 9,
                all: false,
            },
        ))
        .await
        .expect("kill the exec");
}

async fn delete_exec(env: &TestEnv, container: &str, exec_id: &str) {
    tasks(env)
        .delete_process(request(
            env,
            DeleteProcessRequest {
                container_id: container.into(),
                exec_id: exec_id.into(),
            },
        ))
        .await
        .expect("delete the exec");
}

/// A unix-socket proxy to containerd that the test can cut. A monitor connected through it is
/// disconnected while containerd goes on serving every other client, as in the moments after a
/// containerd restart before the monitor has resubscribed: other clients start and end execs that the
/// monitor's stream never reports.
struct Proxy {
    path: PathBuf,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    fn start(target: PathBuf, path: PathBuf) -> Proxy {
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (cut, connections) = (Arc::clone(&cut), Arc::clone(&connections));
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    // While cut, every connection is refused at once (closed unanswered).
                    if cut.load(Ordering::SeqCst) {
                        continue;
                    }
                    let Ok(mut outbound) = UnixStream::connect(&target).await else {
                        continue;
                    };
                    let pipe = tokio::spawn(async move {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    connections.lock().expect("connections").push(pipe);
                }
            }
        });
        Proxy {
            path,
            cut,
            connections,
            accept,
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Close every proxied connection and refuse new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for pipe in self.connections.lock().expect("connections").drain(..) {
            pipe.abort();
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Cut the monitor off and wait until it knows.
async fn disconnect(proxy: &Proxy, monitor: &EventMonitor) {
    proxy.cut();
    tokio::time::timeout(LONG, monitor.wait_state(|s| !s.live))
        .await
        .expect("the monitor notices the cut in time")
        .expect("monitor running");
}

/// Let the monitor reach containerd again and wait until it has resubscribed and reconciled.
async fn reconnect(proxy: &Proxy, monitor: &EventMonitor) {
    let before = monitor.state().subscriptions;
    proxy.heal();
    tokio::time::timeout(
        LONG,
        monitor.wait_state(|s| s.live && s.subscriptions > before),
    )
    .await
    .expect("resubscribed in time")
    .expect("monitor running");
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_start_and_exit_reach_the_backend_with_their_fields() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;

    let container = create(&env, "c1", &["sh", "-c", "exit 3"]).await;
    // Registered before the task exists: the exit cannot be missed.
    let wait = monitor.wait_init_exit(&TestEnv::id("c1"));
    let task = container.start(None, &null_io(), |_| Ok(())).await.unwrap();
    let status = tokio::time::timeout(LONG, wait).await.unwrap().unwrap();
    assert_eq!(status.code, 3);
    rec.wait_event("c1", EventType::Exit).await;

    let events = rec.of("c1");
    let kinds: Vec<_> = events.iter().map(|r| r.event).collect();
    assert_eq!(
        kinds,
        [EventType::Create, EventType::Start, EventType::Exit]
    );
    for r in &events {
        assert_eq!(r.info.container_id, "c1");
        assert_eq!(r.info.process_id, "c1");
        assert_eq!(r.info.pid, task.pid(), "{r:?}");
        assert!(r.info.error.is_none());
        assert!(r.info.is_init());
    }
    let exit = &events[2].info;
    assert_eq!(exit.exit_code, 3);
    let exited_at = exit.exited_at.expect("exited_at");
    let age = SystemTime::now().duration_since(exited_at).unwrap();
    assert!(age < LONG, "{age:?}");
    assert_eq!(status.exited_at, Some(exited_at));

    // Known now: a late wait resolves at once, also by pid.
    let again = monitor
        .wait_exit_pid(&TestEnv::id("c1"), &TestEnv::id("c1"), task.pid())
        .await
        .unwrap();
    assert_eq!(again.code, 3);

    // Deleting forwards nothing more.
    remove(&container, &task).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rec.of("c1").len(), 3, "{:#?}", rec.of("c1"));
    monitor.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pause_and_resume_reach_the_backend() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    let (container, task) = run(&env, "box", &["sleep", "600"]).await;
    rec.wait_event("box", EventType::Start).await;

    let mut tasks = tasks(&env);
    tasks
        .pause(request(
            &env,
            PauseTaskRequest {
                container_id: "box".into(),
            },
        ))
        .await
        .unwrap();
    rec.wait_event("box", EventType::Paused).await;
    tasks
        .resume(request(
            &env,
            ResumeTaskRequest {
                container_id: "box".into(),
            },
        ))
        .await
        .unwrap();
    rec.wait_event("box", EventType::Resumed).await;
    for r in rec.of("box") {
        if matches!(r.event, EventType::Paused | EventType::Resumed) {
            assert_eq!(r.info.container_id, "box");
            assert_eq!(r.info.process_id, "", "only the container, as in Docker");
        }
    }

    let wait_e1 = monitor.wait_exit(&TestEnv::id("box"), &TestEnv::id("e1"));
    let e1 = exec(&env, &container, "e1", &["sh", "-c", "exit 5"]).await;
    let status = tokio::time::timeout(LONG, wait_e1).await.unwrap().unwrap();
    assert_eq!(status.code, 5);
    rec.wait("exit of e1", LONG, |_| rec_has_exit(&rec, "box", "e1"))
        .await;
    let e1_events: Vec<_> = rec
        .of("box")
        .into_iter()
        .filter(|r| r.info.process_id == "e1")
        .collect();
    let kinds: Vec<_> = e1_events.iter().map(|r| r.event).collect();
    assert_eq!(
        kinds,
        [
            EventType::ExecAdded,
            EventType::ExecStarted,
            EventType::Exit
        ]
    );
    assert_eq!(e1_events[0].info.pid, 0);
    assert_eq!(e1_events[1].info.pid, e1);
    assert_eq!(e1_events[2].info.pid, e1);
    assert_eq!(e1_events[2].info.exit_code, 5);
    assert!(!e1_events[2].info.is_init());

    // An exec still running when the init process dies exits after it: two distinct exits.
    let e2 = exec(&env, &container, "e2", &["sleep", "600"]).await;
    rec.wait("exec-started of e2", LONG, |all| {
        all.iter()
            .any(|r| r.event == EventType::ExecStarted && r.info.process_id == "e2")
    })
    .await;
    task.kill(libcontainerd::Signal::KILL).await.unwrap();
    rec.wait("both exits", LONG, |_| {
        rec_has_exit(&rec, "box", "box") && rec_has_exit(&rec, "box", "e2")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let init_exits = rec.exits("box", "box");
    assert_eq!(init_exits.len(), 1, "{init_exits:#?}");
    assert_eq!(init_exits[0].info.exit_code, 137);
    assert_eq!(init_exits[0].info.pid, task.pid());
    let e2_exits = rec.exits("box", "e2");
    assert_eq!(e2_exits.len(), 1, "{e2_exits:#?}");
    assert_eq!(e2_exits[0].info.pid, e2);
    assert_eq!(rec.exits("box", "e1").len(), 1);

    remove(&container, &task).await;
    monitor.stop();
    env.cleanup().await;
}

fn rec_has_exit(rec: &Recorder, container: &str, process: &str) -> bool {
    !rec.exits(container, process).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_reaches_the_backend() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    let spec = env
        .spec(&["sh", "-c", "x=a; while true; do x=$x$x; done"])
        .memory_limit(8 << 20)
        .build()
        .unwrap();
    let container = env
        .client
        .new_container(
            &TestEnv::id("hog"),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .unwrap();
    let task = container.start(None, &null_io(), |_| Ok(())).await.unwrap();
    rec.wait_event("hog", EventType::Oom).await;
    rec.wait_event("hog", EventType::Exit).await;
    let oom = rec
        .of("hog")
        .into_iter()
        .find(|r| r.event == EventType::Oom)
        .unwrap();
    assert_eq!(oom.info.container_id, "hog");
    let exits = rec.exits("hog", "hog");
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].info.exit_code, 137, "killed by the OOM killer");
    remove(&container, &task).await;
    monitor.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_per_container_over_50_parallel_containers() {
    let _shared = FD_SENSITIVE.read().await;
    let env = Arc::new(TestEnv::new().await);
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    let begin = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for n in 0..50 {
        let env = Arc::clone(&env);
        set.spawn(async move {
            let id = format!("p{n}");
            let code = (n % 7).to_string();
            let script = format!("exit {code}");
            run(&env, &id, &["sh", "-c", &script]).await
        });
    }
    let mut started = vec![];
    while let Some(joined) = set.join_next().await {
        started.push(joined.unwrap());
    }
    rec.wait("50 exits", LONG * 2, |all| {
        all.iter().filter(|r| r.event == EventType::Exit).count() >= 50
    })
    .await;
    eprintln!("50 containers ran in {:?}", begin.elapsed());
    for (container, task) in &started {
        let id = container.id().as_str();
        assert_eq!(
            rec.kinds(id),
            [EventType::Create, EventType::Start, EventType::Exit],
            "{id}"
        );
        let n: u32 = id[1..].parse().unwrap();
        assert_eq!(rec.exits(id, id)[0].info.exit_code, n % 7);
        assert_eq!(rec.exits(id, id)[0].info.pid, task.pid());
    }
    for (container, task) in &started {
        remove(container, task).await;
    }
    monitor.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_does_not_delay_other_containers() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    rec.delays
        .lock()
        .unwrap()
        .insert("slow".into(), Duration::from_secs(3));
    let monitor = monitor(&env, &rec).await;
    let (slow_c, slow_t) = run(&env, "slow", &["true"]).await;
    let (fast_c, fast_t) = run(&env, "fast", &["true"]).await;
    rec.wait_event("fast", EventType::Exit).await;
    let fast_exit = &rec.exits("fast", "fast")[0];
    let lag = fast_exit
        .at
        .duration_since(fast_exit.info.exited_at.unwrap())
        .unwrap();
    assert!(
        lag < Duration::from_secs(1),
        "fast's exit waited {lag:?} for slow's handler"
    );
    // slow's three events take 3 s each and are still being handled.
    assert_eq!(
        rec.count("slow", EventType::Exit),
        0,
        "{:#?}",
        rec.of("slow")
    );
    rec.wait("slow's exit", LONG, |_| rec_has_exit(&rec, "slow", "slow"))
        .await;
    assert_eq!(
        rec.kinds("slow"),
        [EventType::Create, EventType::Start, EventType::Exit]
    );
    remove(&slow_c, &slow_t).await;
    remove(&fast_c, &fast_t).await;
    monitor.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_bad_payloads_and_other_namespaces_do_not_disturb_the_stream() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    rec.failing.lock().unwrap().push("bad".into());
    let monitor = monitor(&env, &rec).await;

    // Payloads that cannot be decoded, published where the monitor listens.
    let mut events = EventsClient::new(libcontainerd::raw::channel(&env.client));
    for (topic, type_url, value) in [
        (
            "/tasks/exit",
            "containerd.events.TaskExit",
            vec![0x0a, 100, b'x'],
        ),
        ("/tasks/strange", "example.Unknown", vec![1, 2, 3]),
        ("/tasks/empty", "", vec![]),
    ] {
        events
            .publish(request(
                &env,
                PublishRequest {
                    topic: topic.into(),
                    event: Some(prost_types::Any {
                        type_url: type_url.into(),
                        value,
                    }),
                },
            ))
            .await
            .unwrap();
    }

    // A container in another namespace of the same containerd.
    let other = Client::connect(ClientConfig::new(
        env.daemon.config().socket(),
        format!("{}-other", env.namespace),
        env.dir().join("other-bundles"),
    ))
    .await
    .unwrap();
    let other_spec = libcontainerd::spec::SpecBuilder::new(&env.rootfs)
        .args(["true"])
        .build()
        .unwrap();
    let elsewhere = other
        .new_container(
            &TestEnv::id("elsewhere"),
            &other_spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .unwrap();
    let elsewhere_task = elsewhere.start(None, &null_io(), |_| Ok(())).await.unwrap();
    elsewhere_task.wait().await.unwrap();

    let (bad_c, bad_t) = run(&env, "bad", &["true"]).await;
    let (good_c, good_t) = run(&env, "good", &["true"]).await;
    rec.wait("both exits", LONG, |_| {
        rec_has_exit(&rec, "bad", "bad") && rec_has_exit(&rec, "good", "good")
    })
    .await;
    let lifecycle = [EventType::Create, EventType::Start, EventType::Exit];
    assert_eq!(rec.kinds("bad"), lifecycle);
    assert_eq!(rec.kinds("good"), lifecycle);
    assert!(rec.of("elsewhere").is_empty(), "{:#?}", rec.all());
    assert!(
        rec.all()
            .iter()
            .all(|r| r.container == "bad" || r.container == "good"),
        "{:#?}",
        rec.all()
    );

    elsewhere_task.delete().await.unwrap();
    elsewhere.delete().await.unwrap();
    common::remove_namespace_dirs(other.namespace().as_str());
    remove(&bad_c, &bad_t).await;
    remove(&good_c, &good_t).await;
    monitor.stop();
    env.cleanup().await;
}

/// containerd publishes a task's exit with pid 0 when it cannot learn the pid: its cleanup after a
/// dead shim whose binary's `delete` failed sends pid 0 and status 255. Such an exit, published here
/// by hand for a task the monitor saw start, is delivered once with the pid the monitor knows; the
/// task's real exit later is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_published_without_a_pid_is_delivered_with_the_known_pid() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    let (container, task) = run(&env, "nopid", &["sleep", "600"]).await;
    rec.wait_event("nopid", EventType::Start).await;
    let id = TestEnv::id("nopid");
    let by_pid = monitor.wait_exit_pid(&id, &id, task.pid());

    let exit = containerd_client::events::TaskExit {
        container_id: "nopid".into(),
        id: "nopid".into(),
        pid: 0,
        exit_status: 255,
        exited_at: Some(prost_types::Timestamp::from(SystemTime::now())),
    };
    EventsClient::new(libcontainerd::raw::channel(&env.client))
        .publish(request(
            &env,
            PublishRequest {
                topic: "/tasks/exit".into(),
                event: Some(prost_types::Any {
                    type_url: "containerd.events.TaskExit".into(),
                    value: prost::Message::encode_to_vec(&exit),
                }),
            },
        ))
        .await
        .unwrap();
    let status = tokio::time::timeout(LONG, by_pid).await.unwrap().unwrap();
    assert_eq!(status.code, 255);
    rec.wait_event("nopid", EventType::Exit).await;
    let exits = rec.exits("nopid", "nopid");
    assert_eq!(exits.len(), 1, "{exits:#?}");
    assert_eq!(exits[0].info.pid, task.pid(), "{:?}", exits[0].info);
    assert_eq!(exits[0].info.exit_code, 255);

    // The task's real exit is the same process's: a duplicate.
    task.kill(libcontainerd::Signal::KILL).await.unwrap();
    assert_eq!(task.wait().await.unwrap().code, 137);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rec.exits("nopid", "nopid").len(),
        1,
        "{:#?}",
        rec.of("nopid")
    );

    remove(&container, &task).await;
    monitor.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_resolve_from_the_stream_and_fail_once_stopped() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;

    let container = create(&env, "w", &["sh", "-c", "sleep 1; exit 4"]).await;
    let waits: Vec<_> = (0..3)
        .map(|_| monitor.wait_init_exit(&TestEnv::id("w")))
        .collect();
    let task = container.start(None, &null_io(), |_| Ok(())).await.unwrap();
    let by_pid = monitor.wait_exit_pid(&TestEnv::id("w"), &TestEnv::id("w"), task.pid());
    let other_pid =
        monitor.wait_exit_pid(&TestEnv::id("w"), &TestEnv::id("w"), task.pid() + 1_000_000);
    for wait in waits {
        assert_eq!(
            tokio::time::timeout(LONG, wait)
                .await
                .unwrap()
                .unwrap()
                .code,
            4
        );
    }
    assert_eq!(by_pid.await.unwrap().code, 4);
    // Waits resolve when the exit is decided, the Backend may still be handed it a moment later.
    rec.wait_event("w", EventType::Exit).await;

    // A wait that never matches fails when the monitor stops, as do new ones.
    let pending = monitor.wait_exit(&TestEnv::id("w"), &TestEnv::id("never"));
    monitor.stop();
    let err = other_pid.await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    assert_eq!(pending.await.unwrap_err().kind(), ErrorKind::Canceled);
    assert_eq!(
        monitor
            .wait_init_exit(&TestEnv::id("w"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Canceled
    );
    assert_eq!(
        monitor.ready().await.unwrap_err().kind(),
        ErrorKind::Canceled
    );

    // Stopped means stopped: a new container's events are not delivered.
    let before = rec.all().len();
    let (c2, t2) = run(&env, "after", &["true"]).await;
    t2.wait().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rec.all().len(), before);

    remove(&container, &task).await;
    remove(&c2, &t2).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_while_containerd_is_down_is_delivered_once_with_its_code() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    let (container, task) = run(&env, "down", &["sh", "-c", "sleep 3; exit 7"]).await;
    let (long_c, long_t) = run(&env, "survivor", &["sleep", "600"]).await;
    rec.wait_event("down", EventType::Start).await;
    rec.wait_event("survivor", EventType::Start).await;
    let wait = monitor.wait_init_exit(&TestEnv::id("down"));

    // Down for 20 s: the container exits 3 s in, and the shim gives up publishing after ~15 s.
    restart_containerd(&env, &monitor, Duration::from_secs(20)).await;
    rec.wait("the exit of down", LONG, |_| {
        rec_has_exit(&rec, "down", "down")
    })
    .await;
    let status = tokio::time::timeout(LONG, wait).await.unwrap().unwrap();
    let exits = rec.exits("down", "down");
    assert_eq!(exits.len(), 1, "{exits:#?}");
    let exit = &exits[0].info;
    assert_eq!(exit.pid, task.pid());
    // containerd 1.7 deletes, while it starts, every shim whose task has no process left
    // (containerd#6860, "cleaning leaked shim process"): the task and its exit status are gone
    // before anyone can ask. 1.6 keeps the task, stopped, with its status.
    let server = env.client.version().await.unwrap().version;
    if server.starts_with("1.6") {
        assert_eq!(status.code, 7);
        assert_eq!(exit.exit_code, 7);
        assert!(exit.error.is_none(), "the real status is known: {exit:?}");
        let exited_at = exit.exited_at.expect("exited_at from containerd");
        assert_eq!(status.exited_at, Some(exited_at));
        // It exited while containerd was down, well before it was delivered, and the shim had
        // given up publishing it: the monitor found it in the task list.
        assert!(exits[0].at.duration_since(exited_at).unwrap() > Duration::from_secs(10));
    } else {
        assert_eq!(status.code, libcontainerd::events::UNKNOWN_EXIT_CODE);
        assert_eq!(exit.exit_code, libcontainerd::events::UNKNOWN_EXIT_CODE);
        let error = exit
            .error
            .as_deref()
            .expect("the lost status is said to be lost");
        assert!(error.contains("exit status lost"), "{error}");
    }
    assert_eq!(monitor.state().recovered_exits, 1);

    // Later restarts (and any late TaskExit from the shim) bring no duplicate, and the running
    // container is not mistaken for an exited one.
    for _ in 0..2 {
        restart_containerd(&env, &monitor, Duration::from_millis(200)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(rec.exits("down", "down").len(), 1, "{:#?}", rec.of("down"));
    assert!(rec.exits("survivor", "survivor").is_empty());
    assert_eq!(monitor.state().recovered_exits, 1);

    // The stream still works: the survivor's exit arrives live, once.
    long_t.kill(libcontainerd::Signal::KILL).await.unwrap();
    rec.wait("the survivor's exit", LONG, |_| {
        rec_has_exit(&rec, "survivor", "survivor")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let survivor = rec.exits("survivor", "survivor");
    assert_eq!(survivor.len(), 1, "{survivor:#?}");
    assert_eq!(survivor[0].info.exit_code, 137);

    remove(&container, &task).await;
    remove(&long_c, &long_t).await;
    monitor.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execs_started_while_the_monitor_was_disconnected_are_reconciled() {
    let _shared = FD_SENSITIVE.read().await;
    let env = TestEnv::new().await;
    let proxy = Proxy::start(env.daemon.config().socket(), env.dir().join("proxy.sock"));
    let through_proxy = Client::connect(ClientConfig::new(
        proxy.path(),
        env.namespace.clone(),
        env.dir().join("bundles"),
    ))
    .await
    .unwrap();
    let rec = Arc::new(Recorder::default());
    let backend: Arc<dyn Backend> = rec.clone();
    let options = MonitorOptions::default().max_backoff(Duration::from_millis(200));
    let monitor = EventMonitor::start_with(through_proxy, backend, options);
    tokio::time::timeout(LONG, monitor.ready())
        .await
        .unwrap()
        .unwrap();
    let (boxed, box_task) = run(&env, "box", &["sleep", "600"]).await;
    let (whole, whole_task) = run(&env, "whole", &["sleep", "600"]).await;
    rec.wait_event("box", EventType::Start).await;
    rec.wait_event("whole", EventType::Start).await;

    disconnect(&proxy, &monitor).await;
    // Started and exited while the monitor was away, not deleted: its exit is found.
    let done = exec(&env, &boxed, "done", &["sh", "-c", "exit 5"]).await;
    // Started while away, still running when the monitor is back: it becomes known.
    let running = exec(&env, &boxed, "running", &["sleep", "600"]).await;
    // Started, exited and deleted while away: it leaves no trace to find.
    exec(&env, &boxed, "deleted", &["sh", "-c", "exit 6"]).await;
    // Started while away, and its whole container ended while away.
    let with_task = exec(&env, &whole, "w1", &["sleep", "600"]).await;
    wait_exec_stopped(&env, "box", "done").await;
    wait_exec_stopped(&env, "box", "deleted").await;
    delete_exec(&env, "box", "deleted").await;
    whole_task.kill(libcontainerd::Signal::KILL).await.unwrap();
    assert_eq!(whole_task.wait().await.unwrap().code, 137);
    wait_exec_stopped(&env, "whole", "w1").await;
    let wait_done = monitor.wait_exit(&TestEnv::id("box"), &TestEnv::id("done"));
    reconnect(&proxy, &monitor).await;

    let status = tokio::time::timeout(LONG, wait_done)
        .await
        .expect("the exit of an exec that started and ended while the monitor was away is found")
        .unwrap();
    assert_eq!(status.code, 5);
    rec.wait("the exits found by the reconcile", LONG, |_| {
        rec_has_exit(&rec, "box", "done") && rec_has_exit(&rec, "whole", "w1")
    })
    .await;
    let exits = rec.exits("box", "done");
    assert_eq!(exits.len(), 1, "{exits:#?}");
    let exit = &exits[0].info;
    assert_eq!((exit.pid, exit.exit_code), (done, 5), "{exit:?}");
    assert!(exit.error.is_none(), "the real status is known: {exit:?}");
    assert_eq!(status.exited_at, exit.exited_at);
    assert!(exit.exited_at.is_some());
    // Only its exit: the exec-added and exec-started published while away are not made up.
    let done_events: Vec<_> = rec
        .of("box")
        .into_iter()
        .filter(|r| r.info.process_id == "done")
        .map(|r| r.event)
        .collect();
    assert_eq!(done_events, [EventType::Exit]);
    // A container that ended while away: its exec's exit first, with its real status, then its own.
    let whole_exits: Vec<_> = rec
        .of("whole")
        .into_iter()
        .filter(|r| r.event == EventType::Exit)
        .map(|r| (r.info.process_id.clone(), r.info.pid, r.info.exit_code))
        .collect();
    assert_eq!(
        whole_exits,
        [
            ("w1".to_string(), with_task, 137),
            ("whole".to_string(), whole_task.pid(), 137)
        ]
    );
    assert_eq!(monitor.state().recovered_exits, 3);

    // A late TaskExit for the exec found by the reconcile (the shim's retries bring one when
    // containerd was down) is a duplicate.
    publish_exit(&env, "box", "done", done, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rec.exits("box", "done").len(), 1, "{:#?}", rec.of("box"));

    // The exec that was running is known now: its exit while the monitor is away again is found too.
    let wait_running = monitor.wait_exit_pid(&TestEnv::id("box"), &TestEnv::id("running"), running);
    disconnect(&proxy, &monitor).await;
    kill_exec(&env, "box", "running").await;
    wait_exec_stopped(&env, "box", "running").await;
    reconnect(&proxy, &monitor).await;
    let status = tokio::time::timeout(LONG, wait_running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code, 137);
    rec.wait("the exit of running", LONG, |_| {
        rec_has_exit(&rec, "box", "running")
    })
    .await;
    let exits = rec.exits("box", "running");
    assert_eq!(exits.len(), 1, "{exits:#?}");
    assert_eq!((exits[0].info.pid, exits[0].info.exit_code), (running, 137));
    assert_eq!(monitor.state().recovered_exits, 4);

    // What was deleted while away is beyond reach (documented): no exit is made up for it.
    assert!(rec.exits("box", "deleted").is_empty());
    // Reconnecting again finds nothing new.
    disconnect(&proxy, &monitor).await;
    reconnect(&proxy, &monitor).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (c, p) in [
        ("box", "done"),
        ("box", "running"),
        ("whole", "w1"),
        ("whole", "whole"),
    ] {
        assert_eq!(rec.exits(c, p).len(), 1, "{c}/{p}: {:#?}", rec.of(c));
    }
    assert!(rec.exits("box", "box").is_empty());
    assert_eq!(monitor.state().recovered_exits, 4);

    remove(&boxed, &box_task).await;
    remove(&whole, &whole_task).await;
    monitor.stop();
    drop(proxy);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_restarts_leave_one_subscription_and_no_leaked_descriptors() {
    // Alone: other tests' descriptors would blur the count.
    let _exclusive = FD_SENSITIVE.write().await;
    let env = TestEnv::new().await;
    let rec = Arc::new(Recorder::default());
    let options = MonitorOptions::default().worker_idle(Duration::from_millis(500));
    let monitor = monitor_with(&env, &rec, options).await;
    // A first restart settles whatever is made once (e.g. the channel's new connection).
    restart_containerd(&env, &monitor, Duration::from_millis(100)).await;
    let fds_before = open_fds();
    let subscriptions_before = monitor.state().subscriptions;

    for _ in 0..10 {
        restart_containerd(&env, &monitor, Duration::from_millis(100)).await;
    }
    assert_eq!(monitor.state().subscriptions, subscriptions_before + 10);
    let fds_after = open_fds();
    eprintln!("open descriptors: {fds_before} before, {fds_after} after 10 restarts");
    assert_eq!(fds_after, fds_before, "descriptors leaked across restarts");

    // Exactly one live subscription: each event arrives once (create and start are not
    // deduplicated, so a second subscription would show).
    let (container, task) = run(&env, "once", &["true"]).await;
    rec.wait_event("once", EventType::Exit).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        rec.kinds("once"),
        [EventType::Create, EventType::Start, EventType::Exit]
    );
    // Workers end when idle: nothing is left running per container.
    let deadline = Instant::now() + LONG;
    while monitor.active_workers() > 0 {
        assert!(Instant::now() < deadline, "workers did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    remove(&container, &task).await;
    monitor.stop();
    env.cleanup().await;
}

/// Latency from a container's exit (`exited_at`, stamped by the shim) to the Backend call, over 200
/// exits, 4 containers at a time. Run with `--ignored --nocapture` to see the numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: ~1 min; run with --ignored --nocapture"]
async fn exit_to_backend_latency_over_200_exits() {
    let _exclusive = FD_SENSITIVE.write().await;
    let env = Arc::new(TestEnv::new().await);
    let rec = Arc::new(Recorder::default());
    let monitor = monitor(&env, &rec).await;
    // Baseline: when a plain subscription of our own sees each TaskExit, to tell containerd's part
    // of the latency from the monitor's.
    let raw_seen: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let raw = {
        let seen = Arc::clone(&raw_seen);
        let mut events = EventsClient::new(libcontainerd::raw::channel(&env.client));
        let subscribe = request(
            &env,
            containerd_client::services::v1::SubscribeRequest {
                filters: vec![format!(
                    "namespace=={},topic==\"/tasks/exit\"",
                    env.namespace
                )],
            },
        );
        tokio::spawn(async move {
            let mut stream = events.subscribe(subscribe).await.unwrap().into_inner();
            while let Ok(Some(envelope)) = stream.message().await {
                let now = SystemTime::now();
                if let Some(any) = envelope.event {
                    use prost::Message;
                    let exit =
                        containerd_client::events::TaskExit::decode(any.value.as_slice()).unwrap();
                    seen.lock().unwrap().insert(exit.container_id, now);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let env = Arc::clone(&env);
        let next = Arc::clone(&next);
        set.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= 200 {
                    return;
                }
                let id = format!("l{n}");
                let (container, task) = run(&env, &id, &["true"]).await;
                task.wait().await.unwrap();
                remove(&container, &task).await;
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.unwrap();
    }
    rec.wait("200 exits", LONG, |all| {
        all.iter().filter(|r| r.event == EventType::Exit).count() >= 200
    })
    .await;
    raw.abort();
    let raw_seen = raw_seen.lock().unwrap().clone();
    let mut raw_lags: Vec<Duration> = vec![];
    let mut overheads: Vec<Duration> = vec![];
    for r in rec.all().iter().filter(|r| r.event == EventType::Exit) {
        if let Some(seen) = raw_seen.get(&r.container) {
            let exited_at = r.info.exited_at.unwrap();
            raw_lags.push(seen.duration_since(exited_at).unwrap_or_default());
            overheads.push(r.at.duration_since(*seen).unwrap_or_default());
        }
    }
    raw_lags.sort();
    overheads.sort();
    if !raw_lags.is_empty() {
        eprintln!(
            "of which containerd -> a plain subscriber: median {:?}, p99 {:?}; monitor (decode, queue, handler thread): median {:?}, p99 {:?} (n={})",
            raw_lags[raw_lags.len() / 2],
            raw_lags[raw_lags.len() * 99 / 100],
            overheads[overheads.len() / 2],
            overheads[overheads.len() * 99 / 100],
            overheads.len()
        );
    }
    let mut lags: Vec<Duration> = rec
        .all()
        .iter()
        .filter(|r| r.event == EventType::Exit)
        .map(|r| r.at.duration_since(r.info.exited_at.unwrap()).unwrap())
        .collect();
    lags.sort();
    let median = lags[lags.len() / 2];
    let p99 = lags[lags.len() * 99 / 100];
    eprintln!(
        "exit -> Backend latency over {} exits: median {median:?}, p99 {p99:?}, max {:?}",
        lags.len(),
        lags[lags.len() - 1]
    );
    assert!(lags.iter().all(|l| *l < Duration::from_secs(5)));
    monitor.stop();
    env.cleanup().await;
}
