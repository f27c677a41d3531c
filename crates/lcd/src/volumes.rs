//! lcd's volumes: directories under `<data-root>/volumes/<namespace>/NAME/_data` (docker keeps
//! them under `/var/lib/docker/volumes/NAME/_data`), with a small `volume.json` beside the data
//! saying when it was made and whether it is anonymous. A volume is made whole in a temporary
//! directory and renamed into place, so a crash never leaves half of one; two creators of the same
//! name both end with the one that won.
//!
//! Which containers use a volume is read from their `io.lcd.mounts` label (the mounts in docker's
//! inspect form, written at create): a volume in use is never removed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context as _, Result};
use libcontainerd::spec::check_volume_name;
use libcontainerd::Client;
use serde::{Deserialize, Serialize};

use crate::context::Ctx;

/// The container label holding the container's mounts as `lcd inspect` shows them.
pub const LABEL_MOUNTS: &str = "io.lcd.mounts";

/// What lcd records next to a volume's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    created_at: String,
    anonymous: bool,
}

/// A volume.
#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    /// The host directory mounted into containers.
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub anonymous: bool,
}

impl Volume {
    /// `lcd volume inspect`'s JSON, in docker's field names.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "CreatedAt": self.created_at,
            "Driver": "local",
            "Labels": if self.anonymous { serde_json::json!({"com.docker.volume.anonymous": ""}) } else { serde_json::Value::Null },
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": null,
            "Scope": "local",
        })
    }
}

/// The volumes of one namespace.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(ctx: &Ctx) -> Store {
        Store {
            dir: ctx.data_root.join("volumes").join(&ctx.namespace),
        }
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Volume `name`, or docker's "no such volume".
    pub fn get(&self, name: &str) -> Result<Volume> {
        let dir = self.volume_dir(name);
        if !libcontainerd::spec::is_volume_name(name) || !dir.join("_data").is_dir() {
            bail!("get {name}: no such volume");
        }
        let record: Record = std::fs::read(dir.join("volume.json"))
            .ok()
            .and_then(|data| serde_json::from_slice(&data).ok())
            .unwrap_or(Record {
                created_at: String::new(),
                anonymous: false,
            });
        Ok(Volume {
            name: name.to_string(),
            mountpoint: dir.join("_data"),
            created_at: record.created_at,
            anonymous: record.anonymous,
        })
    }

    /// Create volume `name` (a generated one when `None`, which is anonymous if `anonymous`);
    /// one that exists is returned as it is. The bool says whether this call made it.
    pub fn create(&self, name: Option<&str>, anonymous: bool) -> Result<(Volume, bool)> {
        let name = match name {
            Some(name) => {
                check_volume_name(name).map_err(|e| anyhow!("{}", e.message()))?;
                name.to_string()
            }
            None => random_name()?,
        };
        if let Ok(volume) = self.get(&name) {
            return Ok((volume, false));
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("create {}", self.dir.display()))?;
        let temp = self.dir.join(format!(".new-{name}-{}", std::process::id()));
        let made = (|| -> Result<()> {
            std::fs::create_dir(&temp)?;
            std::fs::create_dir(temp.join("_data"))?;
            let record = Record {
                created_at: libcontainerd::time::rfc3339(SystemTime::now()),
                anonymous: anonymous && name.len() == 64,
            };
            std::fs::write(temp.join("volume.json"), serde_json::to_vec(&record)?)?;
            Ok(())
        })();
        let renamed = made.and_then(|()| Ok(std::fs::rename(&temp, self.volume_dir(&name))?));
        match renamed {
            Ok(()) => Ok((self.get(&name)?, true)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&temp);
                // Another lcd made it meanwhile: theirs is as good.
                match self.get(&name) {
                    Ok(volume) => Ok((volume, false)),
                    Err(_) => Err(e.context(format!("create volume {name}"))),
                }
            }
        }
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("read {}", self.dir.display())),
        };
        let mut volumes: Vec<Volume> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|name| self.get(&name).ok())
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// Delete volume `name` and its data (the caller checked that nothing uses it).
    pub fn remove(&self, name: &str) -> Result<()> {
        let volume = self.get(name)?;
        let dir = self.volume_dir(&volume.name);
        // Renamed away first: a half-deleted volume is never mistaken for a whole one.
        let doomed = self.dir.join(format!(".rm-{name}-{}", std::process::id()));
        std::fs::rename(&dir, &doomed).with_context(|| format!("remove volume {name}"))?;
        std::fs::remove_dir_all(&doomed).with_context(|| format!("remove volume {name}"))
    }
}

/// docker's anonymous volume names: 64 random hex digits.
fn random_name() -> Result<String> {
    let mut bytes = [0u8; 32];
    let file = std::fs::File::open("/dev/urandom").context("open /dev/urandom")?;
    std::io::Read::read_exact(&mut &file, &mut bytes).context("read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// One mount as `lcd inspect` shows it (docker's `Mounts` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountRecord {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub driver: Option<String>,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// The mounts recorded on a container (empty without the label).
pub fn mounts_of(labels: &HashMap<String, String>) -> Vec<MountRecord> {
    labels
        .get(LABEL_MOUNTS)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// Which containers use each volume, by volume name.
pub async fn users(client: &Client) -> Result<BTreeMap<String, Vec<String>>> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for container in client.list_containers().await? {
        for mount in mounts_of(&container.labels) {
            if let Some(name) = mount.name {
                users
                    .entry(name)
                    .or_default()
                    .push(container.id.to_string());
            }
        }
    }
    Ok(users)
}

/// Remove `names` unless a container uses one (docker's "volume is in use").
pub async fn remove_unused(ctx: &Ctx, client: &Client, names: &[String]) -> Result<()> {
    let store = Store::new(ctx);
    let users = users(client).await?;
    for name in names {
        store.get(name)?;
        if let Some(ids) = users.get(name) {
            bail!("remove {name}: volume is in use - [{}]", ids.join(", "));
        }
        store.remove(name)?;
    }
    Ok(())
}

/// Where the volume of a mount record lives, for a record naming one.
pub fn is_anonymous(store: &Store, record: &MountRecord) -> bool {
    record
        .name
        .as_deref()
        .and_then(|name| store.get(name).ok())
        .is_some_and(|v| v.anonymous)
}

/// Whether `path` is a directory with nothing in it.
pub fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}
