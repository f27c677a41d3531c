//! Import docker-save archives and OCI layouts into a real containerd.

mod common;

use common::image::{Corruption, Fixture, APP, BASE};
use common::TestEnv;
use libcontainerd_images::{import, ImportOptions};

fn reader(bytes: Vec<u8>) -> std::io::Cursor<Vec<u8>> {
    std::io::Cursor::new(bytes)
}

#[tokio::test]
async fn docker_save_imports_both_images() {
    let env = TestEnv::new().await;
    let fixture = Fixture::new(None);
    let imported = import(
        &env.client,
        reader(fixture.docker_save(None)),
        &ImportOptions::default(),
    )
    .await
    .expect("import");
    let names: Vec<_> = imported.iter().map(|i| i.names.clone()).collect();
    assert_eq!(names, vec![vec![APP.to_string()], vec![BASE.to_string()]]);
    assert_eq!(env.images().await, vec![APP.to_string(), BASE.to_string()]);
    assert_eq!(env.leases().await, Vec::<String>::new());
    env.cleanup().await;
}

#[tokio::test]
async fn oci_layout_imports_both_images() {
    let env = TestEnv::new().await;
    let fixture = Fixture::new(None);
    let imported = import(
        &env.client,
        reader(fixture.oci_layout(None)),
        &ImportOptions::default(),
    )
    .await
    .expect("import");
    let names: Vec<_> = imported.iter().map(|i| i.names.clone()).collect();
    assert_eq!(names, vec![vec![APP.to_string()], vec![BASE.to_string()]]);
    assert_eq!(env.leases().await, Vec::<String>::new());
    let _ = Corruption::LayerDigest;
    env.cleanup().await;
}
