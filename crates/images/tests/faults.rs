//! containerd killed (SIGKILL, by pid, through the supervisor) in the middle of a pull and of an
//! unpack; restarted, a new client, the same call again: it completes, and what the killed attempt
//! made (its lease, the half-written ingest, the `extract-*` snapshot) is gone, because the retry
//! first deletes the lease this process could not delete while containerd was down. Killed in the
//! middle of creating a snapshot, overlayfs leaves a directory no record names, which would fail
//! every later snapshot: the next pull completes all the same.

mod common;

use std::time::{Duration, Instant};

use common::image::Fixture;
use common::registry::{Front, FrontConfig, Registry, OCI_MANIFEST};
use common::TestEnv;
use libcontainerd::{Client, ClientConfig};
use libcontainerd_images::digest::sha256;
use libcontainerd_images::rootfs::read_files;
use libcontainerd_images::{pull, unpack, Platform, PullOptions};
use serde_json::json;

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

async fn kill_containerd(env: &TestEnv) {
    let daemon = env.daemon.clone();
    let pid = tokio::task::spawn_blocking(move || daemon.kill())
        .await
        .expect("join")
        .expect("kill containerd");
    eprintln!("killed containerd {pid}");
}

/// Start containerd again and give the fixture a new client.
async fn restart(env: &mut TestEnv) {
    env.daemon
        .ensure_running()
        .await
        .expect("restart containerd");
    env.client = Client::connect(ClientConfig::new(
        env.daemon.config().socket(),
        env.namespace.clone(),
        env.dir().join("bundles"),
    ))
    .await
    .expect("reconnect");
}

/// Leases, ingests and snapshots other than `keep`: none may remain.
async fn assert_nothing_half_made(env: &TestEnv, keep: &[String]) {
    assert_eq!(env.leases().await, Vec::<String>::new(), "leases left");
    assert_eq!(env.ingests().await, Vec::<String>::new(), "ingests left");
    for snapshotter in ["overlayfs", "native"] {
        let extra: Vec<_> = env
            .snapshots(snapshotter)
            .await
            .into_iter()
            .filter(|s| !keep.contains(s))
            .collect();
        assert_eq!(extra, Vec::<String>::new(), "{snapshotter} snapshots left");
    }
}

#[tokio::test]
async fn containerd_killed_during_a_pull() {
    let fixture = Fixture::new(None);
    let registry = Registry::with_app(&fixture).await;
    let big = fixture.layers[0].digest();
    let front = Front::start(
        &registry.addr,
        FrontConfig {
            hold_blob: Some(big.clone()),
            ..Default::default()
        },
    )
    .await;
    let mut env = TestEnv::new().await;
    let options = options(&env);
    let reference = format!("{}/fixture/app:1", front.addr);

    // Mid-way: half of a layer is in an open ingest, under the pull's lease; everything else
    // (the config, the other layer, the manifest, written while the layers download) is stored,
    // and the layer's snapshot is prepared, waiting for its blob: nothing else is under way when
    // containerd dies.
    let pulling = {
        let (client, reference, options) = (env.client.clone(), reference.clone(), options.clone());
        tokio::spawn(async move { pull(&client, &reference, &options).await })
    };
    front.wait_held().await;
    let snapshotter = libcontainerd_images::snapshotter::choose(&env.client)
        .await
        .expect("snapshotter");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ingests, blobs) = (env.ingests().await, env.blobs().await);
        let snapshots = env.snapshots(&snapshotter).await;
        let prepared = snapshots.iter().any(|s| s.starts_with("extract-"));
        if ingests.len() == 1 && blobs.len() == 3 && prepared {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "while the blob is held: ingests {ingests:?}, blobs {blobs:?}, snapshots {snapshots:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(env.leases().await.len(), 1);
    kill_containerd(&env).await;
    // The transfer breaks while containerd is down: the pull fails, and cannot delete its lease.
    front.release();
    let e = tokio::time::timeout(Duration::from_secs(30), pulling)
        .await
        .expect("the pull hung after containerd was killed")
        .expect("join")
        .expect_err("the pull succeeded without containerd");
    eprintln!("pull during the kill: {e}");
    assert!(e.to_string().starts_with("pull "), "{e}");

    restart(&mut env).await;
    // What the killed attempt left: its lease (gc.expire in an hour) holding the half ingest.
    let leases = env.leases().await;
    let ingests = env.ingests().await;
    eprintln!("after the restart: leases {leases:?}, ingests {ingests:?}");
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(ingests.len(), 1, "{ingests:?}");

    // The retry deletes that lease first, then pulls everything.
    let pulled = pull(&env.client, &reference, &options)
        .await
        .expect("pull after the restart");
    let unpacked = pulled.unpacked.expect("unpacked");
    assert_eq!(unpacked.chain_ids, fixture.app_chain_ids());
    assert_eq!(env.images().await, vec![reference.clone()]);
    assert_nothing_half_made(&env, &unpacked.chain_ids).await;
    let files = read_files(
        &env.client,
        &reference,
        &unpacked.snapshotter,
        &amd64(),
        &["/app/hello.txt"],
    )
    .await
    .expect("read");
    assert_eq!(files[0].as_deref(), Some(common::image::HELLO.as_bytes()));
    env.cleanup().await;
    registry.stop();
}

/// Deterministic noise (xorshift): a layer that does not compress and takes a while to apply.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
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

/// A plain tar layer with a few large noise files.
fn big_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for i in 0..4u64 {
        let data = noise(24 << 20, i + 1);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, format!("big{i}.bin"), data.as_slice())
            .expect("tar");
    }
    builder.into_inner().expect("tar")
}

#[tokio::test]
async fn containerd_killed_during_an_unpack() {
    let registry = Registry::start(None).await;
    let layer = big_layer();
    let layer_digest = registry.push_blob("fixture/big", &layer).await;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .expect("json");
    registry.push_blob("fixture/big", &config).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .expect("json");
    registry
        .push_manifest("fixture/big", "1", OCI_MANIFEST, &manifest)
        .await;
    drop(layer);
    let mut env = TestEnv::new().await;
    let mut options = options(&env);
    options.unpack = false;
    let reference = format!("{}/fixture/big:1", registry.addr);
    pull(&env.client, &reference, &options).await.expect("pull");
    let snapshotter = libcontainerd_images::snapshotter::choose(&env.client)
        .await
        .expect("snapshotter");

    // Kill containerd as soon as the layer's extract snapshot exists: Diff.Apply is running.
    let unpacking = {
        let (client, reference, snapshotter) =
            (env.client.clone(), reference.clone(), snapshotter.clone());
        tokio::spawn(async move { unpack(&client, &reference, &snapshotter, &amd64()).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let snapshots = env.snapshots(&snapshotter).await;
        if snapshots.iter().any(|s| s.starts_with("extract-")) {
            break;
        }
        assert!(
            !unpacking.is_finished(),
            "the unpack ended before its extract snapshot was seen"
        );
        assert!(Instant::now() < deadline, "no extract snapshot");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    kill_containerd(&env).await;
    let e = tokio::time::timeout(Duration::from_secs(30), unpacking)
        .await
        .expect("the unpack hung after containerd was killed")
        .expect("join")
        .expect_err("the unpack succeeded without containerd");
    eprintln!("unpack during the kill: {e}");

    restart(&mut env).await;
    // What the killed attempt left: the unpack's lease, holding the active extract snapshot.
    let leases = env.leases().await;
    let snapshots = env.snapshots(&snapshotter).await;
    eprintln!("after the restart: leases {leases:?}, {snapshotter} snapshots {snapshots:?}");
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert!(
        snapshots.iter().any(|s| s.starts_with("extract-")),
        "the kill missed Diff.Apply: {snapshots:?}"
    );

    // The retry deletes that lease (a synchronous GC takes the extract snapshot), then unpacks.
    let unpacked = unpack(&env.client, &reference, &snapshotter, &amd64())
        .await
        .expect("unpack after the restart");
    assert!(!unpacked.already);
    assert_eq!(unpacked.chain_ids, vec![layer_digest.clone()]);
    assert_nothing_half_made(&env, &unpacked.chain_ids).await;
    let files = read_files(
        &env.client,
        &reference,
        &snapshotter,
        &amd64(),
        &["/big3.bin"],
    )
    .await
    .expect("read");
    assert_eq!(files[0].as_ref().map(Vec::len), Some(24 << 20));
    env.cleanup().await;
    registry.stop();
}

/// What containerd killed in the middle of a Prepare leaves (overlayfs renamed the new snapshot's
/// directory to its id, the transaction that recorded the id never committed): a directory named
/// by the next id. Every Prepare then fails ("failed to rename ...: file exists") until the
/// snapshotter's Cleanup removes it; the pull cleans up and completes.
#[tokio::test]
async fn a_snapshot_directory_left_by_a_killed_prepare_does_not_stop_the_next_pull() {
    let fixture = Fixture::new(None);
    let registry = Registry::with_app(&fixture).await;
    let env = TestEnv::new().await;
    let snapshotter = libcontainerd_images::snapshotter::choose(&env.client)
        .await
        .expect("snapshotter");
    if snapshotter != libcontainerd_images::snapshotter::OVERLAYFS {
        eprintln!("skipped: containerd chose {snapshotter}, the orphan is overlayfs's");
        env.cleanup().await;
        registry.stop();
        return;
    }
    // A fresh snapshotter hands out id 1 first: the directory a killed first Prepare leaves.
    let snapshots = env
        .dir()
        .join("root/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots");
    assert!(snapshots.is_dir(), "no {}", snapshots.display());
    let orphan = snapshots.join("1");
    std::fs::create_dir_all(orphan.join("fs")).expect("mkdir");
    std::fs::create_dir_all(orphan.join("work")).expect("mkdir");

    let reference = format!("{}/fixture/app:1", registry.addr);
    let pulled = pull(&env.client, &reference, &options(&env))
        .await
        .expect("pull over the orphaned directory");
    let unpacked = pulled.unpacked.expect("unpacked");
    assert_eq!(unpacked.chain_ids, fixture.app_chain_ids());
    assert_nothing_half_made(&env, &unpacked.chain_ids).await;
    let files = read_files(
        &env.client,
        &reference,
        &snapshotter,
        &amd64(),
        &["/app/hello.txt"],
    )
    .await
    .expect("read");
    assert_eq!(files[0].as_deref(), Some(common::image::HELLO.as_bytes()));
    env.cleanup().await;
    registry.stop();
}
