//! Checkpoints against a real containerd: the content-store round trip (upload for a restore,
//! streamed extraction, blob deletion), every bad directory, and a real CRIU dump and restore where
//! `criu check` passes on this kernel (skipped with the reason elsewhere).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{eventually, TestEnv};
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
    run_with(env, id, args, &Runtime::default()).await
}

async fn run_with(env: &TestEnv, id: &str, args: &[&str], runtime: &Runtime) -> (Container, Task) {
    let spec = env.spec(args).build().expect("start the container");
    let container = env
        .client
        .new_container(&TestEnv::id(id), &spec, runtime, &HashMap::new())
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

/// Whether the runc shim passes the runtime options' criu_path on to runc: containerd 1.6's does;
/// 1.7 dropped it (runc 1.2 deprecates `--criu`), so criu comes from the shim's PATH there.
async fn shim_honours_criu_path(client: &Client) -> bool {
    let version = client.version().await.expect("containerd version").version;
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '~', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) < (1, 7)
}

/// A stand-in criu at `dir/name` that fails as bookworm's 3.17 does on this kernel.
fn broken_criu(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(
        &path,
        "#!/bin/sh\necho 'Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed' >&2\nexit 1\n",
    )
    .expect("write the broken criu");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("write the broken criu");
    path
}

#[tokio::test]
async fn a_dump_that_criu_cannot_do_is_a_clear_error() {
    // The container names its own criu (the runc options' criu_path): a broken one here, so this
    // runs whether or not the machine's criu works.
    let env = TestEnv::new().await;
    if !shim_honours_criu_path(&env.client).await {
        eprintln!(
            "skipped: containerd 1.7's runc shim ignores criu_path (it runs criu from its PATH)"
        );
        env.cleanup().await;
        return;
    }
    let criu = broken_criu(env.dir(), "broken-criu");
    let runtime = Runtime::default().with_criu(criu.to_string_lossy());
    let (c, task) = run_with(&env, "nocriu", &["sleep", "600"], &runtime).await;
    let dir = env.dir().join("cp-nocriu");
    let err = task.create_checkpoint(&dir, true).await.unwrap_err();
    eprintln!("failed dump: {err}");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::FailedPrecondition | ErrorKind::Unavailable
        ),
        "{err}"
    );
    assert!(err.to_string().contains("criu"), "{err}");
    assert!(!dir.exists(), "a failed checkpoint leaves no directory");
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
    assert!(blobs(&env.client).await.is_empty());
    assert_eq!(ingests_and_leases(&env.client).await, (0, 0));
    task.force_delete().await.unwrap();
    c.delete().await.unwrap();

    // A criu_path that names nothing: runc cannot run it, and the error says so.
    let runtime = Runtime::default().with_criu("/nonexistent/criu");
    let (c, task) = run_with(&env, "nocriu2", &["sleep", "600"], &runtime).await;
    let err = task.create_checkpoint(&dir, false).await.unwrap_err();
    eprintln!("missing criu: {err}");
    assert!(err.to_string().contains("criu"), "{err}");
    assert!(!dir.exists(), "a failed checkpoint leaves no directory");
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
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
    // Each count replaces the file whole (a rename), so a reader never sees it half-written, even
    // when the dump stops the process between the write and the rename.
    let script =
        "i=0; while :; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; sleep 0.1; done";
    let (c, task) = run(&env, "cnt", &["sh", "-c", script]).await;
    let count_file = env.rootfs.join("count");
    let count = || -> Option<u64> {
        std::fs::read_to_string(&count_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    eventually(Duration::from_secs(30), || count().filter(|n| *n > 3))
        .await
        .expect("the counter counts");
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
    let at_dump = count().expect("the count at the dump");

    let restored = c
        .start(Some(&dir), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap();
    // It goes on from where it was: past the count at the dump, never back from zero.
    let now = eventually(Duration::from_secs(30), || {
        count().filter(|n| *n > at_dump + 2)
    })
    .await
    .unwrap_or_else(|| panic!("the restored counter did not go on from {at_dump}"));
    assert!(now > at_dump);
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

/// The lines of a counter's log in the rootfs (one number per line), ignoring a last partial line.
fn counts(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Wait (without a time bound that could fail a slow machine: 60 s) until `path` holds more than
/// `n` counts.
async fn wait_for_counts(path: &Path, n: usize) -> Vec<u64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = counts(path);
        if found.len() > n {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never got past {n} counts: {found:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A counter that appends each value to `/<name>` (reopening it each time, so no file is held).
fn counter(name: &str) -> String {
    format!("i=0; while :; do i=$((i+1)); echo $i >> /{name}; sleep 0.05; done")
}

fn assert_consecutive(values: &[u64], what: &str) {
    for (n, pair) in values.windows(2).enumerate() {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{what}: gap or restart at line {n}: {values:?}"
        );
    }
}

async fn created_with(env: &TestEnv, id: &str, args: &[&str]) -> Container {
    let spec = env.spec(args).build().expect("create the container");
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
async fn a_restored_counter_goes_on_from_its_checkpoint_in_the_same_container() {
    if let Some(reason) = criu_unusable() {
        eprintln!("skipped: {reason}");
        return;
    }
    let env = TestEnv::new().await;
    let log = env.rootfs.join("same.log");
    let (c, task) = run(&env, "same", &["sh", "-c", &counter("same.log")]).await;
    wait_for_counts(&log, 5).await;
    let dir = env.dir().join("cp-same");
    task.create_checkpoint(&dir, true).await.unwrap();
    task.wait().await.unwrap();
    task.delete().await.unwrap();
    let at_dump = counts(&log);
    assert_consecutive(&at_dump, "before the restore");
    let listing = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let images = listing(&dir);

    let restored = c
        .start(Some(&dir), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap();
    assert_eq!(restored.status().await.unwrap(), TaskStatus::Running);
    // CRIU read the images in place and wrote nothing among them (its log went elsewhere).
    assert_eq!(listing(&dir), images);
    assert!(blobs(&env.client).await.is_empty());
    let after = wait_for_counts(&log, at_dump.len() + 5).await;
    // One unbroken sequence: the restored process went on from the value it had at the dump,
    // neither from 1 nor with a gap.
    assert_consecutive(&after, "across the restore");
    restored.force_delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn leave_running_keeps_the_task_and_a_new_container_restores_the_earlier_checkpoint() {
    if let Some(reason) = criu_unusable() {
        eprintln!("skipped: {reason}");
        return;
    }
    let env = TestEnv::new().await;
    let log = env.rootfs.join("left.log");
    let (c, task) = run(&env, "left", &["sh", "-c", &counter("left.log")]).await;
    wait_for_counts(&log, 5).await;
    let before = counts(&log).len();
    let dir = env.dir().join("cp-left");
    task.create_checkpoint(&dir, false).await.unwrap();
    let at_return = counts(&log).len();
    assert!(dir.join(CRIU_INVENTORY).is_file());
    // --leave-running: the task runs on and keeps counting.
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
    let went_on = wait_for_counts(&log, at_return + 5).await;
    assert_consecutive(&went_on, "the task left running");
    task.force_delete().await.unwrap();
    c.delete().await.unwrap();
    let ended_at = counts(&log).len();

    // A new container, restored from the checkpoint taken earlier: it counts from the dump's value
    // (somewhere between the counts seen before and after the checkpoint call), not from where
    // the first container ended or from 1.
    let fresh = created_with(&env, "left-new", &["sh", "-c", &counter("left.log")]).await;
    let restored = fresh
        .start(Some(&dir), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap();
    let after = wait_for_counts(&log, ended_at + 5).await;
    let resumed = &after[ended_at..];
    assert_consecutive(resumed, "the restored counter");
    let first = resumed[0] as usize;
    assert!(
        first > before && first <= at_return + 1,
        "restored counter started at {first}, the checkpoint was taken between {before} and {at_return}"
    );
    restored.force_delete().await.unwrap();
    fresh.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn an_open_file_and_a_child_process_are_restored() {
    if let Some(reason) = criu_unusable() {
        eprintln!("skipped: {reason}");
        return;
    }
    let env = TestEnv::new().await;
    // The parent writes through a descriptor it holds open; its child counts into another file.
    let script = "exec 3>>/held.log; (j=0; while :; do j=$((j+1)); echo $j >> /child.log; sleep 0.05; done) & i=0; while :; do i=$((i+1)); echo $i >&3; sleep 0.05; done";
    let held = env.rootfs.join("held.log");
    let child = env.rootfs.join("child.log");
    let (c, task) = run(&env, "files", &["sh", "-c", script]).await;
    wait_for_counts(&held, 5).await;
    wait_for_counts(&child, 5).await;
    let dir = env.dir().join("cp-files");
    task.create_checkpoint(&dir, true).await.unwrap();
    task.wait().await.unwrap();
    task.delete().await.unwrap();
    let (held_at_dump, child_at_dump) = (counts(&held).len(), counts(&child).len());

    let restored = c
        .start(Some(&dir), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap();
    let held_after = wait_for_counts(&held, held_at_dump + 5).await;
    let child_after = wait_for_counts(&child, child_at_dump + 5).await;
    // The descriptor came back at the file's end (no overwritten or repeated lines), and the
    // child came back too, counting on from its own value.
    assert_consecutive(&held_after, "the held file");
    assert_consecutive(&child_after, "the child's file");
    restored.force_delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

/// A Backend that records (container, event, exit code).
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<(String, libcontainerd::EventType, u32)>>);

impl libcontainerd::Backend for Events {
    fn process_event(
        &self,
        container_id: &str,
        event: libcontainerd::EventType,
        info: libcontainerd::EventInfo,
    ) -> Result<(), libcontainerd::BackendError> {
        self.0
            .lock()
            .expect("events lock")
            .push((container_id.to_string(), event, info.exit_code));
        Ok(())
    }
}

#[tokio::test]
async fn the_backend_sees_the_restored_task_start_and_exit() {
    if let Some(reason) = criu_unusable() {
        eprintln!("skipped: {reason}");
        return;
    }
    use libcontainerd::{EventMonitor, EventType};
    let env = TestEnv::new().await;
    let events = std::sync::Arc::new(Events::default());
    let backend: std::sync::Arc<dyn libcontainerd::Backend> = events.clone();
    let monitor = EventMonitor::start(env.client.clone(), backend);
    tokio::time::timeout(Duration::from_secs(60), monitor.ready())
        .await
        .expect("monitor live in time")
        .expect("monitor running");
    // Exits 7 once /go exists, so the restored task ends when the test says.
    let script = "while [ ! -e /go ]; do sleep 0.05; done; exit 7";
    let (c, task) = run(&env, "evt", &["sh", "-c", script]).await;
    let dir = env.dir().join("cp-evt");
    task.create_checkpoint(&dir, true).await.unwrap();
    task.wait().await.unwrap();
    task.delete().await.unwrap();
    let before = events.0.lock().expect("events lock").len();

    let restored = c
        .start(Some(&dir), &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap();
    std::fs::write(env.rootfs.join("go"), "").unwrap();
    let status = restored.wait().await.unwrap();
    assert_eq!(status.code, 7);
    let id = c.id().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen: Vec<_> = events.0.lock().expect("events lock")[before..]
            .iter()
            .filter(|(c, _, _)| *c == id)
            .cloned()
            .collect();
        let kinds: Vec<EventType> = seen.iter().map(|(_, e, _)| *e).collect();
        if kinds.contains(&EventType::Exit) {
            assert!(kinds.contains(&EventType::Create), "{seen:?}");
            assert!(
                seen.iter()
                    .any(|(_, e, code)| *e == EventType::Exit && *code == 7),
                "{seen:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restored task's exit never reached the Backend: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    monitor.stop();
    restored.delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn checkpoint_of_a_paused_task_is_refused_and_it_stays_paused() {
    let env = TestEnv::new().await;
    let (c, task) = run(&env, "paused", &["sleep", "600"]).await;
    task.pause().await.unwrap();
    let dir = env.dir().join("cp-paused");
    let err = task.create_checkpoint(&dir, true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("paused"), "{err}");
    assert!(!dir.exists());
    assert_eq!(task.status().await.unwrap(), TaskStatus::Paused);
    task.resume().await.unwrap();
    task.force_delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_dump_into_a_full_disk_fails_and_the_task_runs_on() {
    if let Some(reason) = criu_unusable() {
        eprintln!("skipped: {reason}");
        return;
    }
    let env = TestEnv::new().await;
    // A tiny tmpfs in a private mount namespace would hide it from the shim, so it is mounted on
    // the host under the test's own directory and unmounted before the end.
    let small = env.dir().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "lcd-test-small"])
        .arg(&small)
        .status()
        .expect("run mount");
    assert!(mounted.success(), "mount a small tmpfs");
    // Holds 8 MiB in memory: its pages cannot fit in 64 KiB.
    let script = "x=$(head -c 8000000 /dev/zero | tr '\\0' a); echo ready > /big.ready; while :; do sleep 1; done";
    let (c, task) = run(&env, "full", &["sh", "-c", script]).await;
    let ready = env.rootfs.join("big.ready");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the container never got ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = small.join("cp");
    let result = task.create_checkpoint(&dir, true).await;
    let status = task.status().await.unwrap();
    let left = std::fs::read_dir(&small).unwrap().count();
    let unmounted = std::process::Command::new("umount")
        .arg(&small)
        .status()
        .expect("run umount");
    assert!(unmounted.success());
    let err = result.unwrap_err();
    eprintln!("full disk: {err}");
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_eq!(status, TaskStatus::Running, "the task runs on");
    assert_eq!(left, 0, "the partial checkpoint is removed");
    task.force_delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}
