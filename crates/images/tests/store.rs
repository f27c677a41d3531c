//! List, inspect, tag and remove images; removing the last name frees blobs and snapshots.

mod common;

use common::image::{Fixture, APP, BASE};
use common::TestEnv;
use libcontainerd_images::snapshotter::OVERLAYFS;
use libcontainerd_images::store::{inspect, remove, summaries, tag};
use libcontainerd_images::{import, unpack, ImportOptions, Platform};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

#[tokio::test]
async fn list_inspect_tag_remove() {
    let fixture = Fixture::new(None);
    let env = TestEnv::new().await;
    // From a file, as `lcd load -i FILE` would.
    let path = env.dir().join("images.tar");
    std::fs::write(&path, fixture.docker_save(None)).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    import(&env.client, file, &ImportOptions::default())
        .await
        .unwrap();

    let details = inspect(&env.client, "fixture/app:1", &amd64())
        .await
        .unwrap();
    assert_eq!(details.record.name, APP);
    assert_eq!(details.layers.len(), 2);
    assert_eq!(details.config.user, "app");
    assert_eq!(details.config.working_dir, "/app");
    assert_eq!(details.config.entrypoint, vec!["/bin/sh", "-c"]);
    assert_eq!(details.config.cmd, vec!["cat /app/hello.txt"]);
    assert_eq!(details.config.exposed_ports, vec!["8080/tcp"]);
    assert_eq!(details.config.stop_signal.as_deref(), Some("SIGQUIT"));
    let blob_total: usize =
        fixture.layers.iter().map(|l| l.blob.len()).sum::<usize>() + fixture.app.config.len();
    assert!(details.size as usize > blob_total, "{}", details.size);

    let listed = summaries(&env.client, &amd64()).await.unwrap();
    let rows: Vec<_> = listed
        .iter()
        .map(|s| (s.repository.as_str(), s.tag.as_str()))
        .collect();
    assert_eq!(rows, vec![("fixture/app", "1"), ("fixture/base", "1")]);
    assert_eq!(listed[0].id.as_deref(), Some(details.id.as_str()));
    assert!(listed[0].created.is_some());

    // Tag: the same target under a second name.
    let tagged = tag(&env.client, "fixture/app:1", "localhost:5000/app:v2")
        .await
        .unwrap();
    assert_eq!(tagged, "localhost:5000/app:v2");
    let again = inspect(&env.client, &tagged, &amd64()).await.unwrap();
    assert_eq!(again.record.target, details.record.target);
    let e = tag(&env.client, "nope", "x").await.unwrap_err();
    assert_eq!(e.to_string(), "no such image: nope");

    // Remove: the other name keeps everything; the last names free blobs and snapshots.
    unpack(&env.client, APP, OVERLAYFS, &amd64()).await.unwrap();
    assert_eq!(
        remove(&env.client, "fixture/app:1", true).await.unwrap(),
        APP
    );
    assert!(env.blobs().await.contains(&details.id));
    assert_eq!(env.snapshots(OVERLAYFS).await.len(), 2);
    remove(&env.client, &tagged, true).await.unwrap();
    remove(&env.client, BASE, true).await.unwrap();
    env.assert_clean().await;
    let e = remove(&env.client, BASE, true).await.unwrap_err();
    assert_eq!(e.kind(), libcontainerd::ErrorKind::NotFound);
    env.cleanup().await;
}
