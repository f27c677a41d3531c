//! Push through the library to a real registry (Debian's docker-registry on 127.0.0.1): an image
//! pulled for one platform from a multi-platform index goes up as that platform's manifest; once
//! every platform is stored, as the whole index, byte for byte; a second push finds every blob.

mod common;

use std::sync::{Arc, Mutex};

use common::image::{Corruption, Fixture};
use common::registry::{Registry, OCI_INDEX, OCI_MANIFEST};
use common::TestEnv;
use libcontainerd_images::digest::sha256;
use libcontainerd_images::push::{PushProgress, PushState};
use libcontainerd_images::{pull, push, store, Platform, PullOptions, PushOptions};

fn platform(arch: &str) -> Platform {
    Platform::new("linux", arch, None)
}

/// The final state of each layer's reports.
fn final_states(reports: &Mutex<Vec<PushProgress>>) -> Vec<PushState> {
    let reports = reports.lock().expect("lock");
    let mut last = std::collections::BTreeMap::new();
    for report in reports.iter() {
        last.insert(report.layer, report.state);
    }
    last.into_values().collect()
}

#[tokio::test]
async fn an_index_goes_up_whole_or_as_the_stored_platforms_manifest() {
    let amd = Fixture::new(None);
    let arm = Fixture::new(Some(Corruption::OtherPlatform));
    let source = Registry::start(None).await;
    let (entries, index_digest) = source
        .push_index("fixture/multi", "1", &[(&arm, "arm64"), (&amd, "amd64")])
        .await;
    let amd_digest = entries[1]["digest"].as_str().expect("digest").to_string();

    let env = TestEnv::new().await;
    let original = format!("{}/fixture/multi:1", source.addr);
    let pull_options = |arch: &str| PullOptions {
        platform: platform(arch),
        docker_config: Some(env.subdir("docker")),
        unpack: false,
        ..Default::default()
    };
    pull(&env.client, &original, &pull_options("amd64"))
        .await
        .expect("pull amd64");

    let target = Registry::start(None).await;
    let reports: Arc<Mutex<Vec<PushProgress>>> = Arc::default();
    let sink = reports.clone();
    let options = PushOptions {
        platform: platform("amd64"),
        docker_config: Some(env.subdir("docker")),
        progress: Some(Arc::new(move |p: &PushProgress| {
            sink.lock().expect("lock").push(p.clone())
        })),
        ..Default::default()
    };
    // Only amd64 is stored: its manifest goes up alone, under the tag.
    let one = format!("{}/multi/app:one", target.addr);
    store::tag(&env.client, &original, &one).await.expect("tag");
    let pushed = push(&env.client, &one, &options).await.expect("push");
    assert_eq!(pushed.reference, "one");
    assert_eq!(pushed.pushed.digest, amd_digest);
    assert_eq!(pushed.pushed.media_type, OCI_MANIFEST);
    let layers: u64 = amd.layers.iter().map(|l| l.blob.len() as u64).sum();
    assert_eq!(pushed.uploaded, layers + amd.app.config.len() as u64);
    assert_eq!(final_states(&reports), vec![PushState::Done; 2]);

    // Every platform stored: the whole index, byte for byte (its digest is the source's).
    pull(&env.client, &original, &pull_options("arm64"))
        .await
        .expect("pull arm64");
    let whole = format!("{}/multi/app:whole", target.addr);
    store::tag(&env.client, &original, &whole)
        .await
        .expect("tag");
    reports.lock().expect("lock").clear();
    let pushed = push(&env.client, &whole, &options).await.expect("push");
    assert_eq!(pushed.pushed.digest, index_digest);
    assert_eq!(pushed.pushed.media_type, OCI_INDEX);
    // The layers (the same in both fixtures) and the amd64 config were there already.
    let arm_only: u64 = arm.app.config.len() as u64;
    assert_eq!(pushed.uploaded, arm_only, "only the arm64 config is new");
    assert!(final_states(&reports)
        .iter()
        .all(|s| *s == PushState::Exists));

    // And back: a fresh pull of each platform from the target gives the same digests.
    for name in [&original, &one, &whole] {
        store::remove(&env.client, name, true).await.expect("rmi");
    }
    let pulled = pull(&env.client, &whole, &pull_options("arm64"))
        .await
        .expect("pull back");
    assert_eq!(pulled.target.digest, index_digest);
    assert_eq!(pulled.id, sha256(&arm.app.config));
    store::remove(&env.client, &whole, true).await.expect("rmi");

    // An image that is not stored: one line naming it.
    let e = push(&env.client, "nosuch:1", &options).await.unwrap_err();
    assert_eq!(e.to_string(), "push: no such image: nosuch:1");
    env.cleanup().await;
    source.stop();
    target.stop();
}
