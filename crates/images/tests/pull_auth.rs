//! Basic auth against a real registry with htpasswd (bcrypt): credentials from docker's config
//! dir named by `DOCKER_CONFIG`, as docker reads them. A test binary of its own with one test,
//! since it sets a process-wide environment variable.

mod common;

use common::image::Fixture;
use common::registry::{Registry, OCI_MANIFEST};
use common::TestEnv;
use libcontainerd_images::{pull, Platform, PullOptions};
use serde_json::json;

fn write_docker_config(dir: &std::path::Path, key: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = json!({"auths": {key: {"auth": auth}}});
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
}

#[test]
fn basic_auth_with_credentials_from_docker_config() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let fixture = Fixture::new(None);
        let registry = Registry::start(Some(("alice", "s3cret"))).await;
        let manifest = registry.push_image("fixture/app", &fixture, &fixture.app).await;
        registry
            .push_manifest("fixture/app", "1", OCI_MANIFEST, &manifest)
            .await;
        let env = TestEnv::new().await;
        let reference = format!("{}/fixture/app:1", registry.addr);
        let options = PullOptions {
            platform: Platform::new("linux", "amd64", None),
            ..Default::default()
        };
        let pull_with = |dir: std::path::PathBuf| {
            // Nothing else runs while the variable changes (a current-thread runtime, between pulls).
            std::env::set_var("DOCKER_CONFIG", dir);
            pull(&env.client, &reference, &options)
        };

        // No credentials: a 401 that says what is missing.
        let e = pull_with(env.subdir("empty")).await.unwrap_err().to_string();
        eprintln!("{e}");
        assert_eq!(
            e,
            format!(
                "pull {reference}: fetch manifest 1 from {0}: 401 Unauthorized: registry {0} needs a login and there are no credentials for it",
                registry.addr
            )
        );
        env.assert_clean().await;

        // A wrong password (the key written with a scheme, as `docker login` may).
        let wrong = env.dir().join("wrong");
        write_docker_config(&wrong, &format!("http://{}", registry.addr), "alice", "nope");
        let e = pull_with(wrong).await.unwrap_err().to_string();
        eprintln!("{e}");
        assert!(e.contains("401 Unauthorized: the registry refused the credentials"), "{e}");
        env.assert_clean().await;

        let right = env.dir().join("right");
        write_docker_config(&right, &registry.addr, "alice", "s3cret");
        let pulled = pull_with(right).await.expect("pull with credentials");
        assert_eq!(pulled.unpacked.expect("unpacked").chain_ids, fixture.app_chain_ids());
        assert_eq!(env.images().await, vec![reference.clone()]);
        assert_eq!(env.leases().await, Vec::<String>::new());
        env.cleanup().await;
        registry.stop();
    });
}
