//! Unpack imported images into overlayfs and native, read their files, prepare container
//! snapshots, resolve users, and fail an unpack cleanly.

mod common;

use common::image::{Corruption, Fixture, APP, BASE, HELLO};
use common::TestEnv;
use libcontainerd_images::rootfs::{image_user, prepare_snapshot, read_files, remove_snapshot};
use libcontainerd_images::snapshotter::{self, NATIVE, OVERLAYFS};
use libcontainerd_images::{import, unpack, ImportOptions, Lease, Platform};

async fn imported(env: &TestEnv, fixture: &Fixture) {
    import(
        &env.client,
        std::io::Cursor::new(fixture.docker_save(None)),
        &ImportOptions::default(),
    )
    .await
    .expect("import");
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

#[tokio::test]
async fn overlayfs_is_chosen_here() {
    let env = TestEnv::new().await;
    let available = snapshotter::available(&env.client).await.unwrap();
    eprintln!("snapshotters: {available:?}");
    assert_eq!(snapshotter::choose(&env.client).await.unwrap(), OVERLAYFS);
    env.cleanup().await;
}

#[tokio::test]
async fn native_is_chosen_when_the_root_is_on_overlayfs() {
    let env = TestEnv::with_root_on_overlay().await;
    let available = snapshotter::available(&env.client).await.unwrap();
    eprintln!("snapshotters with the root on overlayfs: {available:?}");
    let chosen = snapshotter::choose(&env.client).await.unwrap();
    assert_eq!(chosen, NATIVE);
    // And it works end to end there.
    let fixture = Fixture::new(None);
    imported(&env, &fixture).await;
    // overlayfs really fails there, at the second layer (the first is a bind mount); the layer it
    // committed is collected with the lease.
    let e = unpack(&env.client, APP, OVERLAYFS, &amd64())
        .await
        .unwrap_err();
    eprintln!("unpack into overlayfs on overlayfs: {e}");
    assert!(
        e.to_string()
            .starts_with("unpack docker.io/fixture/app:1: layer 1"),
        "{e}"
    );
    assert_eq!(env.snapshots(OVERLAYFS).await, Vec::<String>::new());
    assert_eq!(env.leases().await, Vec::<String>::new());
    let unpacked = unpack(&env.client, APP, &chosen, &amd64()).await.unwrap();
    assert_eq!(unpacked.chain_ids, fixture.app_chain_ids());
    let files = read_files(&env.client, APP, &chosen, &amd64(), &["/etc/motd"])
        .await
        .unwrap();
    assert_eq!(files[0], None);
    env.cleanup().await;
}

#[tokio::test]
async fn unpack_commits_chain_ids_and_whiteouts_apply() {
    let fixture = Fixture::new(None);
    for sn in [OVERLAYFS, NATIVE] {
        let env = TestEnv::new().await;
        imported(&env, &fixture).await;
        let unpacked = unpack(&env.client, APP, sn, &amd64())
            .await
            .expect("unpack");
        assert!(!unpacked.already);
        let chain = fixture.app_chain_ids();
        assert_eq!(unpacked.chain_ids, chain);
        let mut expected = chain.clone();
        expected.sort();
        assert_eq!(env.snapshots(sn).await, expected, "{sn}");
        assert_eq!(env.leases().await, Vec::<String>::new(), "{sn}");

        // GC labels: the config holds the top snapshot, each layer knows its diff ID.
        let details = libcontainerd_images::store::inspect(&env.client, APP, &amd64())
            .await
            .unwrap();
        let config_labels = env.labels(&details.id).await;
        assert_eq!(
            config_labels.get(&format!("containerd.io/gc.ref.snapshot.{sn}")),
            Some(&chain[1])
        );
        for (layer, diff) in details.layers.iter().zip(&fixture.layers) {
            let labels = env.labels(&layer.digest).await;
            assert_eq!(
                labels.get("containerd.io/uncompressed"),
                Some(&diff.diff_id())
            );
        }

        // Already unpacked: nothing happens. The base image shares the first snapshot.
        assert!(
            unpack(&env.client, APP, sn, &amd64())
                .await
                .unwrap()
                .already
        );
        let base = unpack(&env.client, BASE, sn, &amd64()).await.unwrap();
        assert!(base.already, "the base's only layer is the app's first");
        assert_eq!(env.snapshots(sn).await, expected, "{sn}");

        // The whiteout of layer 2 hides layer 1's file; layer 2's file is there.
        let files = read_files(
            &env.client,
            APP,
            sn,
            &amd64(),
            &["/etc/motd", "/app/hello.txt", "/bin/sh"],
        )
        .await
        .expect("read files");
        assert_eq!(files[0], None, "{sn}: whiteout did not hide /etc/motd");
        assert_eq!(files[1].as_deref(), Some(HELLO.as_bytes()));
        assert!(
            files[2].as_ref().is_some_and(|b| b.len() > 100_000),
            "busybox via symlink"
        );
        let base_files = read_files(&env.client, BASE, sn, &amd64(), &["/etc/motd"])
            .await
            .unwrap();
        assert!(
            base_files[0].is_some(),
            "{sn}: the base image has /etc/motd"
        );
        // The view is gone again.
        assert_eq!(env.snapshots(sn).await, expected, "{sn}");
        assert_eq!(env.leases().await, Vec::<String>::new(), "{sn}");
        env.cleanup().await;
    }
}

#[tokio::test]
async fn users_resolve_from_the_image() {
    let fixture = Fixture::new(None);
    let env = TestEnv::new().await;
    imported(&env, &fixture).await;
    unpack(&env.client, APP, OVERLAYFS, &amd64()).await.unwrap();
    let platform = amd64();
    let user = |spec: &'static str| image_user(&env.client, APP, OVERLAYFS, &platform, spec);
    let app = user("app").await.unwrap();
    assert_eq!(
        (app.uid, app.gid, app.additional_gids),
        (1000, 1000, vec![50, 2000])
    );
    let nobody = user("65534").await.unwrap();
    assert_eq!((nobody.uid, nobody.gid), (65534, 65534));
    let e = user("ghost").await.unwrap_err();
    assert!(e.to_string().contains("unable to find user ghost"), "{e}");
    assert_eq!(env.leases().await, Vec::<String>::new());
    env.cleanup().await;
}

#[tokio::test]
async fn container_snapshot_is_prepared_and_removed() {
    let fixture = Fixture::new(None);
    let env = TestEnv::new().await;
    imported(&env, &fixture).await;
    let e = {
        let lease = Lease::create(&env.client, "run", std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let e = prepare_snapshot(&lease, OVERLAYFS, "c1", APP, &amd64())
            .await
            .unwrap_err();
        lease.release().await.unwrap();
        e
    };
    assert!(e.to_string().contains("is not unpacked"), "{e}");
    unpack(&env.client, APP, OVERLAYFS, &amd64()).await.unwrap();
    let lease = Lease::create(&env.client, "run", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let mounts = prepare_snapshot(&lease, OVERLAYFS, "c1", APP, &amd64())
        .await
        .unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].r#type, "overlay");
    assert!(
        mounts[0].options.iter().any(|o| o.starts_with("upperdir=")),
        "{mounts:?}"
    );
    let dup = prepare_snapshot(&lease, OVERLAYFS, "c1", APP, &amd64())
        .await
        .unwrap_err();
    assert_eq!(dup.kind(), libcontainerd::ErrorKind::Conflict, "{dup}");
    assert!(env.snapshots(OVERLAYFS).await.contains(&"c1".to_string()));
    remove_snapshot(&env.client, OVERLAYFS, "c1").await.unwrap();
    remove_snapshot(&env.client, OVERLAYFS, "c1").await.unwrap();
    lease.release().await.unwrap();
    assert!(!env.snapshots(OVERLAYFS).await.contains(&"c1".to_string()));
    env.cleanup().await;
}

#[tokio::test]
async fn a_wrong_diff_id_fails_unpack_and_leaves_no_snapshot() {
    let fixture = Fixture::new(Some(Corruption::WrongDiffId));
    let env = TestEnv::new().await;
    import(
        &env.client,
        std::io::Cursor::new(fixture.docker_save(None)),
        &ImportOptions::default(),
    )
    .await
    .expect("import cannot tell a gzip layer's diff ID");
    let e = unpack(&env.client, APP, OVERLAYFS, &amd64())
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("unpack docker.io/fixture/app:1: layer 0"),
        "{text}"
    );
    assert!(text.contains("digest mismatch"), "{text}");
    assert!(!text.contains('\n'));
    assert_eq!(env.snapshots(OVERLAYFS).await, Vec::<String>::new());
    assert_eq!(env.leases().await, Vec::<String>::new());
    env.cleanup().await;
}
