//! A four-layer image pulled from a real registry (Debian's docker-registry on 127.0.0.1, through
//! a front that holds the top layer's blob half-sent): the layers below it unpack while it is
//! still downloading, in order, into the right chain (snapshots named by chain ID, each on the one
//! below, whiteouts and an opaque directory applied), with the labels containerd's GC needs; what
//! the pull made survives a GC mid-way; a pull that fails then takes it all away.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::registry::{Front, FrontConfig, Registry, OCI_MANIFEST};
use common::TestEnv;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::StatSnapshotRequest;
use libcontainerd_images::digest::{chain_ids, sha256};
use libcontainerd_images::rootfs::read_files;
use libcontainerd_images::{pull, Lease, Platform, Progress, ProgressState, PullOptions};
use serde_json::json;

const REPOSITORY: &str = "fixture/layers";

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

fn options(env: &TestEnv) -> PullOptions {
    PullOptions {
        platform: amd64(),
        plain_http: true,
        docker_config: Some(env.subdir("docker")),
        ..Default::default()
    }
}

/// A layer tar of `(path, content)` entries; `None` is a directory.
fn tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        match content {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, std::io::empty())
            }
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data)
            }
        }
        .expect("tar");
    }
    builder.into_inner().expect("tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Deterministic noise (xorshift), so that the top layer is big enough to be held half-sent.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    data
}

struct Layer {
    blob: Vec<u8>,
    diff_id: String,
    gzip: bool,
}

impl Layer {
    fn new(tar: Vec<u8>, gzip_it: bool) -> Layer {
        Layer {
            blob: if gzip_it { gzip(&tar) } else { tar.clone() },
            diff_id: sha256(&tar),
            gzip: gzip_it,
        }
    }

    fn digest(&self) -> String {
        sha256(&self.blob)
    }
}

/// Four layers: files, then a changed file and a whiteout, then an opaque directory, then a
/// large top layer.
fn layers() -> Vec<Layer> {
    let big = noise(256 << 10);
    vec![
        Layer::new(
            tar(&[
                ("etc/", None),
                ("etc/a", Some(b"a from 0\n")),
                ("etc/b", Some(b"b from 0\n")),
                ("d/", None),
                ("d/x", Some(b"x from 0\n")),
            ]),
            true,
        ),
        Layer::new(
            tar(&[
                ("etc/", None),
                ("etc/a", Some(b"a from 1\n")),
                ("etc/.wh.b", Some(b"")),
            ]),
            false,
        ),
        Layer::new(
            tar(&[
                ("d/", None),
                ("d/.wh..wh..opq", Some(b"")),
                ("d/y", Some(b"y from 2\n")),
            ]),
            true,
        ),
        Layer::new(
            tar(&[("top.txt", Some(b"top from 3\n")), ("big.bin", Some(&big))]),
            true,
        ),
    ]
}

/// Push an image of `layers` as `REPOSITORY:tag`.
async fn push(registry: &Registry, tag: &str, layers: &[Layer]) {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
    }))
    .expect("json");
    let mut descriptors = vec![];
    for layer in layers {
        registry.push_blob(REPOSITORY, &layer.blob).await;
        let media_type = if layer.gzip {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        descriptors.push(
            json!({"mediaType": media_type, "digest": layer.digest(), "size": layer.blob.len()}),
        );
    }
    registry.push_blob(REPOSITORY, &config).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": descriptors,
    }))
    .expect("json");
    registry
        .push_manifest(REPOSITORY, tag, OCI_MANIFEST, &manifest)
        .await;
}

/// Wait (up to a minute) until `snapshotter` has `wanted` and a prepared `extract-*` snapshot
/// (the next layer's, waiting for its blob); the pull must still be running.
async fn wait_for_snapshot(
    env: &TestEnv,
    snapshotter: &str,
    wanted: &str,
    pulling: &tokio::task::JoinHandle<libcontainerd::Result<libcontainerd_images::PulledImage>>,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let snapshots = env.snapshots(snapshotter).await;
        if snapshots.iter().any(|s| s == wanted)
            && snapshots.iter().any(|s| s.starts_with("extract-"))
        {
            return snapshots;
        }
        assert!(
            !pulling.is_finished(),
            "the pull ended while its top layer was held"
        );
        assert!(
            Instant::now() < deadline,
            "{wanted} never committed while the top layer was held: {snapshots:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A synchronous garbage collection (deleting a lease triggers one).
async fn collect_garbage(env: &TestEnv) {
    Lease::create(&env.client, "gc", Duration::from_secs(60))
        .await
        .expect("lease")
        .discard()
        .await;
}

async fn parent(env: &TestEnv, snapshotter: &str, key: &str) -> String {
    SnapshotsClient::new(libcontainerd::raw::channel(&env.client))
        .stat(env.request(StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        }))
        .await
        .unwrap_or_else(|e| panic!("stat {key}: {e}"))
        .into_inner()
        .info
        .expect("info")
        .parent
}

#[tokio::test]
async fn layers_unpack_in_order_while_the_layers_above_them_download() {
    let layers = layers();
    let registry = Registry::start(None).await;
    push(&registry, "base", &layers[..2]).await;
    push(&registry, "app", &layers).await;
    let front = Front::start(
        &registry.addr,
        FrontConfig {
            hold_blob: Some(layers[3].digest()),
            ..Default::default()
        },
    )
    .await;
    let env = TestEnv::new().await;
    let snapshotter = libcontainerd_images::snapshotter::choose(&env.client)
        .await
        .expect("snapshotter");
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let chain = chain_ids(&diff_ids);
    let mut options = options(&env);
    let reports: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = reports.clone();
    options.progress = Some(Arc::new(move |p: &Progress| {
        sink.lock().expect("lock").push(p.clone())
    }));

    // A base image with the first two layers: the app's pull reuses their blobs and snapshots.
    let base = format!("{}/{REPOSITORY}:base", front.addr);
    let pulled = pull(&env.client, &base, &options).await.expect("pull base");
    assert_eq!(pulled.unpacked.expect("unpacked").chain_ids, chain[..2]);
    reports.lock().expect("lock").clear();

    let app = format!("{}/{REPOSITORY}:app", front.addr);
    let pulling = {
        let (client, app, options) = (env.client.clone(), app.clone(), options.clone());
        tokio::spawn(async move { pull(&client, &app, &options).await })
    };
    // The top layer's blob is half-sent and held: layer 2 unpacks all the same, on the base's
    // layers, and layer 3's snapshot is prepared, waiting for its blob.
    front.wait_held().await;
    let snapshots = wait_for_snapshot(&env, &snapshotter, &chain[2], &pulling).await;
    assert!(!snapshots.contains(&chain[3]), "{snapshots:?}");
    assert_eq!(env.leases().await.len(), 1, "one lease for the whole pull");
    assert_eq!(
        env.images().await,
        vec![base.clone()],
        "named before its blobs are stored"
    );
    // Nothing the pull made so far is collectable.
    collect_garbage(&env).await;
    let after = env.snapshots(&snapshotter).await;
    assert_eq!(after, snapshots, "a GC took what the pull had made");

    // Released, the held transfer breaks; the download resumes and the pull completes.
    front.release();
    let pulled = tokio::time::timeout(Duration::from_secs(60), pulling)
        .await
        .expect("the pull hung")
        .expect("join")
        .expect("pull app");
    let unpacked = pulled.unpacked.expect("unpacked");
    assert_eq!(unpacked.chain_ids, chain);
    assert!(!unpacked.already);
    assert_eq!(
        pulled.downloaded,
        (layers[2].blob.len() + layers[3].blob.len()) as u64,
        "the base's blobs are not downloaded again"
    );
    let mut expected_images = vec![app.clone(), base.clone()];
    expected_images.sort();
    assert_eq!(env.images().await, expected_images);
    assert_eq!(env.leases().await, Vec::<String>::new());
    assert_eq!(env.ingests().await, Vec::<String>::new());
    let mut all = chain.clone();
    all.sort();
    assert_eq!(env.snapshots(&snapshotter).await, all, "no extract-* left");
    for (i, chain_id) in chain.iter().enumerate() {
        let below = if i == 0 { "" } else { chain[i - 1].as_str() };
        assert_eq!(
            parent(&env, &snapshotter, chain_id).await,
            below,
            "layer {i}"
        );
    }
    // Labels: each layer's diff ID, the config's top snapshot, the manifest's references.
    for layer in &layers {
        assert_eq!(
            env.labels(&layer.digest())
                .await
                .get("containerd.io/uncompressed"),
            Some(&layer.diff_id)
        );
    }
    let config_labels = env.labels(&pulled.id).await;
    assert_eq!(
        config_labels.get(&format!("containerd.io/gc.ref.snapshot.{snapshotter}")),
        chain.last()
    );
    let manifest_labels = env.labels(&pulled.manifest.digest).await;
    let expected: HashMap<String, String> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("containerd.io/gc.ref.content.l.{i}"), l.digest()))
        .chain([(
            "containerd.io/gc.ref.content.config".to_string(),
            pulled.id.clone(),
        )])
        .collect();
    assert_eq!(manifest_labels, expected);
    // The unpacked tree: layer 1 changed a and removed b, layer 2 made d opaque.
    let files = read_files(
        &env.client,
        &app,
        &snapshotter,
        &amd64(),
        &["/etc/a", "/etc/b", "/d/x", "/d/y", "/top.txt"],
    )
    .await
    .expect("read");
    let text = |f: &Option<Vec<u8>>| f.as_deref().map(|b| String::from_utf8_lossy(b).to_string());
    let files: Vec<_> = files.iter().map(text).collect();
    assert_eq!(
        files,
        vec![
            Some("a from 1\n".to_string()),
            None,
            None,
            Some("y from 2\n".to_string()),
            Some("top from 3\n".to_string()),
        ]
    );
    // Progress: the base's layers were there already, the others downloaded; the held one
    // resumed.
    let reports = reports.lock().expect("lock").clone();
    for i in 0..4 {
        let last = reports
            .iter()
            .rfind(|p| p.layer == i)
            .unwrap_or_else(|| panic!("no report for layer {i}"));
        let state = if i < 2 {
            ProgressState::Present
        } else {
            ProgressState::Done
        };
        assert_eq!(last.state, state, "layer {i}: {reports:?}");
    }
    assert!(reports
        .iter()
        .any(|p| p.layer == 3 && p.state == ProgressState::Resuming));

    // Again: unpacked already, nothing downloaded, nothing applied.
    let again = pull(&env.client, &app, &options).await.expect("pull again");
    assert_eq!(again.downloaded, 0);
    assert!(again.unpacked.expect("unpacked").already);
    assert_eq!(env.snapshots(&snapshotter).await, all);
    assert_eq!(env.leases().await, Vec::<String>::new());
    env.cleanup().await;
    registry.stop();
}

#[tokio::test]
async fn a_layer_that_fails_takes_the_layers_unpacked_below_it_away() {
    let layers = layers();
    let registry = Registry::start(None).await;
    push(&registry, "app", &layers).await;
    // The top layer: held half-sent, then cut on every try.
    let top = layers[3].digest();
    let front = Front::start(
        &registry.addr,
        FrontConfig {
            hold_blob: Some(top.clone()),
            cut_blob: Some(top.clone()),
            cut_times: usize::MAX,
            ..Default::default()
        },
    )
    .await;
    let env = TestEnv::new().await;
    let snapshotter = libcontainerd_images::snapshotter::choose(&env.client)
        .await
        .expect("snapshotter");
    let chain = chain_ids(&layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>());
    let app = format!("{}/{REPOSITORY}:app", front.addr);
    let pulling = {
        let (client, app, options) = (env.client.clone(), app.clone(), options(&env));
        tokio::spawn(async move { pull(&client, &app, &options).await })
    };
    front.wait_held().await;
    let snapshots = wait_for_snapshot(&env, &snapshotter, &chain[2], &pulling).await;
    for chain_id in &chain[..3] {
        assert!(snapshots.contains(chain_id), "{snapshots:?}");
    }
    front.release();
    let e = tokio::time::timeout(Duration::from_secs(60), pulling)
        .await
        .expect("the pull hung")
        .expect("join")
        .expect_err("the pull succeeded without its top layer");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("pull {app}: layer {top} of {app}: ")),
        "{text}"
    );
    assert!(text.ends_with("(gave up after 3 tries)"), "{text}");
    assert!(!text.contains('\n'), "{text}");
    // The three layers unpacked meanwhile, the prepared snapshot, the blobs: all gone.
    env.assert_clean().await;
    env.cleanup().await;
    registry.stop();
}
