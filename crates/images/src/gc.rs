//! containerd's garbage-collection labels: the references from one object to another that keep
//! the second alive. Without them an image's blobs vanish at the next GC ("content digest not
//! found", nerdctl's most reported image bug).

use std::collections::HashMap;

use crate::oci::{Index, Manifest};

/// On an index: `<prefix>.<i>` names its i-th manifest.
pub const REF_MANIFEST_PREFIX: &str = "containerd.io/gc.ref.content.m";
/// On a manifest: names its config.
pub const REF_CONFIG: &str = "containerd.io/gc.ref.content.config";
/// On a manifest: `<prefix>.<i>` names its i-th layer.
pub const REF_LAYER_PREFIX: &str = "containerd.io/gc.ref.content.l";
/// On a config: `<prefix>.<snapshotter>` names the top snapshot of the unpacked image.
pub const REF_SNAPSHOT_PREFIX: &str = "containerd.io/gc.ref.snapshot";
/// On a layer: its diff ID (what unpack checks, and what saves recomputing it).
pub const UNCOMPRESSED: &str = "containerd.io/uncompressed";

/// The labels an index needs.
pub fn index_labels(index: &Index) -> HashMap<String, String> {
    index
        .manifests
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("{REF_MANIFEST_PREFIX}.{i}"), m.digest.clone()))
        .collect()
}

/// The labels a manifest needs.
pub fn manifest_labels(manifest: &Manifest) -> HashMap<String, String> {
    let mut labels = HashMap::from([(REF_CONFIG.to_string(), manifest.config.digest.clone())]);
    for (i, layer) in manifest.layers.iter().enumerate() {
        labels.insert(format!("{REF_LAYER_PREFIX}.{i}"), layer.digest.clone());
    }
    labels
}

/// The label on a config that keeps its unpacked snapshots in `snapshotter`.
pub fn snapshot_label(snapshotter: &str) -> String {
    format!("{REF_SNAPSHOT_PREFIX}.{snapshotter}")
}
