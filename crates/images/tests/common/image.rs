//! Test images built here, offline: a two-layer image (busybox, passwd and group in a gzip layer;
//! a whiteout and a new file in a plain layer) and a one-layer base image sharing the first layer,
//! written as a docker-save archive or an OCI image layout, optionally corrupted.

use std::io::Write;

use libcontainerd_images::digest::{chain_ids, sha256};
use serde_json::json;

pub const APP: &str = "docker.io/fixture/app:1";
pub const BASE: &str = "docker.io/fixture/base:1";
pub const HELLO: &str = "hello from layer 2\n";

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
app:x:1000:1000:app:/app:/bin/sh\n";
pub const GROUP: &str = "root:x:0:\n\
nogroup:x:65534:\n\
app:x:1000:\n\
staff:x:50:app\n\
extra:x:2000:nobody,app\n";

/// What to break in an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// A layer's bytes do not match its digest (OCI) or its diff ID (docker save).
    LayerDigest,
    /// A layer of a type nobody can unpack.
    UnknownMediaType,
    /// A layer the manifest names is not in the archive.
    MissingBlob,
    /// The images are for linux/arm64 only.
    OtherPlatform,
    /// The config's diff ID of the (gzip) first layer is wrong: only unpack can tell.
    WrongDiffId,
}

pub struct Layer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
    pub gzip: bool,
}

impl Layer {
    fn new(tar: Vec<u8>, gzip: bool) -> Layer {
        let blob = if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&tar).expect("gzip");
            encoder.finish().expect("gzip")
        } else {
            tar.clone()
        };
        Layer { tar, blob, gzip }
    }

    pub fn diff_id(&self) -> String {
        sha256(&self.tar)
    }

    pub fn digest(&self) -> String {
        sha256(&self.blob)
    }

    pub fn oci_type(&self) -> &'static str {
        if self.gzip {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        }
    }
}

pub struct Image {
    pub name: &'static str,
    pub layers: Vec<usize>,
    pub config: Vec<u8>,
}

/// The two fixture images and their shared layers.
pub struct Fixture {
    pub layers: Vec<Layer>,
    pub app: Image,
    pub base: Image,
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

fn file(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path, data)
        .expect("tar file");
}

fn dir(builder: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(tar::EntryType::Directory);
    builder
        .append_data(&mut header, path, std::io::empty())
        .expect("tar dir");
}

fn symlink(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o777);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(tar::EntryType::Symlink);
    builder
        .append_link(&mut header, path, target)
        .expect("tar symlink");
}

fn layer1() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let mut b = tar::Builder::new(Vec::new());
    for d in ["bin/", "etc/", "app/", "tmp/"] {
        dir(&mut b, d);
    }
    file(&mut b, "bin/busybox", &busybox, 0o755);
    for applet in ["sh", "cat", "ls", "id", "echo"] {
        symlink(&mut b, &format!("bin/{applet}"), "busybox");
    }
    file(&mut b, "etc/passwd", PASSWD.as_bytes(), 0o644);
    file(&mut b, "etc/group", GROUP.as_bytes(), 0o644);
    file(&mut b, "etc/motd", b"removed by layer 2\n", 0o644);
    b.into_inner().expect("tar")
}

fn layer2() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    dir(&mut b, "etc/");
    dir(&mut b, "app/");
    file(&mut b, "etc/.wh.motd", b"", 0o644);
    file(&mut b, "app/hello.txt", HELLO.as_bytes(), 0o644);
    b.into_inner().expect("tar")
}

fn config(arch: &str, diff_ids: &[String], with_run_config: bool) -> Vec<u8> {
    let mut config = json!({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    });
    if with_run_config {
        config["config"] = json!({
            "Env": ["PATH=/bin", "GREETING=hello"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["cat /app/hello.txt"],
            "WorkingDir": "/app",
            "User": "app",
            "Labels": {"fixture": "yes"},
            "StopSignal": "SIGQUIT",
            "ExposedPorts": {"8080/tcp": {}},
        });
    } else {
        config["config"] = json!({"Cmd": ["sh"], "Env": null, "Entrypoint": null});
    }
    serde_json::to_vec(&config).expect("config json")
}

impl Fixture {
    pub fn new(corruption: Option<Corruption>) -> Fixture {
        let layers = vec![Layer::new(layer1(), true), Layer::new(layer2(), false)];
        let arch = if corruption == Some(Corruption::OtherPlatform) {
            "arm64"
        } else {
            "amd64"
        };
        let mut ids: Vec<String> = layers.iter().map(Layer::diff_id).collect();
        if corruption == Some(Corruption::WrongDiffId) {
            ids[0] = sha256(b"not the first layer");
        }
        Fixture {
            app: Image {
                name: APP,
                layers: vec![0, 1],
                config: config(arch, &ids, true),
            },
            base: Image {
                name: BASE,
                layers: vec![0],
                config: config(arch, &ids[..1], false),
            },
            layers,
        }
    }

    /// The chain IDs of the app image's snapshots.
    pub fn app_chain_ids(&self) -> Vec<String> {
        chain_ids(&self.layers.iter().map(Layer::diff_id).collect::<Vec<_>>())
    }

    pub fn images(&self) -> [&Image; 2] {
        [&self.app, &self.base]
    }

    /// A docker-save archive (old style: `<id>/layer.tar`, the base image's layer a symlink to
    /// the app's, `manifest.json` last).
    pub fn docker_save(&self, corruption: Option<Corruption>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (i, layer) in self.layers.iter().enumerate() {
            dir(&mut b, &format!("l{i}/"));
            file(&mut b, &format!("l{i}/VERSION"), b"1.0", 0o644);
            file(&mut b, &format!("l{i}/json"), b"{}", 0o644);
            let mut data = layer.blob.clone();
            if i == 1 {
                match corruption {
                    Some(Corruption::LayerDigest) => data[600] ^= 0xff,
                    Some(Corruption::UnknownMediaType) => data = b"{\"not\": \"a layer\"}".to_vec(),
                    Some(Corruption::MissingBlob) => continue,
                    _ => {}
                }
            }
            file(&mut b, &format!("l{i}/layer.tar"), &data, 0o644);
        }
        dir(&mut b, "l9/");
        symlink(&mut b, "l9/layer.tar", "../l0/layer.tar");
        let mut manifest = vec![];
        for image in self.images() {
            let config_name = format!("{}.json", hex(&sha256(&image.config)));
            file(&mut b, &config_name, &image.config, 0o644);
            let layers: Vec<String> = if image.name == BASE {
                vec!["l9/layer.tar".to_string()]
            } else {
                image
                    .layers
                    .iter()
                    .map(|i| format!("l{i}/layer.tar"))
                    .collect()
            };
            let short = image.name.trim_start_matches("docker.io/");
            manifest.push(json!({"Config": config_name, "RepoTags": [short], "Layers": layers}));
        }
        file(&mut b, "repositories", b"{}", 0o644);
        file(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(&manifest).expect("json"),
            0o644,
        );
        b.into_inner().expect("tar")
    }

    /// An OCI image layout. With OtherPlatform the app image is a nested index with an arm64
    /// manifest only.
    pub fn oci_layout(&self, corruption: Option<Corruption>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        // Index and layout first (as skopeo and containerd write them): blobs come after.
        let mut blobs: Vec<Vec<u8>> = vec![];
        let mut index = vec![];
        for image in self.images() {
            let mut layers = vec![];
            for &i in &image.layers {
                let layer = &self.layers[i];
                let media_type = match (i, corruption) {
                    (1, Some(Corruption::UnknownMediaType)) => "application/vnd.example.unknown",
                    _ => layer.oci_type(),
                };
                layers.push(json!({"mediaType": media_type, "digest": layer.digest(), "size": layer.blob.len()}));
            }
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&image.config), "size": image.config.len()},
                "layers": layers,
            }))
            .expect("json");
            let mut descriptor = json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(&manifest),
                "size": manifest.len(),
            });
            if corruption == Some(Corruption::OtherPlatform) {
                let nested = serde_json::to_vec(&json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [{
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": sha256(&manifest),
                        "size": manifest.len(),
                        "platform": {"architecture": "arm64", "os": "linux"},
                    }],
                }))
                .expect("json");
                descriptor = json!({
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": sha256(&nested),
                    "size": nested.len(),
                });
                blobs.push(nested);
            }
            descriptor["annotations"] = if image.name == APP {
                json!({"io.containerd.image.name": image.name, "org.opencontainers.image.ref.name": "1"})
            } else {
                json!({"org.opencontainers.image.ref.name": image.name})
            };
            index.push(descriptor);
            blobs.push(manifest);
            blobs.push(image.config.clone());
        }
        file(
            &mut b,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            0o644,
        );
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index});
        file(
            &mut b,
            "index.json",
            &serde_json::to_vec(&index).expect("json"),
            0o644,
        );
        dir(&mut b, "blobs/");
        dir(&mut b, "blobs/sha256/");
        for (i, layer) in self.layers.iter().enumerate() {
            let mut data = layer.blob.clone();
            if i == 1 {
                match corruption {
                    Some(Corruption::LayerDigest) => data[600] ^= 0xff,
                    Some(Corruption::MissingBlob) => continue,
                    _ => {}
                }
            }
            // Stored under the true digest even when corrupted.
            let path = format!("blobs/sha256/{}", hex(&layer.digest()));
            file(&mut b, &path, &data, 0o644);
        }
        blobs.sort();
        blobs.dedup();
        for blob in &blobs {
            file(
                &mut b,
                &format!("blobs/sha256/{}", hex(&sha256(blob))),
                blob,
                0o644,
            );
        }
        b.into_inner().expect("tar")
    }
}
