//! lcd and the library next to the kubelet's CRI on one containerd: each test starts a node of its
//! own (containerd with the CRI plugin, pods made through the CRI API; see k8s/mod.rs) and checks
//! that lcd sees the pods' containers in `k8s.io`, refuses to change them, loads images pods can
//! use without a pull, leaves `k8s.io` alone when it works in its own namespace, and that a
//! `Backend` on `k8s.io` hears a pod go.

mod k8s;
mod support;

// The images crate's fixture image and its test registry on 127.0.0.1, for a pull into k8s.io.
#[allow(dead_code)]
#[path = "../../images/tests/common/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "../../images/tests/common/registry.rs"]
mod registry;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s::{Node, BOX, BOX_FAMILIAR, K8S};
use k8s_cri::v1 as cri;
use libcontainerd::{Backend, BackendError, EventInfo, EventMonitor, EventType};
use support::pty::Pty;
use support::{spawn_command, PROMPT, TIMEOUT};

/// A node for the test, or (where this machine cannot run CRI) the reason printed and the test
/// ended: never a silent pass.
macro_rules! node_or_skip {
    ($tag:expr) => {
        match Node::start($tag).await {
            Ok(node) => node,
            Err(reason) => {
                eprintln!("skipped: {reason}");
                return;
            }
        }
    };
}

/// What a pod's `app` container prints: two lines on stdout around one on stderr, then it waits.
const SCRIPT: &str = "echo one; echo two >&2; echo three; exec sleep 1000000";

#[tokio::test(flavor = "multi_thread")]
async fn lcd_shows_a_pods_containers_with_their_kubernetes_names() {
    let mut node = node_or_skip!("ps");
    let pod = node.run_pod("web", SCRIPT).await;
    node.wait_file_contains(&pod.log, "three").await;

    let table = node.lcd(K8S, &["ps"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert!(lines[0].ends_with("NAMES"), "{table}");
    let row_of = |id: &str| {
        lines
            .iter()
            // docker's ps shows 12 characters of an id.
            .find(|l| l.starts_with(&id[..12]))
            .unwrap_or_else(|| panic!("{id} is not in `lcd ps`: {table}"))
            .to_string()
    };
    assert!(
        row_of(&pod.container).ends_with(" k8s://default/web/app"),
        "{table}"
    );
    assert!(
        row_of(&pod.sandbox).ends_with(" k8s://default/web"),
        "{table}"
    );
    assert!(row_of(&pod.container).contains(BOX_FAMILIAR), "{table}");

    let json = node.lcd(K8S, &["ps", "--no-trunc", "--format", "json"]);
    let app: serde_json::Value = json
        .ok()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|v| v["ID"] == pod.container.as_str())
        .unwrap_or_else(|| panic!("no {} in {json}", pod.container));
    assert_eq!(app["State"], "running");
    assert_eq!(app["Kubernetes"]["Kind"], "container");
    assert_eq!(app["Kubernetes"]["Pod"], "web");
    assert_eq!(app["Kubernetes"]["PodNamespace"], "default");
    assert_eq!(app["Kubernetes"]["Container"], "app");

    let inspect = node.lcd(K8S, &["inspect", &pod.container]);
    let inspected: serde_json::Value = serde_json::from_str(inspect.ok()).expect("json");
    assert_eq!(inspected[0]["Kubernetes"]["Name"], "k8s://default/web/app");
    assert_eq!(
        inspected[0]["LogPath"],
        pod.log.to_str().expect("utf-8"),
        "{inspect}"
    );
    let sandbox = node.lcd(K8S, &["inspect", &pod.sandbox]);
    let sandbox: serde_json::Value = serde_json::from_str(sandbox.ok()).expect("json");
    assert_eq!(sandbox[0]["Kubernetes"]["Kind"], "sandbox");

    // lcd's own namespace on the same containerd shows none of it.
    let own = node.lcd(&node.ns, &["ps", "-a"]);
    assert_eq!(own.ok().lines().count(), 1, "{own}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lcd_reads_cri_logs_and_execs_top_and_stats_in_a_pod() {
    let mut node = node_or_skip!("logs");
    let pod = node.run_pod("web", SCRIPT).await;
    node.wait_file_contains(&pod.log, "three").await;
    node.wait_file_contains(&pod.log, " stderr F two").await;
    // The CRI log format on disk; lcd prints the content, each stream to its own.
    let raw = std::fs::read_to_string(&pod.log).expect("CRI log");
    assert!(raw.lines().all(|l| l.split(' ').count() >= 4), "{raw}");
    assert!(raw.contains(" stdout F one\n"), "{raw}");

    let logs = node.lcd(K8S, &["logs", &pod.container]);
    assert_eq!(logs.ok(), "one\nthree\n");
    assert_eq!(logs.stderr, "two\n");
    // CRI copies the two streams apart, so which came last in the file is CRI's to say.
    let last: Vec<&str> = raw.lines().last().expect("a line").splitn(4, ' ').collect();
    let tail = node.lcd(K8S, &["logs", "--tail", "1", &pod.container]);
    let (stdout, stderr) = (tail.ok(), tail.stderr.as_str());
    let line = format!("{}\n", last[3]);
    match last[1] {
        "stdout" => assert_eq!((stdout, stderr), (line.as_str(), ""), "{raw}"),
        _ => assert_eq!((stdout, stderr), ("", line.as_str()), "{raw}"),
    }
    let bad = node.lcd(K8S, &["logs", "--tail", "some", &pod.container]);
    bad.expect_error(125, &["tail", "some"]);
    // -t gives each line the time CRI wrote it.
    let stamped = node.lcd(K8S, &["logs", "-t", &pod.container]);
    let one = raw
        .lines()
        .find(|l| l.ends_with(" stdout F one"))
        .expect("the entry of one");
    let time = one.split(' ').next().expect("a time");
    assert!(
        stamped.ok().starts_with(&format!("{time} one\n")),
        "{stamped}"
    );
    let sandbox = node.lcd(K8S, &["logs", &pod.sandbox]);
    sandbox.expect_error(125, &["sandbox", "no log"]);

    // -f follows the file until the container stops; the exec writes to the container's stdout.
    let mut follow = spawn_command(
        node.command(K8S, &["logs", "-f", &pod.container]),
        Stdio::null(),
    );
    follow.wait_for_line("three", PROMPT);
    let exec = node.lcd(
        K8S,
        &[
            "exec",
            &pod.container,
            "sh",
            "-c",
            "echo four > /proc/1/fd/1",
        ],
    );
    exec.ok();
    follow.wait_for_line("four", PROMPT);
    // The kubelet rotates a log by renaming it and asking CRI to reopen it: -f moves on to the new
    // file.
    let rotated = pod.log.with_extension("log.1");
    std::fs::rename(&pod.log, &rotated).expect("rotate the log");
    node.runtime
        .reopen_container_log(cri::ReopenContainerLogRequest {
            container_id: pod.container.clone(),
        })
        .await
        .expect("ReopenContainerLog");
    node.lcd(
        K8S,
        &[
            "exec",
            &pod.container,
            "sh",
            "-c",
            "echo five > /proc/1/fd/1",
        ],
    )
    .ok();
    follow.wait_for_line("five", PROMPT);
    let new_log = std::fs::read_to_string(&pod.log).expect("the new log");
    assert!(new_log.contains(" stdout F five\n"), "{new_log}");
    node.runtime
        .stop_container(cri::StopContainerRequest {
            container_id: pod.container.clone(),
            timeout: 0,
        })
        .await
        .expect("StopContainer");
    let followed = follow.finish(TIMEOUT);
    followed.expect_code(0);
    // CRI deleted the task; lcd shows the exit CRI recorded (137: StopContainer's SIGKILL).
    let stopped = node.lcd(K8S, &["ps", "-a", "--no-trunc", "--format", "json"]);
    let stopped: serde_json::Value = stopped
        .ok()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|v| v["ID"] == pod.container.as_str())
        .expect("the stopped container in ps -a");
    assert_eq!(stopped["State"], "exited", "{stopped}");
    assert_eq!(stopped["ExitCode"], 137, "{stopped}");
    let inspected = node.lcd(K8S, &["inspect", &pod.container]);
    let inspected: serde_json::Value = serde_json::from_str(inspected.ok()).expect("json");
    assert_eq!(inspected[0]["State"]["ExitCode"], 137);

    // exec with stdin, top and stats, on the other pod that still runs.
    let other = node.run_pod("db", SCRIPT).await;
    let exec = support::run_command(
        node.command(K8S, &["exec", "-i", &other.container, "cat"]),
        Some(b"to the pod\n".to_vec()),
        TIMEOUT,
    )
    .expect("exec -i");
    assert_eq!(exec.ok(), "to the pod\n");
    let status = node.lcd(K8S, &["exec", &other.container, "sh", "-c", "exit 3"]);
    status.expect_code(3);
    // lcd's exec FIFOs live in a bundle dir of lcd's own for the container; nothing stays.
    let bundles = node.dir().join("run/bundles").join(K8S);
    assert_eq!(support::entries(&bundles), Vec::<std::path::PathBuf>::new());
    // exec -it: a shell on a terminal in the pod's container.
    let mut pty = Pty::new(100, 30);
    let mut shell = pty.spawn(node.command(K8S, &["exec", "-it", &other.container, "sh"]));
    pty.expect("# ");
    let said = pty.command("echo in-the-pod-$((1+1))");
    assert!(said.contains("in-the-pod-2"), "{said:?}");
    pty.type_keys(b"exit\r");
    assert_eq!(shell.wait(&mut pty).code(), Some(0), "{:?}", pty.seen);
    let top = node.lcd(K8S, &["top", &other.container]);
    assert!(top.ok().contains("sleep 1000000"), "{top}");
    let stats = node.lcd(K8S, &["stats", "--no-stream", &other.container]);
    assert!(stats.ok().contains(&other.container), "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_the_kubelet_would_undo_are_refused_unless_forced() {
    let mut node = node_or_skip!("refuse");
    let pod = node.run_pod("web", SCRIPT).await;
    for id in [&pod.container, &pod.sandbox] {
        for args in [
            vec!["rm", id.as_str()],
            vec!["rm", "-f", id.as_str()],
            vec!["stop", id.as_str()],
            vec!["kill", id.as_str()],
            vec!["pause", id.as_str()],
            vec!["update", "--memory", "64m", id.as_str()],
            vec!["start", id.as_str()],
            vec!["rename", id.as_str(), "renamed"],
        ] {
            let out = node.lcd(K8S, &args);
            let line = out.expect_error(125, &["refusing to", "kubelet", "--force-kubernetes"]);
            assert!(line.contains(id.as_str()), "{out}");
        }
    }
    assert_eq!(
        node.container_state(&pod.container).await,
        cri::ContainerState::ContainerRunning
    );
    let (sandboxes, containers) = node.cri_objects().await;
    assert_eq!((sandboxes.len(), containers.len()), (1, 1));

    // `lcd events` hears the pod's container: live once an exec of ours shows up in it.
    let filter = format!("container={}", pod.container);
    let mut events = spawn_command(
        node.command(K8S, &["events", "--filter", &filter]),
        Stdio::null(),
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        node.lcd(K8S, &["exec", &pod.container, "echo"]).ok();
        if line_containing(&mut events, "exec-started", Duration::from_millis(500)).is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "lcd events never showed an exec");
    }

    // Forced, the command does what it says (here, harmlessly, a pause and its undoing).
    node.lcd(K8S, &["pause", "--force-kubernetes", &pod.container])
        .ok();
    let paused = line_containing(&mut events, " paused ", PROMPT);
    assert!(paused.is_some_and(|l| l.contains(&pod.container)));
    let paused = node.lcd(K8S, &["inspect", &pod.container]);
    let paused: serde_json::Value = serde_json::from_str(paused.ok()).expect("json");
    assert_eq!(paused[0]["State"]["Status"], "paused");
    node.lcd(K8S, &["unpause", &pod.container]).ok();
    assert!(line_containing(&mut events, " resumed ", PROMPT).is_some());
    drop(events);
    let exec = node.lcd(K8S, &["exec", &pod.container, "echo", "thawed"]);
    assert_eq!(exec.ok(), "thawed\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_loaded_with_lcd_runs_as_a_pod_without_a_pull() {
    // Node::start loaded the box image into k8s.io with `lcd load` and waited until CRI knew it.
    let mut node = node_or_skip!("load");
    // Unpacked at load, before any pod asked: the layer's snapshot is there.
    let layer = libcontainerd_images::digest::sha256(&k8s::box_layer());
    let snapshots = node.snapshot_keys("overlayfs").await;
    assert!(snapshots.contains(&layer), "{layer} not in {snapshots:?}");
    // CRI's alias of the image by its ID stays out of `lcd images`.
    let images = node.lcd(K8S, &["images"]);
    let lines: Vec<&str> = images.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{images}");
    assert!(lines[1].starts_with("lcdtest/box "), "{images}");

    let status = node
        .images
        .image_status(cri::ImageStatusRequest {
            image: Some(k8s::image_spec(BOX)),
            verbose: false,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
        .image
        .expect("CRI knows the image");
    assert!(status.repo_tags.contains(&BOX.to_string()), "{status:?}");
    // The sandbox (the configured sandbox image) and the container both come from it.
    let pod = node.run_pod("web", SCRIPT).await;
    assert_eq!(
        node.container_state(&pod.container).await,
        cri::ContainerState::ContainerRunning
    );
    let log = std::fs::read_to_string(node.daemon.config().log_file()).unwrap_or_default();
    assert!(!log.contains("PullImage"), "CRI pulled an image: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_pulled_with_lcd_runs_as_a_pod_once_the_registry_is_gone() {
    let mut node = node_or_skip!("pull");
    let fixture = image::Fixture::new(None);
    let registry = registry::Registry::with_app(&fixture).await;
    let name = format!("{}/fixture/app:1", registry.addr);
    let pulled = node.lcd(K8S, &["pull", &name]);
    assert_eq!(pulled.ok(), format!("{name}\n"));
    node.wait_image_known(&name).await;
    // Pods never ask the registry: CRI resolves the image locally.
    registry.stop();
    let pod = node
        .run_pod_from("web", &name, "cat /app/hello.txt; id -u")
        .await;
    node.wait_file_contains(&pod.log, "1000").await;
    let logs = node.lcd(K8S, &["logs", &pod.container]);
    assert_eq!(logs.ok(), format!("{}1000\n", image::HELLO));
}

#[tokio::test(flavor = "multi_thread")]
async fn lcd_in_its_own_namespace_leaves_every_k8s_io_object_in_place() {
    let mut node = node_or_skip!("apart");
    let pod = node.run_pod("web", SCRIPT).await;
    let before = node.cri_objects().await;
    let snapshots_before = node.snapshot_keys("overlayfs").await;

    // lcd's own work on the same containerd: the same image in its namespace, containers from a
    // rootfs and from the image, side by side with the pod, then all of it removed again.
    let ns = node.ns.clone();
    let archive = node.dir().join("box.tar");
    let archive = archive.to_str().expect("utf-8");
    node.lcd(&ns, &["load", "-i", archive]).ok();
    let rootfs = node.rootfs.to_str().expect("utf-8").to_string();
    node.lcd(
        &ns,
        &["run", "-d", "--name", "side", &rootfs, "sleep", "100"],
    )
    .ok();
    let run = node.lcd(&ns, &["run", "--rm", BOX_FAMILIAR, "echo", "from lcd"]);
    assert_eq!(run.ok(), "from lcd\n");
    let ps = node.lcd(&ns, &["ps", "-q"]);
    assert_eq!(ps.ok(), "side\n");
    node.lcd(&ns, &["rm", "-f", "side"]).ok();
    node.lcd(&ns, &["rmi", BOX_FAMILIAR]).ok();
    assert_eq!(node.lcd(&ns, &["images", "-q"]).ok(), "");

    // Every k8s.io object is still there, and works.
    assert_eq!(node.cri_objects().await, before);
    assert_eq!(
        node.container_state(&pod.container).await,
        cri::ContainerState::ContainerRunning
    );
    let snapshots_after = node.snapshot_keys("overlayfs").await;
    assert_eq!(snapshots_after, snapshots_before);
    // Every blob of the image is still readable in k8s.io.
    let saved = node.dir().join("saved.tar");
    node.lcd(
        K8S,
        &["save", "-o", saved.to_str().expect("utf-8"), BOX_FAMILIAR],
    )
    .ok();
    let images = node.lcd(K8S, &["images", "--format", "json"]);
    assert!(images.ok().contains("\"lcdtest/box\""), "{images}");
    let exec = node.lcd(K8S, &["exec", &pod.container, "echo", "still here"]);
    assert_eq!(exec.ok(), "still here\n");
    let second = node.run_pod("again", SCRIPT).await;
    assert_eq!(
        node.container_state(&second.container).await,
        cri::ContainerState::ContainerRunning
    );
}

/// Records what a Backend is told.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(String, EventType, EventInfo)>>,
}

impl Backend for Recorder {
    fn process_event(
        &self,
        container: &str,
        event: EventType,
        info: EventInfo,
    ) -> Result<(), BackendError> {
        self.events
            .lock()
            .expect("lock")
            .push((container.to_string(), event, info));
        Ok(())
    }
}

impl Recorder {
    /// Containers whose init process exited.
    fn exited(&self) -> HashSet<String> {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, event, info)| *event == EventType::Exit && info.is_init())
            .map(|(container, _, _)| container.clone())
            .collect()
    }

    fn started(&self) -> HashSet<String> {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, event, _)| *event == EventType::Start)
            .map(|(container, _, _)| container.clone())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_on_k8s_io_hears_a_pod_start_and_go() {
    let mut node = node_or_skip!("events");
    let recorder = Arc::new(Recorder::default());
    let monitor = EventMonitor::start(node.client().clone(), recorder.clone());
    // The subscription is live once it delivers: an lcd-free probe is the pod's own start.
    let pod = node.run_pod("web", SCRIPT).await;
    wait_until("the pod's containers start", || {
        let started = recorder.started();
        started.contains(&pod.sandbox) && started.contains(&pod.container)
    })
    .await;
    node.remove_pod(&pod.sandbox).await;
    wait_until("the pod's containers exit", || {
        let exited = recorder.exited();
        exited.contains(&pod.sandbox) && exited.contains(&pod.container)
    })
    .await;
    let (sandboxes, containers) = node.cri_objects().await;
    assert!(sandboxes.is_empty() && containers.is_empty());
    // lcd agrees: nothing is left in k8s.io.
    let ps = node.lcd(K8S, &["ps", "-a"]);
    assert_eq!(ps.ok().lines().count(), 1, "{ps}");
    drop(monitor);
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first line of `running`'s stdout containing `needle` within `timeout`.
fn line_containing(
    running: &mut support::Running,
    needle: &str,
    timeout: Duration,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = running.next_line(left)?;
        if line.contains(needle) {
            return Some(line);
        }
    }
}
