//! A container from an image, in two steps an engine can put its own options between: [`prepare`]
//! unpacks the image if needed, applies docker's rules to its config (entrypoint and command, env,
//! working dir, user by name from the image's own /etc/passwd) and makes the container's writable
//! snapshot; [`PreparedContainer::create`] creates the container on it. A snapshot whose container
//! never gets created is removed, so a failure in between leaves nothing.

use std::collections::HashMap;
use std::time::Duration;

use libcontainerd::oci_spec::runtime::Spec;
use libcontainerd::{Client, Container, Error, Id, Result, Runtime, Snapshot, SpecBuilder};

use crate::config::{process_args, process_cwd, process_env, ImageConfig};
use crate::digest::chain_ids;
use crate::grpc::Services;
use crate::lease::Lease;
use crate::platform::Platform;
use crate::resolve::resolve;
use crate::rootfs::{prepare_on, remove_snapshot, snapshot_user};
use crate::snapshots::stat;
use crate::snapshotter;
use crate::store;
use crate::unpack::unpack_resolved;

/// How long the snapshot's lease outlives an engine that crashed between prepare and create.
const PREPARE_LEASE_TTL: Duration = Duration::from_secs(600);

/// What the caller overrides of the image's config (docker run's options of the same names).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--entrypoint`: replaces the image's Entrypoint and drops its Cmd (`Some(vec![])` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name; empty for the image's Cmd.
    pub args: Vec<String>,
    /// `-e KEY=value`: replaces the image's `KEY` or is appended.
    pub env: Vec<String>,
    /// `-w`: the working directory instead of the image's.
    pub workdir: Option<String>,
    /// `-u`: `user[:group]` by name or number, resolved in the image; the image's User when `None`.
    pub user: Option<String>,
    /// The platform to run (default: this host's).
    pub platform: Option<Platform>,
    /// The snapshotter (default: overlayfs where it works, else native).
    pub snapshotter: Option<String>,
}

/// An image ready to become container `id`: the spec so far and the writable snapshot.
#[derive(Debug)]
pub struct PreparedContainer {
    /// The image's full name.
    pub image: String,
    /// Its config, for what the caller applies itself (labels, stop signal, ports...).
    pub config: ImageConfig,
    /// The spec from the image's config and the overrides: add the engine's own options, build.
    pub spec: SpecBuilder,
    /// The container's writable snapshot (key: the container id).
    pub snapshot: Snapshot,
    lease: Option<Lease>,
}

/// Unpack `image` if needed and prepare container `id`'s snapshot and spec. An image that is not
/// there is [`ErrorKind::NotFound`](libcontainerd::ErrorKind) ("no such image").
pub async fn prepare(
    client: &Client,
    image: &str,
    id: &Id,
    options: &RunOptions,
) -> Result<PreparedContainer> {
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    // The image's record, manifest and config are read once, for all the steps below.
    let services = Services::new(client)?;
    let record = store::find_record(&services, image).await?;
    let name = record.name.clone();
    let resolved = resolve(&services, &record.target, &platform, &name).await?;
    let config = ImageConfig::from_file(&resolved.config);
    let top = chain_ids(&resolved.config.rootfs.diff_ids)
        .pop()
        .ok_or_else(|| Error::invalid(format!("unpack {name}: the image has no layers")))?;
    let snapshotter = match &options.snapshotter {
        Some(name) => name.clone(),
        None => {
            // Unpacked in overlayfs, so overlayfs works: no need to ask containerd's plugins.
            match stat(&services, snapshotter::OVERLAYFS, &top).await {
                Ok(Some(_)) => snapshotter::OVERLAYFS.to_string(),
                _ => snapshotter::choose(client).await?,
            }
        }
    };
    unpack_resolved(&services, &name, &snapshotter, &resolved).await?;
    let args = process_args(&config, options.entrypoint.as_deref(), &options.args)?;
    let user_spec = options.user.clone().unwrap_or_else(|| config.user.clone());
    let lease = Lease::create(client, "container", PREPARE_LEASE_TTL).await?;
    let prepared = async { prepare_on(&lease.services()?, &snapshotter, id.as_str(), &top).await };
    let mounts = match prepared.await {
        Ok(mounts) => mounts,
        Err(e) => {
            lease.discard().await;
            return Err(e);
        }
    };
    // The user is looked up in the container's own new snapshot: the image's files, without a
    // view snapshot and a lease of its own (each a write to containerd's database).
    let user = match snapshot_user(mounts, &user_spec, &format!("image {name}")).await {
        Ok(user) => user,
        Err(e) => {
            let _ = remove_snapshot(client, &snapshotter, id.as_str()).await;
            lease.discard().await;
            return Err(e);
        }
    };
    let mut spec = SpecBuilder::on_snapshot()
        .args(args)
        .cwd(process_cwd(&config, options.workdir.as_deref()))
        .resolved_user(user.uid, user.gid, user.additional_gids);
    for entry in process_env(&config.env, &options.env) {
        spec = spec.env(entry);
    }
    Ok(PreparedContainer {
        snapshot: Snapshot {
            snapshotter,
            key: id.to_string(),
            image: Some(name.clone()),
        },
        image: name,
        config,
        spec,
        lease: Some(lease),
    })
}

impl PreparedContainer {
    /// Create container `id` on the prepared snapshot with `spec` (built from [`Self::spec`]).
    /// On failure the snapshot is removed again.
    pub async fn create(
        mut self,
        client: &Client,
        id: &Id,
        spec: &Spec,
        runtime: &Runtime,
        labels: &HashMap<String, String>,
    ) -> Result<Container> {
        let created = client
            .new_container_on_snapshot(id, spec, runtime, labels, &self.snapshot)
            .await;
        if created.is_err() {
            self.abandon(client).await;
        } else if let Some(lease) = self.lease.take() {
            // The container record holds the snapshot now.
            if let Err(e) = lease.release().await {
                tracing::warn!(container = %id, error = %e, "releasing the snapshot's lease");
            }
        }
        created
    }

    /// Give up: remove the snapshot (for an engine whose own checks failed after [`prepare`]).
    pub async fn abandon(mut self, client: &Client) {
        if let Err(e) =
            remove_snapshot(client, &self.snapshot.snapshotter, &self.snapshot.key).await
        {
            tracing::warn!(snapshot = %self.snapshot.key, error = %e, "removing an unused snapshot");
        }
        if let Some(lease) = self.lease.take() {
            lease.discard().await;
        }
    }
}
