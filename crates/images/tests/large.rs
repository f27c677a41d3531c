//! A large layer streams through: the import's memory stays far below the layer's size.
//! (A test binary of its own, so that no other test's memory counts.)

mod common;

use std::io::{Read, Write};

use common::TestEnv;
use libcontainerd_images::digest::sha256;
use libcontainerd_images::snapshotter::OVERLAYFS;
use libcontainerd_images::{import, unpack, ImportOptions, Platform};

const LAYER_FILE: u64 = 96 << 20;

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

fn high_water_mark_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .expect("value")
        .parse()
        .expect("number")
}

fn file_digest(path: &std::path::Path) -> String {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).expect("open");
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[tokio::test]
async fn a_large_layer_streams() {
    let env = TestEnv::new().await;
    // The layer: one large file, written to disk as it is generated.
    let layer_path = env.dir().join("layer.tar");
    {
        let mut layer = tar::Builder::new(std::fs::File::create(&layer_path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(LAYER_FILE);
        header.set_mode(0o644);
        let noise = Noise {
            state: 0x9e3779b97f4a7c15,
            left: LAYER_FILE,
        };
        layer.append_data(&mut header, "big.bin", noise).unwrap();
        layer.into_inner().unwrap().flush().unwrap();
    }
    let diff_id = file_digest(&layer_path);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_name = format!("{}.json", sha256(&config).trim_start_matches("sha256:"));
    let archive_path = env.dir().join("big.tar");
    {
        let mut archive = tar::Builder::new(std::fs::File::create(&archive_path).unwrap());
        archive
            .append_path_with_name(&layer_path, "big/layer.tar")
            .unwrap();
        let mut add = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            archive.append_data(&mut header, name, data).unwrap();
        };
        add(&config_name, &config);
        let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["big:1"], "Layers": ["big/layer.tar"]}]);
        add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
        archive.into_inner().unwrap().flush().unwrap();
    }
    std::fs::remove_file(&layer_path).unwrap();

    let before = high_water_mark_kib();
    let file = std::fs::File::open(&archive_path).unwrap();
    let imported = import(&env.client, file, &ImportOptions::default())
        .await
        .unwrap();
    let grown_mib = (high_water_mark_kib() - before) / 1024;
    eprintln!(
        "import of a {} MiB layer raised the high-water mark by {grown_mib} MiB",
        LAYER_FILE >> 20
    );
    assert!(
        grown_mib < 32,
        "the import held {grown_mib} MiB: it does not stream"
    );
    assert_eq!(
        imported[0].names,
        vec!["docker.io/library/big:1".to_string()]
    );
    let platform = Platform::new("linux", "amd64", None);
    let unpacked = unpack(&env.client, "docker.io/library/big:1", OVERLAYFS, &platform)
        .await
        .unwrap();
    assert_eq!(unpacked.chain_ids, vec![diff_id]);
    env.cleanup().await;
}
