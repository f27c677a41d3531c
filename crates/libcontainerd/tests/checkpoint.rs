//! Checkpoints against a real containerd: the content-store round trip (upload for a restore,
//! streamed extraction, blob deletion), every bad directory, and a real CRIU dump and restore where
//! `criu check` passes on this kernel (skipped with the reason elsewhere).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestEnv;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{
    InfoRequest, ListContentRequest, ListRequest, ListStatusesRequest,
};
use libcontainerd::checkpoint::{restore_descriptor, CRIU_INVENTORY};
use libcontainerd::raw::{checkpoint_descriptor, extract_checkpoint};
use libcontainerd::{
    Client, Container, ErrorKind, Runtime, StdioConfig, Task, TaskStatus,
    CRIU_CHECKPOINT_MEDIA_TYPE,
};

/// Why CRIU cannot checkpoint on this machine, if it cannot.
fn criu_unusable() -> Option<String> {
    match std::process::Command::new("criu").arg("check").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr);
            // The first error is the cause; later ones are its consequences.
            let first = text
                .lines()
                .find(|l| l.contains("Error") && !l.contains("exited, status="));
            Some(format!(
                "criu check failed: {}",
                first.unwrap_or("no output").trim()
            ))
        }
        Err(e) => Some(format!("criu check failed: cannot run criu: {e}")),
    }
}

fn request<T>(client: &Client, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "containerd-namespace",
        client
            .namespace()
            .as_str()
            .parse()
            .expect("namespace header"),
    );
    request
}

/// Digests in the namespace's content store.
async fn blobs(client: &Client) -> Vec<String> {
    let mut stream = ContentClient::new(libcontainerd::raw::channel(client))
        .list(request(client, ListContentRequest { filters: vec![] }))
        .await
        .expect("list content")
        .into_inner();
    let mut digests = vec![];
    while let Some(page) = stream.message().await.expect("list content") {
        digests.extend(page.info.into_iter().map(|i| i.digest));
    }
    digests
}

/// Uploads in progress (ingests) and leases: a finished operation leaves neither.
async fn ingests_and_leases(client: &Client) -> (usize, usize) {
    let statuses = ContentClient::new(libcontainerd::raw::channel(client))
        .list_statuses(request(client, ListStatusesRequest { filters: vec![] }))
        .await
        .expect("list ingests and leases")
        .into_inner()
        .statuses
        .len();
    let leases = LeasesClient::new(libcontainerd::raw::channel(client))
        .list(request(client, ListRequest { filters: vec![] }))
        .await
        .expect("list ingests and leases")
        .into_inner()
        .leases
        .len();
    (statuses, leases)
}

/// A directory shaped like CRIU's output: an inventory, a big pages file, a subdirectory, a link.
fn fake_checkpoint(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).expect("write the fake checkpoint");
    std::fs::write(dir.join(CRIU_INVENTORY), b"not really criu")
        .expect("write the fake checkpoint");
    let pages: Vec<u8> = (0..5 * 1024 * 1024 + 17)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(dir.join("pages-1.img"), pages).expect("write the fake checkpoint");
    std::fs::write(dir.join("sub/fs-1.img"), b"fs").expect("write the fake checkpoint");
    std::os::unix::fs::symlink("pages-1.img", dir.join("pages.link"))
        .expect("write the fake checkpoint");
}

fn assert_same_tree(a: &Path, b: &Path) {
    let mut names_a: Vec<_> = std::fs::read_dir(a)
        .expect("compare trees")
        .map(|e| e.expect("compare trees").file_name())
        .collect();
    let mut names_b: Vec<_> = std::fs::read_dir(b)
        .expect("compare trees")
        .map(|e| e.expect("compare trees").file_name())
        .collect();
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b, "{} vs {}", a.display(), b.display());
    for name in names_a {
        let (pa, pb) = (a.join(&name), b.join(&name));
        let meta = std::fs::symlink_metadata(&pa).expect("compare trees");
        if meta.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&pa).expect("compare trees"),
                std::fs::read_link(&pb).expect("compare trees")
            );
        } else if meta.is_dir() {
            assert_same_tree(&pa, &pb);
        } else {
            assert_eq!(
                std::fs::read(&pa).expect("compare trees"),
                std::fs::read(&pb).expect("compare trees"),
                "{name:?}"
            );
        }
    }
}

async fn run(env: &TestEnv, id: &str, args: &[&str]) -> (Container, Task) {
    let spec = env.spec(args).build().expect("start the container");
    let container = env
        .client
        .new_container(
            &TestEnv::id(id),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("start the container");
    let task = container
        .start(None, &StdioConfig::default(), |_| Ok(()))
        .await
        .expect("start the container");
    (container, task)
}

#[tokio::test]
async fn a_checkpoint_dir_round_trips_through_the_content_store() {
    let env = TestEnv::new().await;
    let source = env.dir().join("cp-src");
    fake_checkpoint(&source);

    let blob = restore_descriptor(&env.client, &source).await.unwrap();
    let descriptor = checkpoint_descriptor(&blob).clone();
    assert_eq!(descriptor.media_type, CRIU_CHECKPOINT_MEDIA_TYPE);
    assert!(descriptor.digest.starts_with("sha256:"), "{descriptor:?}");
    assert!(descriptor.size > 5 * 1024 * 1024, "{descriptor:?}");
    let info = ContentClient::new(libcontainerd::raw::channel(&env.client))
        .info(request(
            &env.client,
            InfoRequest {
                digest: descriptor.digest.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.size, descriptor.size);
    assert!(
        info.labels.contains_key("containerd.io/gc.root"),
        "{info:?}"
    );

    // Uploading the same directory again finds the same blob.
    let again = restore_descriptor(&env.client, &source).await.unwrap();
    assert_eq!(again.digest(), blob.digest());

    let target = env.dir().join("cp-dst");
    std::fs::create_dir(&target).unwrap();
    extract_checkpoint(&env.client, &descriptor, &target)
        .await
        .unwrap();
    assert_same_tree(&source, &target);

    blob.delete().await.unwrap();
    again.delete().await.unwrap();
    assert!(blobs(&env.client).await.is_empty());
    assert_eq!(ingests_and_leases(&env.client).await, (0, 0));
    let err = extract_checkpoint(&env.client, &descriptor, &env.dir().join("cp-gone"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    env.cleanup().await;
}

#[tokio::test]
async fn restore_from_something_that_is_not_a_checkpoint_is_refused() {
    let env = TestEnv::new().await;
    let empty = env.dir().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = restore_descriptor(&env.client, &empty).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("is not a checkpoint"), "{err}");

    let err = restore_descriptor(&env.client, &env.dir().join("missing"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let file = env.dir().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = restore_descriptor(&env.client, &file).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    fake_checkpoint(&env.dir().join("real"));
    let sneaky = env.dir().join("empty/../real");
    let err = restore_descriptor(&env.client, &sneaky).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains(".."), "{err}");

    assert!(blobs(&env.client).await.is_empty());
    assert_eq!(ingests_and_leases(&env.client).await, (0, 0));
    env.cleanup().await;
}

#[tokio::test]
async fn checkpoint_directories_are_checked_before_the_task_is_touched() {
    let env = TestEnv::new().await;
    let (c, task) = run(&env, "keep", &["sleep", "600"]).await;

    let full = env.dir().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("something"), "x").unwrap();
    let err = task.create_checkpoint(&full, true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert!(full.join("something").exists(), "the user's files stay");

    for bad in [PathBuf::from("../x"), env.dir().join("a/../b")] {
        let err = task.create_checkpoint(&bad, true).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains(".."), "{err}");
    }
    assert!(!env.dir().join("b").exists());
    // With exit=true a dump would have stopped it: nothing ran.
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
    task.force_delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn checkpoint_of_a_task_that_has_exited_fails_and_leaves_nothing() {
    let env = TestEnv::new().await;
    let (c, task) = run(&env, "gone", &["true"]).await;
    task.wait().await.unwrap();
    let dir = env.dir().join("cp-exited");
    let err = task.create_checkpoint(&dir, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("not running"), "{err}");
    assert!(!dir.exists(), "a failed checkpoint leaves no directory");
    assert!(blobs(&env.client).await.is_empty());
    assert_eq!(ingests_and_leases(&env.client).await, (0, 0));
    task.delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_dump_that_criu_cannot_do_is_a_clear_error() {
    if criu_unusable().is_none() {
        eprintln!(
            "skipped: criu works here; the failing-dump path needs a kernel criu cannot handle"
        );
        return;
    }
    let env = TestEnv::new().await;
    let (c, task) = run(&env, "nocriu", &["sleep", "600"]).await;
    let dir = env.dir().join("cp-nocriu");
    let err = task.create_checkpoint(&dir, true).await.unwrap_err();
    eprintln!("failed dump: {err}");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("criu"), "{err}");
    assert!(!dir.exists(), "a failed checkpoint leaves no directory");
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
    assert!(blobs(&env.client).await.is_empty());
    assert_eq!(ingests_and_leases(&env.client).await, (0, 0));
    task.force_delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn criu_checkpoint_and_restore_of_a_counter() {
    if let Some(reason) = criu_unusable() {
        eprintln!("skipped: {reason}");
        return;
    }
    let env = TestEnv::new().await;
    // Counts in memory and records the count in the rootfs: after a restore it goes on from where it
    // was, not from zero.
    let script = "i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.1; done";
    let (c, task) = run(&env, "cnt", &["sh", "-c", script]).await;
    let count_file = env.rootfs.join("count");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dir = env.dir().join("cp-cnt");
    task.create_checkpoint(&dir, true).await.unwrap();
    assert!(dir.join(CRIU_INVENTORY).is_file());
    assert!(
        blobs(&env.client).await.is_empty(),
        "checkpoint blobs are deleted"
    );
    assert_eq!(ingests_and_leases(&env.client).await, (0, 0));
    task.wait().await.unwrap();
    task.delete().await.unwrap();
    let at_dump: u64 = std::fs::read_to_string(&count_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let restored = c
        .start(Some(&dir), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now: u64 = std::fs::read_to_string(&count_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        now > at_dump,
        "restored counter {now} did not go on from {at_dump}"
    );
    assert!(
        blobs(&env.client).await.is_empty(),
        "the restore blob is deleted"
    );
    restored.force_delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

async fn created(env: &TestEnv, id: &str) -> Container {
    let spec = env
        .spec(&["sleep", "600"])
        .build()
        .expect("create the container");
    env.client
        .new_container(
            &TestEnv::id(id),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("create the container")
}

#[tokio::test]
async fn starting_from_a_directory_that_is_not_a_checkpoint_is_refused() {
    let env = TestEnv::new().await;
    let c = created(&env, "rs").await;
    let empty = env.dir().join("not-a-checkpoint");
    std::fs::create_dir(&empty).unwrap();
    let err = c
        .start(Some(&empty), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("is not a checkpoint"), "{err}");

    fake_checkpoint(&env.dir().join("real"));
    let sneaky = empty.join("../real");
    let err = c
        .start(Some(&sneaky), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    assert_eq!(c.task().await.unwrap_err().kind(), ErrorKind::NotFound);
    let left: Vec<_> = std::fs::read_dir(c.bundle_dir()).unwrap().collect();
    assert!(
        left.is_empty(),
        "no FIFOs are made for a refused restore: {left:?}"
    );
    assert!(blobs(&env.client).await.is_empty());
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_checkpoint_runc_cannot_restore_fails_and_its_blob_is_deleted() {
    let env = TestEnv::new().await;
    let c = created(&env, "bad-restore").await;
    let dir = env.dir().join("junk-checkpoint");
    // CRIU-shaped, but junk: containerd accepts and unpacks the blob, runc's restore fails.
    fake_checkpoint(&dir);
    let err = c
        .start(Some(&dir), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::NotImplemented, "{err}");
    assert!(err.to_string().contains("bad-restore"), "{err}");
    assert!(err.to_string().contains("restore"), "{err}");
    assert_eq!(c.task().await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(
        blobs(&env.client).await.is_empty(),
        "the restore blob is deleted"
    );
    assert_eq!(ingests_and_leases(&env.client).await, (0, 0));
    assert!(
        dir.join(CRIU_INVENTORY).exists(),
        "the user's checkpoint stays"
    );
    c.delete().await.unwrap();
    env.cleanup().await;
}
