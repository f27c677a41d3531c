//! Import docker-save archives and OCI layouts into a real containerd: names, targets, GC labels,
//! idempotence, and corrupt archives that must fail cleanly.

mod common;

use common::image::{Corruption, Fixture, APP, BASE};
use common::TestEnv;
use libcontainerd_images::oci::Manifest;
use libcontainerd_images::{import, ImportOptions, ImportedImage};

#[derive(Clone, Copy, Debug)]
enum Format {
    DockerSave,
    OciLayout,
}

const FORMATS: [Format; 2] = [Format::DockerSave, Format::OciLayout];

fn archive(fixture: &Fixture, format: Format, corruption: Option<Corruption>) -> Vec<u8> {
    match format {
        Format::DockerSave => fixture.docker_save(corruption),
        Format::OciLayout => fixture.oci_layout(corruption),
    }
}

async fn import_bytes(env: &TestEnv, bytes: Vec<u8>) -> libcontainerd::Result<Vec<ImportedImage>> {
    import(
        &env.client,
        std::io::Cursor::new(bytes),
        &ImportOptions::default(),
    )
    .await
}

#[tokio::test]
async fn both_formats_import_with_names_targets_and_gc_labels() {
    let fixture = Fixture::new(None);
    for format in FORMATS {
        let env = TestEnv::new().await;
        let imported = import_bytes(&env, archive(&fixture, format, None))
            .await
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let names: Vec<_> = imported.iter().map(|i| i.names.clone()).collect();
        assert_eq!(names, vec![vec![APP.to_string()], vec![BASE.to_string()]]);
        assert_eq!(env.images().await, vec![APP.to_string(), BASE.to_string()]);
        assert_eq!(env.leases().await, Vec::<String>::new(), "{format:?}");

        // The record's target is the manifest we were told, and it references config and layers.
        let record = libcontainerd_images::store::list(&env.client)
            .await
            .unwrap();
        let app = record.iter().find(|r| r.name == APP).unwrap();
        assert_eq!(app.target, imported[0].target);
        let manifest: Manifest = read_json(&env, &app.target.digest).await;
        let layer_digests: Vec<_> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        let expected: Vec<_> = fixture.layers.iter().map(|l| l.digest()).collect();
        assert_eq!(layer_digests, expected, "{format:?}");
        if let Format::DockerSave = format {
            // Media types come from the layers' magic numbers.
            assert_eq!(
                manifest.layers[0].media_type,
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            );
            assert_eq!(
                manifest.layers[1].media_type,
                "application/vnd.docker.image.rootfs.diff.tar"
            );
        }
        let labels = env.labels(&app.target.digest).await;
        assert_eq!(
            labels.get("containerd.io/gc.ref.content.config"),
            Some(&manifest.config.digest)
        );
        assert_eq!(
            labels.get("containerd.io/gc.ref.content.l.0"),
            Some(&expected[0])
        );
        assert_eq!(
            labels.get("containerd.io/gc.ref.content.l.1"),
            Some(&expected[1])
        );
        // After the lease is gone, a GC keeps everything the images reference.
        let blobs = env.blobs().await;
        for digest in expected
            .iter()
            .chain([&manifest.config.digest, &app.target.digest])
        {
            assert!(blobs.contains(digest), "{format:?}: {digest} collected");
        }
        env.cleanup().await;
    }
}

async fn read_json<T: for<'de> serde::Deserialize<'de>>(env: &TestEnv, digest: &str) -> T {
    use containerd_client::services::v1::content_client::ContentClient;
    use containerd_client::services::v1::ReadContentRequest;
    let mut request = tonic::Request::new(ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size: 0,
    });
    request.metadata_mut().insert(
        "containerd-namespace",
        env.namespace.parse().expect("header"),
    );
    let mut stream = ContentClient::new(libcontainerd::raw::channel(&env.client))
        .read(request)
        .await
        .expect("read blob")
        .into_inner();
    let mut data = vec![];
    while let Some(chunk) = stream.message().await.expect("read blob") {
        data.extend(chunk.data);
    }
    serde_json::from_slice(&data).expect("json blob")
}

#[tokio::test]
async fn reimport_is_idempotent() {
    let fixture = Fixture::new(None);
    for format in FORMATS {
        // One containerd per format: both formats name the same images with different manifests.
        let env = TestEnv::new().await;
        let first = import_bytes(&env, archive(&fixture, format, None))
            .await
            .unwrap();
        let blobs = env.blobs().await;
        let second = import_bytes(&env, archive(&fixture, format, None))
            .await
            .unwrap();
        assert_eq!(first, second, "{format:?}");
        assert_eq!(env.blobs().await, blobs, "{format:?}");
        assert_eq!(env.images().await, vec![APP.to_string(), BASE.to_string()]);
        assert_eq!(env.leases().await, Vec::<String>::new());
        env.cleanup().await;
    }
}

/// One clear line, and nothing left: no lease, no image, no snapshot, no blob.
async fn fails_cleanly(env: &TestEnv, bytes: Vec<u8>, expected: &str, case: &str) {
    let e = import_bytes(env, bytes)
        .await
        .err()
        .unwrap_or_else(|| panic!("{case}: import succeeded"));
    let text = e.to_string();
    eprintln!("{case}: {text}");
    assert!(text.contains(expected), "{case}: {text}");
    assert!(!text.contains('\n'), "{case}: {text}");
    assert!(text.starts_with(char::is_lowercase), "{case}: {text}");
    env.assert_clean().await;
}

#[tokio::test]
async fn corrupt_archives_fail_cleanly() {
    let env = TestEnv::new().await;
    for format in FORMATS {
        for (corruption, expected) in [
            (Corruption::LayerDigest, "digest mismatch"),
            (Corruption::UnknownMediaType, "unknown media type"),
            (Corruption::MissingBlob, "does not have"),
            (
                Corruption::OtherPlatform,
                "no manifest for linux/amd64 in docker.io/fixture/app:1; it has linux/arm64",
            ),
        ] {
            let fixture = Fixture::new(Some(corruption));
            let case = format!("{format:?} {corruption:?}");
            fails_cleanly(
                &env,
                archive(&fixture, format, Some(corruption)),
                expected,
                &case,
            )
            .await;
        }
        // Truncated in the middle of the first layer.
        let mut bytes = archive(&Fixture::new(None), format, None);
        bytes.truncate(bytes.len() / 2);
        fails_cleanly(&env, bytes, "truncated", &format!("{format:?} truncated")).await;
    }
    // Not an image archive at all.
    let mut b = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    b.append_data(&mut header, "hello.txt", &b"hello"[..])
        .unwrap();
    fails_cleanly(
        &env,
        b.into_inner().unwrap(),
        "neither manifest.json",
        "plain tar",
    )
    .await;
    fails_cleanly(&env, b"not a tar".to_vec(), "import", "garbage").await;
    env.cleanup().await;
}
