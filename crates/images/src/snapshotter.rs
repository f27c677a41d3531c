//! Which snapshotter to unpack into: `overlayfs` where it works, else `native`.
//!
//! Overlay mounts do not work when containerd's root is itself on overlayfs (containerd#4350: in a
//! container, on some CI machines), yet containerd 1.6's overlayfs plugin loads there all the same
//! and only unpacks fail. So besides the plugin's load error (Introspection), we look at the root
//! the plugin exports: on overlayfs, we pick native. (The client runs on containerd's host; if the
//! root is not visible from here, the load error alone decides.)

use containerd_client::services::v1::PluginsRequest;
use libcontainerd::{Client, Error, Result};

use crate::grpc::Services;

/// The default snapshotter.
pub const OVERLAYFS: &str = "overlayfs";
/// The copying snapshotter that works on any filesystem.
pub const NATIVE: &str = "native";

const SNAPSHOTTER_PLUGIN: &str = "io.containerd.snapshotter.v1";

/// The snapshotters containerd loaded, each with the reason it cannot be used, if any.
pub async fn available(client: &Client) -> Result<Vec<(String, Option<String>)>> {
    let services = Services::new(client)?;
    let plugins = services
        .introspection()
        .plugins(services.request(PluginsRequest { filters: vec![] }))
        .await
        .map_err(|s| libcontainerd::raw::error_from_status("list containerd's plugins", s))?
        .into_inner()
        .plugins;
    Ok(plugins
        .into_iter()
        .filter(|p| p.r#type == SNAPSHOTTER_PLUGIN)
        .map(|p| {
            let error = p
                .init_err
                .map(|e| e.message)
                .or_else(|| unusable_root(&p.id, &p.exports));
            (p.id, error)
        })
        .collect())
}

/// Why the overlayfs snapshotter cannot work on its root, if it cannot.
fn unusable_root(id: &str, exports: &std::collections::HashMap<String, String>) -> Option<String> {
    if id != OVERLAYFS {
        return None;
    }
    let root = exports.get("root")?;
    let stat = nix::sys::statfs::statfs(root.as_str()).ok()?;
    (stat.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
        .then(|| format!("its root {root} is on overlayfs, where overlay mounts do not work"))
}

/// `overlayfs` if containerd loaded it, else `native`; an error naming both failures if neither.
pub async fn choose(client: &Client) -> Result<String> {
    let snapshotters = available(client).await?;
    let error_of = |name: &str| {
        snapshotters
            .iter()
            .find(|(id, _)| id == name)
            .map(|(_, err)| err.clone())
    };
    let why = |e: Option<Option<String>>| match e {
        None => "not loaded".to_string(),
        Some(Some(e)) => e,
        Some(None) => "ok".to_string(),
    };
    match (error_of(OVERLAYFS), error_of(NATIVE)) {
        (Some(None), _) => Ok(OVERLAYFS.to_string()),
        (overlay, Some(None)) => {
            tracing::info!(reason = %why(overlay), "overlayfs snapshotter unavailable; using native");
            Ok(NATIVE.to_string())
        }
        (overlay, native) => Err(Error::new(
            libcontainerd::ErrorKind::NotImplemented,
            format!(
                "choose a snapshotter: overlayfs ({}) and native ({}) are both unavailable",
                why(overlay),
                why(native)
            ),
        )),
    }
}
