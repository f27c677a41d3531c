//! Shared fixture for integration tests: a private containerd (started through our supervisor) in a
//! temp dir, a client in a namespace of its own, and a busybox rootfs. Everything is removed when the
//! fixture is dropped, also when a test panics.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libcontainerd::spec::SpecBuilder;
use libcontainerd::supervisor::{Daemon, DaemonConfig};
use libcontainerd::{Client, ClientConfig, Id};

pub struct TestEnv {
    pub client: Client,
    pub daemon: Daemon,
    pub rootfs: PathBuf,
    pub namespace: String,
    dir: Option<tempfile::TempDir>,
    cleaned: AtomicBool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A namespace unique to this test process and call, so cgroup paths never collide.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The host's busybox-static; tests cannot run without it.
pub fn busybox() -> &'static Path {
    Path::new(libcontainerd::rootfs::DEFAULT_BUSYBOX)
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        // Short paths: the socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("lcdt")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut config = DaemonConfig::new(dir.path().join("root"), dir.path().join("run"));
        // Another containerd to test against (.ci/containerd-1.7 sets it, and PATH for its shim).
        if let Some(binary) = std::env::var_os("LCD_TEST_CONTAINERD") {
            config.binary = binary.into();
        }
        let daemon = Daemon::new(config);
        daemon.ensure_running().await.expect("start containerd");
        let rootfs = dir.path().join("rootfs");
        libcontainerd::rootfs::busybox(&rootfs, busybox()).expect("busybox rootfs");
        let namespace = unique_name("t");
        let client = Client::connect(ClientConfig::new(
            daemon.config().socket(),
            namespace.clone(),
            dir.path().join("bundles"),
        ))
        .await
        .expect("connect");
        TestEnv {
            client,
            daemon,
            rootfs,
            namespace,
            dir: Some(dir),
            cleaned: AtomicBool::new(false),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    /// A spec running `args` in the busybox rootfs.
    pub fn spec(&self, args: &[&str]) -> SpecBuilder {
        SpecBuilder::new(&self.rootfs).args(args.iter().copied())
    }

    pub fn id(s: &str) -> Id {
        Id::new(s).expect("valid id")
    }

    /// Files left in the bundle root (FIFOs, bundle dirs): must be none after cleanup.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        walk(&self.dir().join("bundles"))
    }

    /// Remove every task and container of the namespace, then stop containerd.
    pub async fn cleanup(&self) {
        self.cleaned.store(true, Ordering::SeqCst);
        remove_all(&self.client).await;
        let _ = self.daemon.stop().await;
        remove_namespace_dirs(&self.namespace);
    }
}

/// runc's state dir and the cgroup parent of a namespace outlive its last container: remove them
/// (only if empty: rmdir never removes a live container's state or cgroup).
pub fn remove_namespace_dirs(namespace: &str) {
    let _ = std::fs::remove_dir(Path::new("/run/containerd/runc").join(namespace));
    if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
        for controller in controllers.flatten() {
            let _ = std::fs::remove_dir(controller.path().join(namespace));
        }
    }
}

async fn remove_all(client: &Client) {
    if let Ok(containers) = client.list_containers().await {
        for info in containers {
            if let Ok(container) = client.load_container(&info.id).await {
                if let Ok(task) = container.task().await {
                    let _ = task.force_delete().await;
                }
                let _ = container.delete().await;
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            found.push(path.clone());
            if path.is_dir() {
                found.extend(walk(&path));
            }
        }
    }
    found
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let dir = self.dir.take();
        if self.cleaned.load(Ordering::SeqCst) {
            drop(dir);
            return;
        }
        // A test that failed before its cleanup. Drop cannot await, and the test's runtime (which
        // drives the client's connection) is blocked here: use a fresh runtime and a fresh client in a
        // thread of its own. containerd is restarted if the test stopped it, so nothing is left behind.
        let config = self.daemon.config().clone();
        let namespace = self.namespace.clone();
        let namespace_dirs = self.namespace.clone();
        let state_dir = dir
            .as_ref()
            .map(|d| d.path().join("bundles"))
            .unwrap_or_default();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let daemon = Daemon::new(config);
                if daemon.ensure_running().await.is_ok() {
                    if let Ok(client) = Client::connect(ClientConfig::new(
                        daemon.config().socket(),
                        namespace,
                        state_dir,
                    ))
                    .await
                    {
                        remove_all(&client).await;
                    }
                }
                let _ = daemon.stop().await;
                remove_namespace_dirs(&namespace_dirs);
            });
            drop(dir);
        })
        .join();
    }
}

/// Poll `check` every 50ms until it returns `Some` or `timeout` passes.
#[allow(dead_code)] // not every test binary polls
pub async fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
