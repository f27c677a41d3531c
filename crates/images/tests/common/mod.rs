//! Shared fixture: a private containerd (through libcontainerd's supervisor) in a temp dir with
//! short paths, a client in a namespace of its own, and list helpers to check that a test left
//! nothing behind. Dropping the fixture stops containerd and removes the temp dir, also when a
//! test panics.

#![allow(dead_code)]

pub mod image;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::ListSnapshotsRequest;
use containerd_client::services::v1::ListRequest;
use libcontainerd::supervisor::{Daemon, DaemonConfig};
use libcontainerd::{Client, ClientConfig};

pub struct TestEnv {
    pub client: Client,
    pub daemon: Daemon,
    pub namespace: String,
    dir: Option<tempfile::TempDir>,
    /// An overlayfs mount holding containerd's root (see [`TestEnv::with_root_on_overlay`]).
    overlay: Option<PathBuf>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        TestEnv::start(false).await
    }

    /// containerd with its root on an overlayfs mount, where its overlayfs snapshotter cannot work
    /// (overlay on overlay), as in a container or on some CI machines.
    pub async fn with_root_on_overlay() -> TestEnv {
        TestEnv::start(true).await
    }

    async fn start(root_on_overlay: bool) -> TestEnv {
        // Short paths: the socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("lcdi")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut overlay = None;
        if root_on_overlay {
            let base = dir.path().join("ov");
            for d in ["lower", "upper", "work", "merged"] {
                std::fs::create_dir_all(base.join(d)).expect("mkdir");
            }
            let options = format!(
                "lowerdir={},upperdir={},workdir={}",
                base.join("lower").display(),
                base.join("upper").display(),
                base.join("work").display()
            );
            nix::mount::mount(
                Some("overlay"),
                &base.join("merged"),
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(options.as_str()),
            )
            .expect("mount overlay");
            overlay = Some(base.join("merged"));
        }
        let root = match &overlay {
            Some(merged) => merged.join("root"),
            None => dir.path().join("root"),
        };
        let mut config = DaemonConfig::new(root, dir.path().join("run"));
        if let Some(binary) = std::env::var_os("LCD_TEST_CONTAINERD") {
            config.binary = binary.into();
        }
        let daemon = Daemon::new(config);
        daemon.ensure_running().await.expect("start containerd");
        let namespace = unique_name("i");
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
            namespace,
            dir: Some(dir),
            overlay,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    /// A fresh directory under the fixture's temp dir.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::create_dir_all(&path).expect("mkdir");
        path
    }

    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "containerd-namespace",
            self.namespace.parse().expect("namespace header"),
        );
        request
    }

    pub async fn leases(&self) -> Vec<String> {
        let response = LeasesClient::new(libcontainerd::raw::channel(&self.client))
            .list(self.request(ListRequest { filters: vec![] }))
            .await
            .expect("list leases");
        response
            .into_inner()
            .leases
            .into_iter()
            .map(|l| l.id)
            .collect()
    }

    /// Snapshot names in `snapshotter`, sorted.
    pub async fn snapshots(&self, snapshotter: &str) -> Vec<String> {
        let mut stream = SnapshotsClient::new(libcontainerd::raw::channel(&self.client))
            .list(self.request(ListSnapshotsRequest {
                snapshotter: snapshotter.to_string(),
                filters: vec![],
            }))
            .await
            .expect("list snapshots")
            .into_inner();
        let mut names = vec![];
        while let Some(page) = stream.message().await.expect("list snapshots") {
            names.extend(page.info.into_iter().map(|i| i.name));
        }
        names.sort();
        names
    }

    /// Image names, sorted.
    pub async fn images(&self) -> Vec<String> {
        libcontainerd_images::store::list(&self.client)
            .await
            .expect("list images")
            .into_iter()
            .map(|i| i.name)
            .collect()
    }

    /// Blob digests in the content store, sorted.
    pub async fn blobs(&self) -> Vec<String> {
        use containerd_client::services::v1::content_client::ContentClient;
        use containerd_client::services::v1::ListContentRequest;
        let mut stream = ContentClient::new(libcontainerd::raw::channel(&self.client))
            .list(self.request(ListContentRequest { filters: vec![] }))
            .await
            .expect("list content")
            .into_inner();
        let mut digests = vec![];
        while let Some(page) = stream.message().await.expect("list content") {
            digests.extend(page.info.into_iter().map(|i| i.digest));
        }
        digests.sort();
        digests
    }

    /// A blob's labels (empty if it has none; panics if it is missing).
    pub async fn labels(&self, digest: &str) -> std::collections::HashMap<String, String> {
        use containerd_client::services::v1::content_client::ContentClient;
        use containerd_client::services::v1::InfoRequest;
        ContentClient::new(libcontainerd::raw::channel(&self.client))
            .info(self.request(InfoRequest {
                digest: digest.to_string(),
            }))
            .await
            .unwrap_or_else(|e| panic!("info {digest}: {e}"))
            .into_inner()
            .info
            .expect("info")
            .labels
    }

    /// Refs of unfinished content writes (ingests).
    pub async fn ingests(&self) -> Vec<String> {
        use containerd_client::services::v1::content_client::ContentClient;
        use containerd_client::services::v1::ListStatusesRequest;
        ContentClient::new(libcontainerd::raw::channel(&self.client))
            .list_statuses(self.request(ListStatusesRequest { filters: vec![] }))
            .await
            .expect("list ingests")
            .into_inner()
            .statuses
            .into_iter()
            .map(|s| s.r#ref)
            .collect()
    }

    /// Nothing of an import or pull may remain: no lease, no image, no snapshot, no blob, no
    /// unfinished write.
    pub async fn assert_clean(&self) {
        assert_eq!(self.leases().await, Vec::<String>::new(), "leases left");
        assert_eq!(self.ingests().await, Vec::<String>::new(), "ingests left");
        assert_eq!(self.images().await, Vec::<String>::new(), "images left");
        for snapshotter in ["overlayfs", "native"] {
            assert_eq!(
                self.snapshots(snapshotter).await,
                Vec::<String>::new(),
                "{snapshotter} snapshots left"
            );
        }
        assert_eq!(self.blobs().await, Vec::<String>::new(), "blobs left");
    }

    pub async fn cleanup(mut self) {
        let _ = self.daemon.stop().await;
        unmount(self.overlay.take());
        drop(self.dir.take());
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if self.dir.is_none() {
            return;
        }
        // A test that failed before its cleanup: stop containerd from a thread with a runtime of
        // its own (this one is blocked here), then remove the temp dir.
        let config = self.daemon.config().clone();
        let dir = self.dir.take();
        let overlay = self.overlay.take();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let _ = Daemon::new(config).stop().await;
            });
            unmount(overlay);
            drop(dir);
        })
        .join();
    }
}

fn unmount(path: Option<PathBuf>) {
    if let Some(path) = path {
        let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
    }
}
