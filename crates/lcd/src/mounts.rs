//! `run`'s and `create`'s mounts, in three steps so that bad input changes nothing:
//! [`parse`] reads every `-v`, `--mount` and `--tmpfs` (docker's syntax, through the library's
//! parsers) and checks what can be checked without changing the host; [`Plan::prepare`] makes
//! what docker makes (a missing `-v` host directory, volumes on first use); the container is
//! created with [`Plan::apply`]'s spec and [`Plan::label`]; if anything fails after `prepare`,
//! [`Plan::undo`] removes what it made.
//!
//! A new (empty) volume is filled with what the image has at its mount point
//! ([`Plan::fill_from_rootfs`], [`Plan::fill_from_snapshot`]), as docker does.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use libcontainerd::spec::{
    check_mount_points, parse_mount, parse_tmpfs, parse_volume, BindOptions, MountRequest,
    MountType, SpecBuilder,
};
use libcontainerd::{Client, Snapshot};

use crate::cli::MountArgs;
use crate::context::Ctx;
use crate::volumes::{self, MountRecord, Store, Volume, LABEL_MOUNTS};

/// containerd refuses labels over 4096 bytes.
const MAX_LABEL: usize = 4000;

/// Every mount flag parsed and checked, in the order given: a malformed value, a duplicate mount
/// point or a missing `--mount type=bind` source is an error naming its flag.
pub fn parse(args: &MountArgs) -> Result<Vec<MountRequest>> {
    let mut requests = Vec::new();
    for spec in &args.volume {
        requests.push(parse_volume(spec).map_err(|e| anyhow!("--volume {spec}: {}", e.message()))?);
    }
    for spec in &args.mount {
        let request = parse_mount(spec).map_err(|e| {
            // The library's message names the flag where docker's does.
            if e.message().contains("\"--mount\" flag") {
                anyhow!("{}", e.message())
            } else {
                anyhow!("--mount {spec}: {}", e.message())
            }
        })?;
        // docker's --mount never creates a bind source.
        if let (MountType::Bind, Some(source)) = (request.kind, &request.source) {
            if !Path::new(source).exists() {
                bail!("--mount {spec}: invalid mount config for type \"bind\": bind source path does not exist: {source}");
            }
        }
        requests.push(request);
    }
    for spec in &args.tmpfs {
        requests.push(parse_tmpfs(spec).map_err(|e| anyhow!("--tmpfs {spec}: {}", e.message()))?);
    }
    check_mount_points(&requests).map_err(|e| anyhow!("{}", e.message()))?;
    Ok(requests)
}

/// `--volumes-from ID[:ro|rw]`: add container ID's binds and volumes (docker's rule: not its
/// tmpfs mounts) at their mount points, unless a mount of the command line takes that mount point.
pub async fn add_volumes_from(
    client: &Client,
    specs: &[String],
    requests: &mut Vec<MountRequest>,
) -> Result<()> {
    for spec in specs {
        let (id, mode) = match spec.rsplit_once(':') {
            Some((id, mode @ ("ro" | "rw"))) => (id, Some(mode == "ro")),
            Some((_, mode)) => bail!("--volumes-from {spec}: invalid mode {mode:?}: use ro or rw"),
            None => (spec.as_str(), None),
        };
        let container = crate::state::load(client, id)
            .await
            .with_context(|| format!("--volumes-from {spec}"))?;
        for record in volumes::mounts_of(container.labels()) {
            let kind = match record.kind.as_str() {
                "bind" => MountType::Bind,
                "volume" => MountType::Volume,
                _ => continue,
            };
            if requests.iter().any(|r| r.target == record.destination) {
                continue;
            }
            let request = MountRequest {
                kind,
                source: match kind {
                    MountType::Bind => Some(record.source.clone()),
                    _ => record.name.clone(),
                },
                target: record.destination.clone(),
                readonly: mode.unwrap_or(!record.rw),
                propagation: libcontainerd::spec::Propagation::from_option(&record.propagation),
                tmpfs_options: Vec::new(),
                create_source: false,
                // The volume has its files already: never copy into it again.
                no_copy: true,
                selinux_label: None,
            };
            requests.push(request);
        }
    }
    Ok(())
}

/// For a rootfs directory used in place with `--read-only`: runc creates a missing working
/// directory and missing mount points in the root before making it read-only, which would change
/// the host's directory. Refused instead, before anything is created.
pub fn check_read_only_rootfs(
    rootfs: &Path,
    workdir: Option<&str>,
    requests: &[MountRequest],
) -> Result<()> {
    let missing = |path: &str| {
        libcontainerd::spec::resolve_in_root(rootfs, path)
            .ok()
            .flatten()
            .is_none_or(|p| !p.exists())
    };
    if let Some(dir) = workdir.filter(|d| d.starts_with('/')) {
        if missing(dir) {
            bail!("--workdir {dir}: no such directory in the read-only rootfs {}: lcd does not change a rootfs directory given with --read-only (create it there, or drop --read-only)", rootfs.display());
        }
    }
    for request in requests {
        if missing(&request.target) {
            bail!("mount point {} does not exist in the read-only rootfs {}: lcd does not change a rootfs directory given with --read-only (create it there, or drop --read-only)", request.target, rootfs.display());
        }
    }
    Ok(())
}

/// One mount with its host side decided.
#[derive(Debug)]
struct Entry {
    request: MountRequest,
    /// The bind source or the volume's data directory; `None` for a tmpfs (and, in a dry plan, a
    /// volume).
    host: Option<PathBuf>,
    volume: Option<Volume>,
}

/// The mounts of one container being created, and what was made for them.
#[derive(Debug, Default)]
pub struct Plan {
    entries: Vec<Entry>,
    made_volumes: Vec<String>,
    made_dirs: Vec<PathBuf>,
    store: Option<Store>,
}

impl Plan {
    /// The mounts without touching the host: binds and tmpfs only, volumes left out (for the
    /// fuzz target's spec, which must never create anything).
    pub fn dry(requests: Vec<MountRequest>) -> Plan {
        let entries = requests
            .into_iter()
            .filter(|r| r.kind != MountType::Volume)
            .map(|request| Entry {
                host: request.source.clone().map(PathBuf::from),
                request,
                volume: None,
            })
            .collect();
        Plan {
            entries,
            ..Plan::default()
        }
    }

    /// Make what the mounts need: a missing `-v` host directory (as docker does), each volume
    /// not there yet. On failure, what was made is removed again.
    pub fn prepare(ctx: &Ctx, requests: Vec<MountRequest>) -> Result<Plan> {
        let mut plan = Plan {
            store: Some(Store::new(ctx)),
            ..Plan::default()
        };
        for request in requests {
            if let Err(e) = plan.add(request) {
                plan.undo();
                return Err(e);
            }
        }
        Ok(plan)
    }

    fn add(&mut self, request: MountRequest) -> Result<()> {
        let (host, volume) = match request.kind {
            MountType::Bind => {
                let source = PathBuf::from(request.source.clone().unwrap_or_default());
                if !source.exists() && request.create_source {
                    self.create_dirs(&source)?;
                }
                (Some(source), None)
            }
            MountType::Volume => {
                let store = self.store.as_ref().context("no volume store")?;
                let name = request.source.as_deref();
                let (volume, made) = store.create(name, name.is_none())?;
                if made {
                    self.made_volumes.push(volume.name.clone());
                }
                (Some(volume.mountpoint.clone()), Some(volume))
            }
            MountType::Tmpfs => (None, None),
        };
        self.entries.push(Entry {
            request,
            host,
            volume,
        });
        Ok(())
    }

    /// `create_dir_all`, remembering the directories it made (deepest first), for `undo`.
    fn create_dirs(&mut self, dir: &Path) -> Result<()> {
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--volume: create the host directory {}", dir.display()))?;
        self.made_dirs.extend(missing);
        Ok(())
    }

    /// Volumes to fill: new or empty ones, unless `nocopy`.
    fn to_fill(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.entries.iter().filter_map(|e| {
            let volume = e.volume.as_ref()?;
            (!e.request.no_copy && volumes::is_empty_dir(&volume.mountpoint))
                .then_some((e.request.target.as_str(), volume.mountpoint.as_path()))
        })
    }

    /// Fill new volumes from a rootfs directory's files at their mount points.
    pub fn fill_from_rootfs(&self, rootfs: &Path) -> Result<()> {
        for (target, data) in self.to_fill() {
            libcontainerd_images::copy_dir_in_root(rootfs, target, data).with_context(|| {
                format!("fill the volume at {target} from {}", rootfs.display())
            })?;
        }
        Ok(())
    }

    /// Fill new volumes from a prepared container's snapshot (the image's files).
    pub async fn fill_from_snapshot(&self, client: &Client, snapshot: &Snapshot) -> Result<()> {
        for (target, data) in self.to_fill() {
            libcontainerd_images::copy_from_snapshot(client, snapshot, target, data)
                .await
                .with_context(|| format!("fill the volume at {target} from the image"))?;
        }
        Ok(())
    }

    /// Add the mounts to the container's spec.
    pub fn apply(&self, mut builder: SpecBuilder) -> SpecBuilder {
        for entry in &self.entries {
            let r = &entry.request;
            match (&r.kind, &entry.host) {
                (MountType::Tmpfs, _) => {
                    builder = builder.tmpfs(r.target.clone(), r.tmpfs_options.clone());
                }
                (_, Some(host)) => {
                    let options = BindOptions {
                        readonly: r.readonly,
                        propagation: r.propagation.unwrap_or_default(),
                    };
                    builder = builder.bind_mount(host.clone(), r.target.clone(), options);
                }
                (_, None) => {}
            }
        }
        builder
    }

    /// The `io.lcd.mounts` label: the mounts as `lcd inspect` shows them (docker's `Mounts`,
    /// which lists binds and volumes and `--mount` tmpfs, not `--tmpfs`).
    pub fn label(&self, tmpfs_flags: &[String]) -> Result<(String, String)> {
        let mut records = Vec::new();
        for entry in &self.entries {
            let r = &entry.request;
            let from_tmpfs_flag = r.kind == MountType::Tmpfs
                && tmpfs_flags
                    .iter()
                    .any(|t| parse_tmpfs(t).is_ok_and(|p| p.target == r.target));
            if from_tmpfs_flag {
                continue;
            }
            let mut mode: Vec<&str> = Vec::new();
            if r.readonly {
                mode.push("ro");
            }
            if let Some(label) = &r.selinux_label {
                mode.push(label);
            }
            records.push(MountRecord {
                kind: r.kind.as_str().to_string(),
                name: entry.volume.as_ref().map(|v| v.name.clone()),
                source: entry
                    .host
                    .as_ref()
                    .map(|h| h.display().to_string())
                    .unwrap_or_default(),
                destination: r.target.clone(),
                driver: entry.volume.as_ref().map(|_| "local".to_string()),
                mode: mode.join(","),
                rw: !r.readonly,
                propagation: match r.kind {
                    MountType::Bind => r.propagation.unwrap_or_default().as_str().to_string(),
                    _ => String::new(),
                },
            });
        }
        let text = serde_json::to_string(&records)?;
        if text.len() > MAX_LABEL {
            bail!(
                "too many mounts: lcd records a container's mounts in a label of at most {MAX_LABEL} bytes, these take {}",
                text.len()
            );
        }
        Ok((LABEL_MOUNTS.to_string(), text))
    }

    /// Remove what [`prepare`](Self::prepare) made: new volumes, and new host directories
    /// still empty.
    pub fn undo(&self) {
        if let Some(store) = &self.store {
            for name in &self.made_volumes {
                if let Err(e) = store.remove(name) {
                    tracing::warn!(volume = %name, error = %e, "removing a volume made for a failed create");
                }
            }
        }
        for dir in &self.made_dirs {
            // rmdir, never recursive: a directory someone wrote into meanwhile stays.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// After `lcd rm -v` or `run --rm`: remove the container's anonymous volumes, unless another
/// container uses one (docker does the same).
pub async fn remove_anonymous(ctx: &Ctx, client: &Client, records: &[MountRecord]) -> Result<()> {
    let store = Store::new(ctx);
    let names: Vec<String> = records
        .iter()
        .filter(|r| volumes::is_anonymous(&store, r))
        .filter_map(|r| r.name.clone())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let users = volumes::users(client).await?;
    for name in names.iter().filter(|n| !users.contains_key(*n)) {
        store.remove(name)?;
    }
    Ok(())
}
