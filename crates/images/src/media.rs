//! Media types of manifests, indexes, configs and layers, and recognising a layer by its bytes.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (an index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, plain tar.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker layer, gzip.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker foreign layer (gzip).
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI layer, plain tar.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Layer types containerd's differ can apply (it decompresses gzip and zstd itself).
const LAYERS: [&str; 10] = [
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_FOREIGN,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
];

/// Whether `media_type` is a manifest of one image.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether `media_type` is an index of manifests (multi-platform).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether `media_type` is an image config.
pub fn is_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// Whether `media_type` is a layer containerd can unpack.
pub fn is_layer(media_type: &str) -> bool {
    LAYERS.contains(&media_type)
}

/// Whether the layer is stored uncompressed (its digest is then its diff ID).
pub fn is_uncompressed_layer(media_type: &str) -> bool {
    media_type.ends_with(".tar")
}

/// How a layer's bytes are compressed, told by their magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar (`ustar` at offset 257), or an empty one (all zero blocks).
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Recognise the compression from the first bytes of a layer (512 are enough for tar).
    pub fn detect(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.get(257..262) == Some(b"ustar".as_slice())
            || (head.len() >= 512 && head.iter().all(|&b| b == 0))
        {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// The media type for a layer of a docker schema 2 manifest (docker has no zstd type;
    /// containerd uses the OCI one there too).
    pub fn docker_layer_type(self) -> &'static str {
        match self {
            Compression::None => DOCKER_LAYER,
            Compression::Gzip => DOCKER_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8, 0]),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(Compression::Zstd)
        );
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        tar[0] = b'a';
        assert_eq!(Compression::detect(&tar), Some(Compression::None));
        assert_eq!(Compression::detect(&[0u8; 1024]), Some(Compression::None));
        assert_eq!(Compression::detect(b"{\"json\": 1}"), None);
    }

    #[test]
    fn kinds() {
        assert!(is_layer(OCI_LAYER_ZSTD));
        assert!(!is_layer("application/x-foo"));
        assert!(is_uncompressed_layer(DOCKER_LAYER));
        assert!(!is_uncompressed_layer(OCI_LAYER_GZIP));
        assert!(is_index(DOCKER_MANIFEST_LIST) && is_manifest(OCI_MANIFEST));
    }
}
