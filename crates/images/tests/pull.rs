//! Pull from a real registry (Debian's docker-registry on 127.0.0.1): a two-layer image, by tag
//! and by digest, an index with two platforms, Bearer tokens, and the failures: registry down,
//! unknown names, a tampered layer, a connection cut mid-blob. After a failure nothing remains.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::image::{Corruption, Fixture};
use common::registry::{free_port, Front, FrontConfig, Registry, OCI_INDEX, OCI_MANIFEST};
use common::TestEnv;
use libcontainerd_images::digest::sha256;
use libcontainerd_images::rootfs::read_files;
use libcontainerd_images::{
    import, pull, save, ImportOptions, Platform, Progress, ProgressState, PullOptions, SaveOptions,
};
use serde_json::json;

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

/// Options with an empty docker config dir of the test's own (not the machine's ~/.docker).
fn options(env: &TestEnv) -> PullOptions {
    PullOptions {
        platform: amd64(),
        docker_config: Some(env.subdir("docker")),
        ..Default::default()
    }
}

type Reports = Arc<Mutex<Vec<Progress>>>;

fn recording(options: &mut PullOptions) -> Reports {
    let reports: Reports = Arc::default();
    let sink = reports.clone();
    options.progress = Some(Arc::new(move |p: &Progress| {
        sink.lock().expect("lock").push(p.clone())
    }));
    reports
}

async fn fails_cleanly(env: &TestEnv, reference: &str, options: &PullOptions, expected: &str) {
    let started = std::time::Instant::now();
    let e = pull(&env.client, reference, options)
        .await
        .err()
        .unwrap_or_else(|| panic!("pull {reference} succeeded"));
    let text = e.to_string();
    eprintln!("{reference} ({:?}): {text}", started.elapsed());
    assert!(text.contains(expected), "{text}");
    assert!(text.starts_with("pull "), "{text}");
    assert!(!text.contains('\n'), "{text}");
    env.assert_clean().await;
}

#[tokio::test]
async fn anonymous_pull_by_tag_and_digest() {
    let fixture = Fixture::new(None);
    let registry = Registry::start(None).await;
    let manifest = registry
        .push_image("fixture/app", &fixture, &fixture.app)
        .await;
    let digest = registry
        .push_manifest("fixture/app", "1", OCI_MANIFEST, &manifest)
        .await;
    let env = TestEnv::new().await;
    let mut options = options(&env);
    let reports = recording(&mut options);
    let reference = format!("{}/fixture/app:1", registry.addr);

    let pulled = pull(&env.client, &reference, &options).await.expect("pull");
    assert_eq!(pulled.name, reference);
    assert_eq!(pulled.target.digest, digest);
    assert_eq!(pulled.target.media_type, OCI_MANIFEST);
    assert_eq!(pulled.manifest, pulled.target);
    assert_eq!(pulled.id, sha256(&fixture.app.config));
    let blob_bytes: usize = fixture.layers.iter().map(|l| l.blob.len()).sum();
    assert_eq!(pulled.downloaded, blob_bytes as u64);
    let unpacked = pulled.unpacked.expect("unpacked");
    assert_eq!(unpacked.chain_ids, fixture.app_chain_ids());
    assert_eq!(env.images().await, vec![reference.clone()]);
    assert_eq!(env.leases().await, Vec::<String>::new());
    assert_eq!(env.ingests().await, Vec::<String>::new());

    // GC labels as import sets them; after the lease, everything is still there.
    let labels = env.labels(&digest).await;
    assert_eq!(labels["containerd.io/gc.ref.content.config"], pulled.id);
    for (i, layer) in fixture.layers.iter().enumerate() {
        assert_eq!(
            labels[&format!("containerd.io/gc.ref.content.l.{i}")],
            layer.digest()
        );
    }
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

    // Progress: each layer waited, downloaded, and ended done with its size.
    let first = std::mem::take(&mut *reports.lock().expect("lock"));
    for (i, layer) in fixture.layers.iter().enumerate() {
        let mine: Vec<_> = first.iter().filter(|p| p.layer == i).collect();
        assert_eq!(mine[0].state, ProgressState::Waiting);
        let last = mine.last().expect("reports");
        assert_eq!(last.state, ProgressState::Done, "{mine:?}");
        assert_eq!(
            (last.done, last.total),
            (layer.blob.len() as u64, layer.blob.len() as u64)
        );
        assert_eq!(last.digest, layer.digest());
    }

    // Again: nothing downloaded, the layers reported present.
    let again = pull(&env.client, &reference, &options)
        .await
        .expect("pull again");
    assert_eq!(again.downloaded, 0);
    assert!(again.unpacked.expect("unpacked").already);
    let reports = reports.lock().expect("lock").clone();
    assert!(reports.iter().any(|p| p.state == ProgressState::Present));

    // By digest, over plain HTTP as asked: stored under the digest reference.
    let by_digest = format!("{}/fixture/app@{digest}", registry.addr);
    let options = PullOptions {
        plain_http: true,
        unpack: false,
        ..options
    };
    let pulled = pull(&env.client, &by_digest, &options)
        .await
        .expect("pull by digest");
    assert_eq!(pulled.name, by_digest);
    assert_eq!(pulled.target.digest, digest);
    assert_eq!(env.images().await.len(), 2);
    env.cleanup().await;
    registry.stop();
}

#[tokio::test]
async fn an_index_gives_the_manifest_for_the_platform() {
    let amd = Fixture::new(None);
    let arm = Fixture::new(Some(Corruption::OtherPlatform));
    let registry = Registry::start(None).await;
    let (entries, index_digest) = registry
        .push_index("fixture/multi", "1", &[(&arm, "arm64"), (&amd, "amd64")])
        .await;
    let arm_only = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entries[0]]}),
    )
    .expect("json");
    registry
        .push_manifest("fixture/multi", "arm", OCI_INDEX, &arm_only)
        .await;

    let env = TestEnv::new().await;
    let reference = format!("{}/fixture/multi:1", registry.addr);
    let pulled = pull(&env.client, &reference, &options(&env))
        .await
        .expect("pull");
    assert_eq!(pulled.target.digest, index_digest);
    assert_eq!(pulled.target.media_type, OCI_INDEX);
    assert_eq!(
        pulled.manifest.digest,
        entries[1]["digest"].as_str().expect("digest")
    );
    assert_eq!(pulled.id, sha256(&amd.app.config));
    assert_eq!(
        pulled.unpacked.expect("unpacked").chain_ids,
        amd.app_chain_ids()
    );
    let labels = env.labels(&index_digest).await;
    assert_eq!(
        labels["containerd.io/gc.ref.content.m.1"],
        pulled.manifest.digest
    );
    // The arm64 config was never fetched.
    assert!(!env.blobs().await.contains(&sha256(&arm.app.config)));

    // Saved and imported elsewhere, it keeps its index as target (the amd64 chain only).
    let saved = save(
        &env.client,
        &[&reference],
        Vec::new(),
        &SaveOptions { platform: amd64() },
    )
    .await
    .expect("save");
    let other = TestEnv::new().await;
    let imported = import(
        &other.client,
        std::io::Cursor::new(saved),
        &ImportOptions::default(),
    )
    .await
    .expect("import");
    assert_eq!(imported[0].names, vec![reference.clone()]);
    assert_eq!(imported[0].target.digest, index_digest);
    other.cleanup().await;
    env.cleanup().await;

    let env = TestEnv::new().await;
    let reference = format!("{}/fixture/multi:arm", registry.addr);
    let expected = format!("no manifest for linux/amd64 in {reference}; it has linux/arm64");
    fails_cleanly(&env, &reference, &options(&env), &expected).await;
    env.cleanup().await;
    registry.stop();
}

#[tokio::test]
async fn registry_failures_are_one_clear_line() {
    let fixture = Fixture::new(None);
    let registry = Registry::with_app(&fixture).await;
    let env = TestEnv::new().await;
    let options = options(&env);
    let addr = &registry.addr;
    fails_cleanly(
        &env,
        &format!("{addr}/fixture/app:nosuch"),
        &options,
        &format!(
            "fetch manifest nosuch from {addr}: not found (MANIFEST_UNKNOWN: manifest unknown)"
        ),
    )
    .await;
    fails_cleanly(
        &env,
        &format!("{addr}/fixture/nosuch:1"),
        &options,
        // distribution 2.8 says MANIFEST_UNKNOWN for an unknown repository too.
        &format!("fetch manifest 1 from {addr}: not found ("),
    )
    .await;
    // Nothing listens there: both schemes are tried (loopback), one line says so.
    let down = format!("127.0.0.1:{}", free_port());
    fails_cleanly(
        &env,
        &format!("{down}/fixture/app:1"),
        &options,
        &format!("cannot reach registry {down} over https or http: Connection refused"),
    )
    .await;

    // A layer whose bytes no longer match its digest: refused, nothing half-stored.
    let layer = fixture.layers[1].digest();
    let path = registry.blob_path(&layer);
    let mut data = std::fs::read(&path).expect("blob");
    data[600] ^= 0xff;
    std::fs::write(&path, data).expect("tamper");
    fails_cleanly(
        &env,
        &format!("{addr}/fixture/app:1"),
        &options,
        &format!("layer {layer} of {addr}/fixture/app:1: digest mismatch: expected {layer}"),
    )
    .await;
    env.cleanup().await;
    registry.stop();
}

#[tokio::test]
async fn a_cut_blob_resumes_with_a_range_request() {
    let fixture = Fixture::new(None);
    let registry = Registry::with_app(&fixture).await;
    let big = fixture.layers[0].digest();
    let front = Front::start(
        &registry.addr,
        FrontConfig {
            cut_blob: Some(big.clone()),
            ..Default::default()
        },
    )
    .await;
    let env = TestEnv::new().await;
    let mut options = options(&env);
    options.plain_http = true;
    let reports = recording(&mut options);
    let reference = format!("{}/fixture/app:1", front.addr);
    let pulled = pull(&env.client, &reference, &options).await.expect("pull");
    assert_eq!(
        pulled.unpacked.expect("unpacked").chain_ids,
        fixture.app_chain_ids()
    );
    let half = fixture.layers[0].blob.len() / 2;
    let requests: Vec<_> = front
        .seen()
        .into_iter()
        .filter(|r| r.contains(&big))
        .collect();
    eprintln!("{requests:?}");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].contains("range=-"), "{requests:?}");
    // The second asks for the rest only (what arrived was written; the offset may be a little
    // less than half if the last piece was in flight).
    let from: usize = requests[1]
        .split("range=bytes=")
        .nth(1)
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.parse().ok())
        .expect("a range request");
    assert!(from > 0 && from <= half, "{from} of {half}");
    let reports = reports.lock().expect("lock").clone();
    assert!(reports
        .iter()
        .any(|p| p.state == ProgressState::Resuming && p.layer == 0));
    assert_eq!(env.ingests().await, Vec::<String>::new());
    env.cleanup().await;

    // Cut every time: the pull gives up after its tries and leaves nothing, not even an ingest.
    let front = Front::start(
        &registry.addr,
        FrontConfig {
            cut_blob: Some(big.clone()),
            cut_times: usize::MAX,
            ..Default::default()
        },
    )
    .await;
    let env = TestEnv::new().await;
    let options = PullOptions {
        plain_http: true,
        docker_config: Some(env.subdir("docker")),
        ..options
    };
    let reference = format!("{}/fixture/app:1", front.addr);
    let expected = format!("layer {big} of {reference}: ");
    fails_cleanly(&env, &reference, &options, &expected).await;
    let e = pull(&env.client, &reference, &options).await.unwrap_err();
    assert!(e.to_string().ends_with("(gave up after 3 tries)"), "{e}");
    env.assert_clean().await;
    let tries = front.seen().iter().filter(|r| r.contains(&big)).count();
    assert_eq!(tries, 6, "3 tries per pull");
    env.cleanup().await;
    registry.stop();
}

#[tokio::test]
async fn bearer_tokens_from_the_realm() {
    let fixture = Fixture::new(None);
    let registry = Registry::with_app(&fixture).await;
    let env = TestEnv::new().await;

    // Anonymous tokens.
    let front = Front::start(
        &registry.addr,
        FrontConfig {
            bearer: Some(("anon-token".into(), None)),
            ..Default::default()
        },
    )
    .await;
    let mut options = options(&env);
    options.unpack = false;
    let reference = format!("{}/fixture/app:1", front.addr);
    pull(&env.client, &reference, &options)
        .await
        .expect("pull with an anonymous token");
    let seen = front.seen();
    assert!(
        seen.iter()
            .any(|r| r.starts_with("GET /token?") && r.contains("auth=-")),
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .any(|r| r.contains("/blobs/") && r.contains("auth=Bearer anon-token")));
    let tokens = seen.iter().filter(|r| r.starts_with("GET /token?")).count();
    assert_eq!(tokens, 1, "one token serves the whole pull: {seen:?}");
    drop(front);
    libcontainerd_images::store::remove(&env.client, &reference, true)
        .await
        .expect("remove");

    // Tokens only for a user: the credentials come from a docker config dir.
    let front = Front::start(
        &registry.addr,
        FrontConfig {
            bearer: Some(("user-token".into(), Some(("alice".into(), "s3cret".into())))),
            ..Default::default()
        },
    )
    .await;
    let reference = format!("{}/fixture/app:1", front.addr);
    fails_cleanly(
        &env,
        &reference,
        &options,
        "the token server answered 401 Unauthorized",
    )
    .await;
    let config_dir: PathBuf = env.subdir("alice");
    write_docker_config(&config_dir, &front.addr, "alice", "s3cret");
    options.docker_config = Some(config_dir);
    pull(&env.client, &reference, &options)
        .await
        .expect("pull with a user's token");
    assert!(front
        .seen()
        .iter()
        .any(|r| r.contains("auth=Bearer user-token")));
    env.cleanup().await;
    registry.stop();
}

pub fn write_docker_config(dir: &std::path::Path, registry: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = json!({"auths": {registry: {"auth": auth}}});
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
}

#[tokio::test]
async fn a_loopback_registry_over_https_with_a_self_signed_certificate() {
    let fixture = Fixture::new(None);
    let registry = Registry::start_with(None, true).await;
    let manifest = registry
        .push_image("fixture/app", &fixture, &fixture.app)
        .await;
    registry
        .push_manifest("fixture/app", "1", OCI_MANIFEST, &manifest)
        .await;
    let env = TestEnv::new().await;
    let reference = format!("{}/fixture/app:1", registry.addr);
    // docker's rule: loopback is insecure, HTTPS without certificate checks comes first.
    let pulled = pull(&env.client, &reference, &options(&env))
        .await
        .expect("pull over https");
    assert_eq!(
        pulled.unpacked.expect("unpacked").chain_ids,
        fixture.app_chain_ids()
    );
    libcontainerd_images::store::remove(&env.client, &reference, true)
        .await
        .expect("remove");
    // Plain HTTP when asked: the TLS server refuses it (Go answers 400).
    let plain = PullOptions {
        plain_http: true,
        ..options(&env)
    };
    fails_cleanly(&env, &reference, &plain, "400 Bad Request").await;
    env.cleanup().await;
    registry.stop();
}
