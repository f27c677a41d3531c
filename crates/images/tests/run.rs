//! Containers run from an image: each on a snapshot of its own (copy-on-write), configured from the
//! image's config, and removed with its snapshot.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::image::{Fixture, APP, HELLO};
use common::TestEnv;
use libcontainerd::{Container, Id, Runtime, Snapshot, SpecBuilder, StdioConfig};
use libcontainerd_images::config::{process_args, process_cwd, process_env};
use libcontainerd_images::rootfs::{image_user, prepare_snapshot, read_files};
use libcontainerd_images::snapshotter::OVERLAYFS;
use libcontainerd_images::store::image_config;
use libcontainerd_images::{import, unpack, ImportOptions, Lease, Platform};
use tokio::io::AsyncReadExt;

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

/// Container `id` on its own snapshot of APP, running `args` (the image's command when empty) as
/// `user` (the image's user when `None`).
async fn container(env: &TestEnv, id: &str, args: &[&str], user: Option<(u32, u32)>) -> Container {
    let config = image_config(&env.client, APP, &amd64())
        .await
        .expect("test setup");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let argv = process_args(&config, None, &args).expect("test setup");
    let (uid, gid) = match user {
        Some(ids) => ids,
        None => {
            let u = image_user(&env.client, APP, OVERLAYFS, &amd64(), &config.user)
                .await
                .expect("test setup");
            (u.uid, u.gid)
        }
    };
    let mut spec = SpecBuilder::on_snapshot()
        .args(argv)
        .cwd(process_cwd(&config, None))
        .user(uid, gid);
    for entry in process_env(&config.env, &[]) {
        spec = spec.env(entry);
    }
    let spec = spec.build().expect("test setup");
    // The lease holds the new snapshot until the container record does.
    let lease = Lease::create(&env.client, "test-run", Duration::from_secs(60))
        .await
        .expect("test setup");
    prepare_snapshot(&lease, OVERLAYFS, id, APP, &amd64())
        .await
        .expect("test setup");
    let snapshot = Snapshot {
        snapshotter: OVERLAYFS.to_string(),
        key: id.to_string(),
        image: Some(APP.to_string()),
    };
    let c = env
        .client
        .new_container_on_snapshot(
            &Id::new(id).expect("test setup"),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
            &snapshot,
        )
        .await
        .expect("test setup");
    lease.release().await.expect("test setup");
    c
}

/// Run `c`'s task to its end; its stdout and exit code.
async fn run(c: &Container) -> (String, u32) {
    let (task, mut io) = c
        .spawn(None, &StdioConfig::default())
        .await
        .expect("test setup");
    let mut out = String::new();
    if let Some(mut stdout) = io.stdout.take() {
        stdout.read_to_string(&mut out).await.expect("test setup");
    }
    let code = task.wait().await.expect("test setup").code;
    task.delete().await.expect("test setup");
    (out, code)
}

#[tokio::test]
async fn containers_from_an_image_are_copy_on_write_and_leave_nothing() {
    let env = TestEnv::new().await;
    let fixture = Fixture::new(None);
    import(
        &env.client,
        std::io::Cursor::new(fixture.docker_save(None)),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    unpack(&env.client, APP, OVERLAYFS, &amd64()).await.unwrap();
    let mut chain = fixture.app_chain_ids();
    chain.sort();

    // The image's own command, user and working dir.
    let c = container(&env, "cmd", &[], None).await;
    assert_eq!(c.snapshot().map(|s| s.key.as_str()), Some("cmd"));
    assert_eq!(run(&c).await, (HELLO.to_string(), 0));
    let c2 = container(&env, "who", &["id -u; id -g; pwd; echo $GREETING"], None).await;
    assert_eq!(run(&c2).await, ("1000\n1000\n/app\nhello\n".to_string(), 0));

    // A write in one container is that container's alone.
    let writer = container(
        &env,
        "writer",
        &["echo changed > /app/hello.txt && rm /etc/passwd && cat /app/hello.txt"],
        Some((0, 0)),
    )
    .await;
    assert_eq!(run(&writer).await, ("changed\n".to_string(), 0));
    let reader = container(
        &env,
        "reader",
        &["cat /app/hello.txt; test -s /etc/passwd"],
        None,
    )
    .await;
    // The image's hello.txt, and the image's /etc/passwd is still there (test -s).
    assert_eq!(run(&reader).await, (HELLO.to_string(), 0));
    let files = read_files(&env.client, APP, OVERLAYFS, &amd64(), &["/app/hello.txt"])
        .await
        .unwrap();
    assert_eq!(files[0].as_deref(), Some(HELLO.as_bytes()));

    // A loaded container knows its snapshot; deleting containers removes their snapshots and
    // leaves the image's layers.
    let loaded = env
        .client
        .load_container(&Id::new("writer").unwrap())
        .await
        .unwrap();
    assert_eq!(loaded.snapshot(), writer.snapshot());
    for c in [c, c2, writer, reader] {
        c.delete().await.unwrap();
    }
    assert_eq!(env.snapshots(OVERLAYFS).await, chain);
    assert_eq!(env.leases().await, Vec::<String>::new());
    env.cleanup().await;
}

/// `docker import`: a directory (or a gzip'd tar of one) becomes a one-layer image; containers
/// from it run on snapshots and never write to the directory.
#[tokio::test]
async fn an_imported_directory_runs_copy_on_write() {
    use libcontainerd_images::{import_rootfs, prepare, RootfsSource, RunOptions};
    let env = TestEnv::new().await;
    let rootfs = env.subdir("rootfs");
    libcontainerd::rootfs::busybox(&rootfs, std::path::Path::new("/bin/busybox")).unwrap();
    let imported = import_rootfs(
        &env.client,
        &RootfsSource::Directory(rootfs.clone()),
        "busybox",
    )
    .await
    .unwrap();
    assert_eq!(imported.names, ["docker.io/library/busybox:latest"]);

    let id = Id::new("imported").unwrap();
    let options = RunOptions {
        args: vec![
            "sh".into(),
            "-c".into(),
            "echo hi > /tmp/x && cat /tmp/x && id -u".into(),
        ],
        user: Some("65534".into()),
        ..Default::default()
    };
    let err = prepare(&env.client, "nosuchimage", &id, &options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), libcontainerd::ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains("no such image: nosuchimage"),
        "{err}"
    );
    let prepared = prepare(
        &env.client,
        "busybox",
        &id,
        &RunOptions {
            user: None,
            ..options.clone()
        },
    )
    .await
    .unwrap();
    let spec = prepared.spec.clone().build().unwrap();
    let c = prepared
        .create(
            &env.client,
            &id,
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(run(&c).await, ("hi\n0\n".to_string(), 0));
    assert!(
        !rootfs.join("tmp/x").exists(),
        "the directory was written to"
    );
    c.delete().await.unwrap();

    // A gzip'd tarball of the same tree, under another name.
    let archive = env.dir().join("rootfs.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&rootfs)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let imported = import_rootfs(&env.client, &RootfsSource::Archive(archive), "local/bb:1")
        .await
        .unwrap();
    assert_eq!(imported.names, ["docker.io/local/bb:1"]);
    let id2 = Id::new("from-tar").unwrap();
    let prepared = prepare(&env.client, "local/bb:1", &id2, &options)
        .await
        .unwrap();
    let spec = prepared.spec.clone().build().unwrap();
    let c = prepared
        .create(
            &env.client,
            &id2,
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(run(&c).await, ("hi\n65534\n".to_string(), 0));
    c.delete().await.unwrap();

    // Not an archive: one error, nothing stored.
    let junk = env.dir().join("junk");
    std::fs::write(&junk, b"not a tarball").unwrap();
    let err = import_rootfs(&env.client, &RootfsSource::Archive(junk), "junk")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a tar archive"), "{err}");
    assert_eq!(env.leases().await, Vec::<String>::new());
    assert_eq!(
        env.images().await,
        ["docker.io/library/busybox:latest", "docker.io/local/bb:1"]
    );
    env.cleanup().await;
}
