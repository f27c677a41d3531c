//! A Kubernetes node in a temp dir, for the tests of lcd next to the kubelet's CRI: a private
//! containerd with the CRI plugin on (through the library's supervisor), a box image built here and
//! loaded into `k8s.io` with `lcd load` (the pods' sandbox image and their containers' image), and a
//! kubelet played by the test through the CRI gRPC API (`k8s-cri`). Pods use the host's network, so
//! no CNI plugin runs. Dropping the node removes every pod, every lcd container, the containerd, the
//! pods' cgroups and the temp dir, also when a test panics.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use libcontainerd::supervisor::{CriConfig, Daemon, DaemonConfig};
use libcontainerd::{Client, ClientConfig};
use libcontainerd_images::digest::sha256;
use serde_json::json;
use tonic::transport::Channel;

use crate::support::{self, lcd_bin, Output, TIMEOUT};

/// The namespace the CRI plugin keeps everything in.
pub const K8S: &str = "k8s.io";
/// The test's image: busybox, `sleep` as its command (so it serves as the pause image too).
pub const BOX: &str = "docker.io/lcdtest/box:1";
/// What `lcd images` calls it.
pub const BOX_FAMILIAR: &str = "lcdtest/box:1";

/// The kubelet's labels on a pod's containers (CRI copies a container config's labels onto the
/// containerd container), which `lcd ps` shows names from.
const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const POD_UID: &str = "io.kubernetes.pod.uid";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// One pod: its sandbox and its one container.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub sandbox: String,
    pub container: String,
    /// The container's CRI log file.
    pub log: PathBuf,
}

pub struct Node {
    dir: Option<tempfile::TempDir>,
    pub daemon: Daemon,
    pub socket: PathBuf,
    /// The CRI API on containerd's socket.
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
    /// A library client on `k8s.io` (set once containerd serves).
    client: Option<Client>,
    /// lcd's own namespace on this containerd.
    pub ns: String,
    /// The cgroup every pod goes under (removed when the node is dropped).
    cgroup_parent: String,
    pub rootfs: PathBuf,
}

/// Why CRI cannot run here, if it cannot: the tests skip with this reason printed.
pub fn unsupported() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (containerd, runc, pods)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("needs /bin/busybox (busybox-static)".into());
    }
    None
}

impl Node {
    /// Start the node: containerd with CRI, the box image loaded into `k8s.io` with lcd and seen by
    /// the CRI image service. Err says why this machine cannot run CRI (the test skips, printing
    /// it); anything else that goes wrong fails the test.
    pub async fn start(tag: &str) -> Result<Node, String> {
        if let Some(reason) = unsupported() {
            return Err(reason);
        }
        // Short paths: containerd's sockets must fit in a unix address.
        let dir = tempfile::Builder::new()
            .prefix("lcdk")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut config = DaemonConfig::new(dir.path().join("cd"), dir.path().join("cr"));
        if let Some(binary) = std::env::var_os("LCD_TEST_CONTAINERD") {
            config.binary = binary.into();
        }
        config.cri = Some(CriConfig {
            sandbox_image: BOX.to_string(),
        });
        let daemon = Daemon::new(config);
        let ns = format!("k8s-{tag}-{}", std::process::id());
        let cgroup_parent = format!("/lcd-k8s-{tag}-{}", std::process::id());
        let socket = daemon.config().socket();
        // From here on, Drop cleans up whatever was made.
        let mut node = Node {
            rootfs: dir.path().join("rootfs"),
            dir: Some(dir),
            socket: socket.clone(),
            runtime: RuntimeServiceClient::new(lazy_channel()),
            images: ImageServiceClient::new(lazy_channel()),
            client: None,
            daemon,
            ns,
            cgroup_parent,
        };
        node.daemon
            .ensure_running()
            .await
            .expect("start containerd with CRI");
        let client = Client::connect(ClientConfig::new(&socket, K8S, node.dir().join("bundles")))
            .await
            .expect("connect");
        let channel = libcontainerd::raw::channel(&client);
        node.runtime = RuntimeServiceClient::new(channel.clone());
        node.images = ImageServiceClient::new(channel);
        node.client = Some(client);
        node.wait_cri_ready().await?;
        let rootfs = node.rootfs.to_str().expect("utf-8").to_string();
        node.lcd(&node.ns, &["rootfs", "busybox", &rootfs]).ok();
        let archive = node.dir().join("box.tar");
        std::fs::write(&archive, box_image()).expect("write the image archive");
        let loaded = node.lcd(K8S, &["load", "-i", archive.to_str().expect("utf-8")]);
        assert_eq!(loaded.ok(), format!("Loaded image: {BOX_FAMILIAR}\n"));
        node.wait_image_known(BOX).await;
        Ok(node)
    }

    /// A library client on `k8s.io`.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("containerd serves")
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    /// An `lcd` command on this node's containerd, in namespace `ns`.
    pub fn command(&self, ns: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(lcd_bin());
        cmd.args(args)
            .env("LCD_ADDRESS", &self.socket)
            .env("LCD_NAMESPACE", ns)
            .env("LCD_DATA_ROOT", self.dir().join("data"))
            .env("LCD_EXEC_ROOT", self.dir().join("run"))
            .env_remove("LCD_CONTAINERD")
            .env_remove("LCD_LOG")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Run `lcd ARGS` in namespace `ns` to completion.
    #[track_caller]
    pub fn lcd(&self, ns: &str, args: &[&str]) -> Output {
        support::run_command(self.command(ns, args), None, TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// CRI serves once its plugin has initialised; `Version` tells (containerd answers before).
    /// A containerd whose CRI plugin did not load (built without it, or its init failed on this
    /// machine) does not serve the CRI API at all: that is a reason to skip, with containerd's word.
    async fn wait_cri_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self
                .runtime
                .status(cri::StatusRequest { verbose: false })
                .await;
            match status {
                Ok(_) => return Ok(()),
                Err(e) if e.code() == tonic::Code::Unimplemented => {
                    let log = std::fs::read_to_string(self.daemon.config().log_file())
                        .unwrap_or_default();
                    let why = log
                        .lines()
                        .rev()
                        .find(|l| l.contains("grpc.v1.cri") && l.contains("level=warning"))
                        .unwrap_or("no word on it in containerd's log")
                        .to_string();
                    return Err(format!("containerd serves no CRI API here: {why}"));
                }
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "the CRI plugin did not serve within {TIMEOUT:?}: {e}; containerd's log: {}",
                    self.containerd_log()
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The CRI plugin learns of images from containerd's image events; wait until it knows `image`.
    pub async fn wait_image_known(&mut self, image: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self
                .images
                .image_status(cri::ImageStatusRequest {
                    image: Some(image_spec(image)),
                    verbose: false,
                })
                .await
                .expect("ImageStatus")
                .into_inner();
            if status.image.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "CRI did not see image {image} within {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn containerd_log(&self) -> String {
        std::fs::read_to_string(self.daemon.config().log_file())
            .map(|log| {
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            })
            .unwrap_or_default()
    }

    fn sandbox_config(&self, name: &str) -> cri::PodSandboxConfig {
        let namespaces = Some(cri::NamespaceOption {
            network: cri::NamespaceMode::Node as i32,
            pid: cri::NamespaceMode::Container as i32,
            ipc: cri::NamespaceMode::Pod as i32,
            ..Default::default()
        });
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.to_string(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            // A host-network pod must not set a hostname (no UTS namespace of its own).
            hostname: String::new(),
            log_directory: self
                .dir()
                .join("pods")
                .join(name)
                .to_string_lossy()
                .into_owned(),
            labels: [
                (POD_NAME.to_string(), name.to_string()),
                (POD_NAMESPACE.to_string(), "default".to_string()),
                (POD_UID.to_string(), format!("uid-{name}")),
            ]
            .into(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/{name}", self.cgroup_parent),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: namespaces,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Run a pod (as the kubelet does: sandbox, then container, then start) whose one container,
    /// `app`, runs `script` with sh, from the box image that lcd loaded (no pull: CRI resolves an
    /// image locally or fails).
    pub async fn run_pod(&mut self, name: &str, script: &str) -> Pod {
        self.run_pod_from(name, BOX, script).await
    }

    /// [`Node::run_pod`] with the container from `image`.
    pub async fn run_pod_from(&mut self, name: &str, image: &str, script: &str) -> Pod {
        let config = self.sandbox_config(name);
        std::fs::create_dir_all(&config.log_directory).expect("pod log dir");
        let sandbox = self
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "RunPodSandbox: {e}; containerd's log: {}",
                    self.containerd_log()
                )
            })
            .into_inner()
            .pod_sandbox_id;
        let container_config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            image: Some(image_spec(image)),
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            log_path: "app.log".into(),
            labels: [
                (POD_NAME.to_string(), name.to_string()),
                (POD_NAMESPACE.to_string(), "default".to_string()),
                (POD_UID.to_string(), format!("uid-{name}")),
                (CONTAINER_NAME.to_string(), "app".to_string()),
            ]
            .into(),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: config
                        .linux
                        .as_ref()
                        .and_then(|l| l.security_context.as_ref())
                        .and_then(|s| s.namespace_options.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container = self
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(container_config),
                sandbox_config: Some(config.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer: {e}"))
            .into_inner()
            .container_id;
        self.runtime
            .start_container(cri::StartContainerRequest {
                container_id: container.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("StartContainer: {e}"));
        Pod {
            name: name.to_string(),
            sandbox,
            container,
            log: Path::new(&config.log_directory).join("app.log"),
        }
    }

    /// Stop and remove a pod as the kubelet does.
    pub async fn remove_pod(&mut self, sandbox: &str) {
        self.runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sandbox.to_string(),
            })
            .await
            .expect("StopPodSandbox");
        self.runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox.to_string(),
            })
            .await
            .expect("RemovePodSandbox");
    }

    /// The CRI state of a container.
    pub async fn container_state(&mut self, id: &str) -> cri::ContainerState {
        let status = self
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("status");
        cri::ContainerState::try_from(status.state).expect("state")
    }

    /// Poll until `path` holds `text` (CRI writes the log as the container prints).
    pub async fn wait_file_contains(&self, path: &Path, text: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let content = std::fs::read_to_string(path).unwrap_or_default();
            if content.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not get {text:?} within {TIMEOUT:?}: {content:?}",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the CRI API lists: sandbox ids and container ids.
    pub async fn cri_objects(&mut self) -> (Vec<String>, Vec<String>) {
        let sandboxes = self
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .expect("ListPodSandbox")
            .into_inner()
            .items
            .into_iter()
            .map(|s| s.id)
            .collect();
        let containers = self
            .runtime
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .expect("ListContainers")
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect();
        (sandboxes, containers)
    }

    /// The keys of `snapshotter`'s snapshots in `k8s.io`, sorted.
    pub async fn snapshot_keys(&self, snapshotter: &str) -> Vec<String> {
        use libcontainerd::raw::protos::services::v1::snapshots::snapshots_client::SnapshotsClient;
        use libcontainerd::raw::protos::services::v1::snapshots::ListSnapshotsRequest;
        let request = libcontainerd::raw::request(
            self.client(),
            ListSnapshotsRequest {
                snapshotter: snapshotter.to_string(),
                filters: vec![],
            },
        );
        let mut stream = SnapshotsClient::new(libcontainerd::raw::channel(self.client()))
            .list(request)
            .await
            .expect("list snapshots")
            .into_inner();
        let mut keys = vec![];
        while let Some(page) = stream.message().await.expect("list snapshots") {
            keys.extend(page.info.into_iter().map(|i| i.name));
        }
        keys.sort();
        keys
    }

    /// Best effort: every pod, every lcd container, containerd, the cgroups. Runs on a thread of
    /// its own with its own runtime, since Drop may run inside the test's runtime.
    fn cleanup(&mut self) {
        let socket = self.socket.clone();
        let bundles = self.dir().join("bundles");
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let Ok(client) = Client::connect(ClientConfig::new(&socket, K8S, bundles)).await
                else {
                    return;
                };
                let mut cri = RuntimeServiceClient::new(libcontainerd::raw::channel(&client));
                let Ok(pods) = cri
                    .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
                    .await
                else {
                    return;
                };
                for pod in pods.into_inner().items {
                    let id = pod.id;
                    let _ = cri
                        .stop_pod_sandbox(cri::StopPodSandboxRequest {
                            pod_sandbox_id: id.clone(),
                        })
                        .await;
                    let _ = cri
                        .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
                        .await;
                }
            })
        })
        .join();
        drop(cleaned);
        if let Ok(ps) = support::run_command(self.command(&self.ns, &["ps", "-aq"]), None, TIMEOUT)
        {
            let ids: Vec<&str> = ps.stdout.lines().filter(|l| !l.is_empty()).collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = support::run_command(self.command(&self.ns, &args), None, TIMEOUT);
            }
        }
        let daemon = self.daemon.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let _ = daemon.stop().await;
            })
        })
        .join();
        // runc removes the containers' cgroups; the parents named after our pods and namespace are
        // ours to remove, deepest first.
        for controller in support::entries(Path::new("/sys/fs/cgroup")) {
            for parent in [self.cgroup_parent.trim_start_matches('/'), self.ns.as_str()] {
                remove_cgroup_tree(&controller.join(parent));
            }
        }
    }
}

/// Remove a cgroup directory and its (empty) children, deepest first.
fn remove_cgroup_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    for child in support::entries(dir) {
        if child.is_dir() {
            remove_cgroup_tree(&child);
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Drop for Node {
    fn drop(&mut self) {
        self.cleanup();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// A channel that connects on first use (replaced once containerd serves).
fn lazy_channel() -> Channel {
    tonic::transport::Endpoint::from_static("http://[::]:1").connect_lazy()
}

pub fn image_spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}

/// The box image's one layer: busybox and the applets the tests use.
pub fn box_layer() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let mut layer = tar::Builder::new(Vec::new());
    for dir in ["bin/", "etc/", "tmp/", "proc/", "sys/", "dev/"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        layer
            .append_data(&mut header, dir, std::io::empty())
            .expect("tar dir");
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o755);
    header.set_size(busybox.len() as u64);
    layer
        .append_data(&mut header, "bin/busybox", busybox.as_slice())
        .expect("tar busybox");
    for applet in ["sh", "sleep", "echo", "cat", "ps", "hostname", "id"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        layer
            .append_link(&mut header, format!("bin/{applet}"), "busybox")
            .expect("tar symlink");
    }
    layer.into_inner().expect("tar")
}

/// The box image as a docker-save archive: [`box_layer`], `sleep` for a very long time as its
/// command.
pub fn box_image() -> Vec<u8> {
    let layer = box_layer();
    let config = serde_json::to_vec(&json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sleep", "1000000"]},
    }))
    .expect("config");
    let config_name = format!("{}.json", sha256(&config).trim_start_matches("sha256:"));
    let manifest = serde_json::to_vec(&json!([
        {"Config": config_name, "RepoTags": [BOX_FAMILIAR], "Layers": ["layer.tar"]}
    ]))
    .expect("manifest");
    let mut archive = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("layer.tar", layer.as_slice()),
        (config_name.as_str(), config.as_slice()),
        ("manifest.json", manifest.as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        archive.append_data(&mut header, name, data).expect("tar");
    }
    archive.into_inner().expect("tar")
}
