//! `docker commit` through the library on a real containerd: a container from the fixture image
//! (OCI layout) writes, changes and deletes files; its commit is a gzip layer with its diff ID
//! label, an OCI manifest and config with a history entry, unpacked on the image's chain so that
//! a container from it starts at once and sees the changes (the deletion as a whiteout). A commit
//! that fails after its diff, or is aborted, leaves no lease, blob, ingest, image or snapshot.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::image::{Fixture, APP, HELLO};
use common::TestEnv;
use libcontainerd::{Container, Id, Runtime, StdioConfig};
use libcontainerd_images::change::parse_all;
use libcontainerd_images::gc::UNCOMPRESSED;
use libcontainerd_images::media::{OCI_LAYER_GZIP, OCI_MANIFEST};
use libcontainerd_images::snapshotter::{NATIVE, OVERLAYFS};
use libcontainerd_images::{import, prepare, store, Commit, CommitOptions, ImportOptions};
use libcontainerd_images::{Platform, RunOptions};
use tokio::io::AsyncReadExt;

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

/// Container `id` from `image` (the image's entrypoint `sh -c` runs `script` as root), run to its
/// end; its output.
async fn run(
    env: &TestEnv,
    snapshotter: &str,
    image: &str,
    id: &str,
    script: &str,
) -> (Container, String) {
    let id = Id::new(id).expect("test setup");
    let options = RunOptions {
        args: vec![script.to_string()],
        user: Some("0".into()),
        snapshotter: Some(snapshotter.into()),
        platform: Some(amd64()),
        ..Default::default()
    };
    let prepared = prepare(&env.client, image, &id, &options)
        .await
        .expect("test setup");
    let spec = prepared.spec.clone().build().expect("test setup");
    let container = prepared
        .create(
            &env.client,
            &id,
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("test setup");
    let (task, mut io) = container
        .spawn(None, &StdioConfig::default())
        .await
        .expect("test setup");
    let mut out = String::new();
    if let Some(mut stdout) = io.stdout.take() {
        stdout.read_to_string(&mut out).await.expect("test setup");
    }
    task.wait().await.expect("test setup");
    task.delete().await.expect("test setup");
    (container, out)
}

#[tokio::test]
async fn a_commit_is_a_layer_on_the_image_and_runs_at_once() {
    commit_and_run(OVERLAYFS).await;
}

#[tokio::test]
async fn a_commit_on_the_native_snapshotter() {
    commit_and_run(NATIVE).await;
}

async fn commit_and_run(snapshotter: &str) {
    let env = TestEnv::new().await;
    let fixture = Fixture::new(None);
    import(
        &env.client,
        std::io::Cursor::new(fixture.oci_layout(None)),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let (writer, _) = run(
        &env,
        snapshotter,
        APP,
        "writer",
        "echo new > /app/new.txt; echo more >> /etc/group; /bin/busybox rm /app/hello.txt",
    )
    .await;
    let snapshot = writer.snapshot().cloned().unwrap();
    let before = env.blobs().await;
    let images = env.images().await;

    // An aborted commit and one whose finish fails (a bad name, found after the diff) leave
    // nothing of theirs.
    let mut aborted = Commit::begin(&env.client, &snapshot).await.unwrap();
    assert_eq!(aborted.base_image(), APP);
    aborted.diff().await.unwrap();
    aborted.abort().await;
    let mut failed = Commit::begin(&env.client, &snapshot).await.unwrap();
    failed.diff().await.unwrap();
    let bad = CommitOptions {
        reference: Some("Not A Name".into()),
        ..Default::default()
    };
    failed.finish(&bad).await.unwrap_err();
    assert_eq!(env.leases().await, Vec::<String>::new(), "leases left");
    assert_eq!(env.ingests().await, Vec::<String>::new(), "ingests left");
    assert_eq!(env.blobs().await, before, "blobs left");
    assert_eq!(env.images().await, images, "images left");

    let mut commit = Commit::begin(&env.client, &snapshot).await.unwrap();
    let mut config = libcontainerd_images::ContainerConfig::default();
    let base = commit.base_config();
    config.entrypoint = Some(base.entrypoint.clone());
    config.env = Some(base.env.clone());
    config.cmd = Some(vec!["cat /app/new.txt".into()]);
    commit.diff().await.unwrap();
    let options = CommitOptions {
        reference: Some("committed:1".into()),
        author: "Tester <t@example.com>".into(),
        comment: "a message".into(),
        created_by: "sh -c write".into(),
        config,
        changes: parse_all(&["ENV COMMITTED=yes".into()]).unwrap(),
    };
    let committed = commit.finish(&options).await.unwrap();
    assert_eq!(committed.name, "docker.io/library/committed:1");
    assert_eq!(committed.untagged, None);
    assert_eq!(committed.layer.media_type, OCI_LAYER_GZIP);
    assert_eq!(
        env.labels(&committed.layer.digest).await.get(UNCOMPRESSED),
        Some(&committed.diff_id)
    );
    assert_eq!(env.leases().await, Vec::<String>::new(), "leases left");

    let details = store::inspect(&env.client, "committed:1", &amd64())
        .await
        .unwrap();
    assert_eq!(details.id, committed.id);
    assert_eq!(details.manifest_descriptor.media_type, OCI_MANIFEST);
    assert_eq!(details.layers.len(), 3);
    assert_eq!(details.config.diff_ids.last(), Some(&committed.diff_id));
    assert_eq!(details.config.author, "Tester <t@example.com>");
    assert_eq!(details.config.comment, "a message");
    assert!(details.config.env.contains(&"COMMITTED=yes".to_string()));
    // Unpacked: the new layer's snapshot is there before any run asks for it.
    let chain = libcontainerd_images::digest::chain_ids(&details.config.diff_ids);
    assert!(env
        .snapshots(snapshotter)
        .await
        .contains(chain.last().unwrap()));

    let (reader, out) = run(
        &env,
        snapshotter,
        "committed:1",
        "reader",
        "cat /app/new.txt; /bin/busybox tail -n 1 /etc/group; ls /app; echo $COMMITTED",
    )
    .await;
    assert_eq!(out, "new\nmore\nnew.txt\nyes\n");
    // The image it was made from is as it was.
    let (original, out) = run(
        &env,
        snapshotter,
        APP,
        "original",
        "cat /app/hello.txt; ls /app",
    )
    .await;
    assert_eq!(out, format!("{HELLO}hello.txt\n"));

    for c in [writer, reader, original] {
        c.delete().await.unwrap();
    }
    for name in env.images().await {
        store::remove(&env.client, &name, true).await.unwrap();
    }
    env.assert_clean().await;
    env.cleanup().await;
}
