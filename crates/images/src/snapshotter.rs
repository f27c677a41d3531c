//! Which snapshotter to unpack into: `overlayfs` where it works, else `native`.
//!
//! containerd's overlayfs plugin checks at start-up that overlay mounts work on its root (they do
//! not when the root is itself on overlayfs, containerd#4350) and fails to load otherwise; the
//! Introspection service reports that as the plugin's init error. So the client can tell without
//! knowing containerd's root.

use containerd_client::services::v1::PluginsRequest;
use libcontainerd::{Client, Error, Result};

use crate::grpc::Services;

/// The default snapshotter.
pub const OVERLAYFS: &str = "overlayfs";
/// The copying snapshotter that works on any filesystem.
pub const NATIVE: &str = "native";

const SNAPSHOTTER_PLUGIN: &str = "io.containerd.snapshotter.v1";

/// The snapshotters containerd loaded, with the error of each that failed to load.
pub async fn available(client: &Client) -> Result<Vec<(String, Option<String>)>> {
    let services = Services::new(client)?;
    let plugins = services
        .introspection()
        .plugins(services.request(PluginsRequest { filters: vec![] }))
        .await
        .map_err(|s| Error::from_status("list containerd's plugins", s))?
        .into_inner()
        .plugins;
    Ok(plugins
        .into_iter()
        .filter(|p| p.r#type == SNAPSHOTTER_PLUGIN)
        .map(|p| (p.id, p.init_err.map(|e| e.message)))
        .collect())
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
