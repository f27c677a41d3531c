//! Save images to a docker-save archive and import it back: same targets, same chain IDs, and the
//! archive has what `docker load` reads (manifest.json) and what OCI tools read (index.json).

mod common;

use std::collections::HashMap;
use std::io::Read;

use common::image::{Fixture, APP, BASE};
use common::TestEnv;
use libcontainerd_images::snapshotter::OVERLAYFS;
use libcontainerd_images::store::list;
use libcontainerd_images::{import, save, unpack, ImportOptions, Platform, SaveOptions};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

async fn targets(env: &TestEnv) -> HashMap<String, String> {
    list(&env.client)
        .await
        .expect("list")
        .into_iter()
        .map(|r| (r.name, r.target.digest))
        .collect()
}

fn entries(archive: &[u8]) -> HashMap<String, Vec<u8>> {
    let mut tar = tar::Archive::new(archive);
    let mut files = HashMap::new();
    for entry in tar.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().to_string();
        let mut data = vec![];
        entry.read_to_end(&mut data).expect("read");
        files.insert(path, data);
    }
    files
}

#[tokio::test]
async fn save_then_import_round_trips() {
    let fixture = Fixture::new(None);
    for source in ["docker-save", "oci-layout"] {
        let env = TestEnv::new().await;
        let archive = match source {
            "docker-save" => fixture.docker_save(None),
            _ => fixture.oci_layout(None),
        };
        import(
            &env.client,
            std::io::Cursor::new(archive),
            &ImportOptions::default(),
        )
        .await
        .expect("import");
        let before = targets(&env).await;
        let first = unpack(&env.client, APP, OVERLAYFS, &amd64())
            .await
            .expect("unpack");

        // Both images in one file, one by its short name; the shared layer is saved once.
        let path = env.dir().join("saved.tar");
        let file = std::fs::File::create(&path).expect("create");
        let options = SaveOptions { platform: amd64() };
        save(&env.client, &["fixture/app:1", BASE], file, &options)
            .await
            .expect("save");
        let saved = std::fs::read(&path).expect("read");
        let files = entries(&saved);
        let manifest: serde_json::Value =
            serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
        assert_eq!(manifest[0]["RepoTags"][0], "fixture/app:1", "{source}");
        assert_eq!(manifest[1]["RepoTags"][0], "fixture/base:1", "{source}");
        assert_eq!(manifest[0]["Layers"][0], manifest[1]["Layers"][0]);
        for layer in &fixture.layers {
            let hex = layer.digest().trim_start_matches("sha256:").to_string();
            assert_eq!(
                files[&format!("blobs/sha256/{hex}")],
                layer.blob,
                "{source}"
            );
        }
        assert!(files.contains_key("oci-layout") && files.contains_key("index.json"));
        let layer_count = files
            .keys()
            .filter(|p| p.starts_with("blobs/sha256/") && p.len() > 20)
            .count();
        // Two layers, two configs, two manifests.
        assert_eq!(layer_count, 6, "{source}: {:?}", files.keys());

        // Into a fresh containerd: the same names, targets and snapshots.
        let other = TestEnv::new().await;
        let imported = import(
            &other.client,
            std::fs::File::open(&path).expect("open"),
            &ImportOptions::default(),
        )
        .await
        .expect("import the saved archive");
        assert_eq!(imported.len(), 2);
        assert_eq!(targets(&other).await, before, "{source}");
        let second = unpack(&other.client, APP, OVERLAYFS, &amd64())
            .await
            .expect("unpack");
        assert_eq!(second.chain_ids, first.chain_ids, "{source}");
        assert_eq!(second.chain_ids, fixture.app_chain_ids());

        // A docker-save-only reader (manifest.json alone, as older docker load) gets the images too.
        let mut docker_only = tar::Builder::new(Vec::new());
        for (path, data) in &files {
            if path == "index.json" || path == "oci-layout" || data.is_empty() {
                continue;
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            docker_only
                .append_data(&mut header, path, &data[..])
                .expect("tar");
        }
        let third = TestEnv::new().await;
        let imported = import(
            &third.client,
            std::io::Cursor::new(docker_only.into_inner().expect("tar")),
            &ImportOptions::default(),
        )
        .await
        .expect("import manifest.json only");
        let mut names: Vec<_> = imported.iter().flat_map(|i| i.names.clone()).collect();
        names.sort();
        assert_eq!(names, vec![APP.to_string(), BASE.to_string()]);
        third.cleanup().await;
        other.cleanup().await;
        env.cleanup().await;
    }
}

#[tokio::test]
async fn saving_a_missing_image_fails_and_writes_nothing() {
    let env = TestEnv::new().await;
    let e = save(
        &env.client,
        &["nosuch:1"],
        Vec::new(),
        &SaveOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "save: no such image: nosuch:1");

    // A layer gone from the content store: refused before anything is written.
    let fixture = Fixture::new(None);
    import(
        &env.client,
        std::io::Cursor::new(fixture.docker_save(None)),
        &ImportOptions::default(),
    )
    .await
    .expect("import");
    let layer = fixture.layers[1].digest();
    {
        use containerd_client::services::v1::content_client::ContentClient;
        use containerd_client::services::v1::DeleteContentRequest;
        ContentClient::new(libcontainerd::raw::channel(&env.client))
            .delete(env.request(DeleteContentRequest {
                digest: layer.clone(),
            }))
            .await
            .expect("delete a layer");
    }
    let (sender, receiver) = std::sync::mpsc::channel::<usize>();
    #[derive(Debug)]
    struct Counting(std::sync::mpsc::Sender<usize>);
    impl std::io::Write for Counting {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(data.len());
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let e = save(
        &env.client,
        &[APP],
        Counting(sender),
        &SaveOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("save {APP}: layer {layer} is not in the content store (or not whole)")
    );
    assert_eq!(receiver.try_iter().sum::<usize>(), 0, "bytes written");
    env.cleanup().await;
}
