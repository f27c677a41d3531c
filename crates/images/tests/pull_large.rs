//! A ~50 MiB three-layer image pulls with little memory: blobs stream from the registry into the
//! content store; saving it streams from the content store to a file. (A test binary of its own, so that no other test's memory counts.)

mod common;

use std::io::{Read, Seek, SeekFrom};

use common::registry::{Registry, OCI_MANIFEST};
use common::TestEnv;
use libcontainerd_images::{pull, Platform, PullOptions};
use serde_json::json;
use sha2::Digest as _;

const LAYER_FILE: u64 = 17 << 20;
const UPLOAD_CHUNK: usize = 1 << 20;

/// Deterministic, incompressible-looking bytes (xorshift), generated as they are read.
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize) / 8 * 8;
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field")
}

/// A plain tar layer with one noise file, on disk; returns its digest (also its diff ID).
fn layer_file(path: &std::path::Path, seed: u64) -> String {
    let mut builder = tar::Builder::new(std::fs::File::create(path).expect("create"));
    let mut header = tar::Header::new_gnu();
    header.set_size(LAYER_FILE);
    header.set_mode(0o644);
    let noise = Noise {
        state: seed,
        left: LAYER_FILE,
    };
    builder
        .append_data(&mut header, format!("data{seed}.bin"), noise)
        .expect("tar");
    builder.into_inner().expect("tar");
    let mut file = std::fs::File::open(path).expect("open");
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).expect("hash");
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Chunked upload (POST, PATCH per MiB, PUT with the digest): the file never sits in memory.
async fn push_file(registry: &Registry, repository: &str, path: &std::path::Path, digest: &str) {
    let http = reqwest::Client::new();
    let response = http
        .post(registry.url(&format!("/v2/{repository}/blobs/uploads/")))
        .send()
        .await
        .expect("start upload");
    let absolute = |location: &str| {
        if location.starts_with("http") {
            location.to_string()
        } else {
            registry.url(location)
        }
    };
    let mut location = absolute(response.headers()["location"].to_str().expect("location"));
    let mut file = std::fs::File::open(path).expect("open");
    file.seek(SeekFrom::Start(0)).expect("seek");
    let mut offset = 0usize;
    loop {
        let mut chunk = vec![0u8; UPLOAD_CHUNK];
        let n = file.read(&mut chunk).expect("read");
        if n == 0 {
            break;
        }
        chunk.truncate(n);
        let response = http
            .patch(&location)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{}", offset + n - 1))
            .body(chunk)
            .send()
            .await
            .expect("patch");
        assert_eq!(response.status(), 202, "patch");
        location = absolute(response.headers()["location"].to_str().expect("location"));
        offset += n;
    }
    let separator = if location.contains('?') { '&' } else { '?' };
    let response = http
        .put(format!("{location}{separator}digest={digest}"))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 201, "finish upload");
}

#[tokio::test]
async fn a_large_image_pulls_in_little_memory() {
    let registry = Registry::start(None).await;
    let env = TestEnv::new().await;
    let mut layers = vec![];
    let mut diff_ids = vec![];
    let mut total = 0;
    for seed in 1..=3u64 {
        let path = env.dir().join(format!("layer{seed}.tar"));
        let digest = layer_file(&path, 0x9e3779b97f4a7c15 ^ seed);
        push_file(&registry, "big/app", &path, &digest).await;
        let size = std::fs::metadata(&path).expect("stat").len();
        total += size;
        std::fs::remove_file(&path).expect("rm");
        layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}));
        diff_ids.push(digest);
    }
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}))
    .expect("json");
    registry.push_blob("big/app", &config).await;
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": libcontainerd_images::digest::sha256(&config), "size": config.len()},
        "layers": layers}))
    .expect("json");
    registry
        .push_manifest("big/app", "1", OCI_MANIFEST, &manifest)
        .await;

    // Forget the peak of the set-up: "5" resets VmHWM to the current RSS (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the high-water mark");
    let before = status_kib("VmRSS:");
    let options = PullOptions {
        platform: Platform::new("linux", "amd64", None),
        docker_config: Some(env.subdir("docker")),
        ..Default::default()
    };
    let reference = format!("{}/big/app:1", registry.addr);
    let pulled = pull(&env.client, &reference, &options).await.expect("pull");
    let peak = status_kib("VmHWM:");
    eprintln!(
        "pulled {} MiB in 3 layers: RSS {before} KiB before, peak {peak} KiB (+{} KiB)",
        pulled.downloaded >> 20,
        peak.saturating_sub(before)
    );
    assert_eq!(pulled.downloaded, total);
    assert_eq!(pulled.unpacked.expect("unpacked").chain_ids.len(), 3);
    // Three downloads at once, each holding a 256 KiB piece, two more in flight to containerd,
    // and HTTP buffers: a few MiB.
    assert!(
        peak.saturating_sub(before) < 16 << 10,
        "the pull's memory grew by {} KiB",
        peak.saturating_sub(before)
    );

    // Saving it streams too: the archive goes to a file without passing through memory whole.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the high-water mark");
    let before = status_kib("VmRSS:");
    let path = env.dir().join("saved.tar");
    let file = std::fs::File::create(&path).expect("create");
    let save_options = libcontainerd_images::SaveOptions {
        platform: options.platform.clone(),
    };
    libcontainerd_images::save(&env.client, &[&reference], file, &save_options)
        .await
        .expect("save");
    let peak = status_kib("VmHWM:");
    let size = std::fs::metadata(&path).expect("stat").len();
    eprintln!(
        "saved {} MiB: RSS {before} KiB before, peak {peak} KiB (+{} KiB)",
        size >> 20,
        peak.saturating_sub(before)
    );
    assert!(size > total);
    assert!(peak.saturating_sub(before) < 16 << 10);
    env.cleanup().await;
    registry.stop();
}
