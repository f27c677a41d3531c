//! The network store: one JSON file per network under `<root>/networks`, the default `bridge`
//! network made on first use, and the CNI plugin chain each network runs.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cidr::Ipv4Net;
use crate::error::{Error, ErrorKind, Result};
use crate::Networks;

/// The default network's name, as docker's.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge device.
pub const DEFAULT_BRIDGE: &str = "lcd0";
/// The default network's subnet: private, and away from docker's 172.17.0.0/16 and podman's
/// 10.88.0.0/16 so that lcd can run beside them.
const DEFAULT_SUBNET: Ipv4Addr = Ipv4Addr::new(10, 209, 0, 0);
/// User networks without `--subnet` get the first free /16 from here on.
const USER_SUBNETS_FROM: u8 = 210;
/// The CNI spec version the chain is written in (Debian's plugins, 1.1.1, speak up to 1.0.0).
pub(crate) const CNI_VERSION: &str = "1.0.0";

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    /// The host's bridge device.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Seconds since the epoch.
    pub created: u64,
}

impl Network {
    /// The CNI plugin chain: a bridge that is the gateway and masquerades outgoing traffic,
    /// host-local leases kept under our root, then portmap for published ports.
    pub(crate) fn plugins(&self, lease_dir: &Path) -> Vec<Value> {
        vec![
            json!({
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": self.subnet.to_string(), "gateway": self.gateway.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": lease_dir,
                },
            }),
            json!({"type": "portmap", "capabilities": {"portMappings": true}}),
        ]
    }
}

/// An exclusive lock on the layer's store, held while it changes networks, leases or records, so
/// that two engines (or an engine and a runtime hook) never interleave their changes.
pub(crate) struct StoreLock {
    _lock: Flock<fs::File>,
}

impl Networks {
    pub(crate) fn dir(&self, sub: &str) -> PathBuf {
        self.config.root.join(sub)
    }

    /// Take the store's lock (creating the root).
    pub(crate) fn lock(&self) -> Result<StoreLock> {
        fs::create_dir_all(&self.config.root)
            .map_err(|e| Error::io(format!("create {}", self.config.root.display()), e))?;
        let path = self.config.root.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io(format!("lock {}", path.display()), e))?;
        Ok(StoreLock { _lock: lock })
    }

    fn network_path(&self, name: &str) -> PathBuf {
        self.dir("networks").join(format!("{name}.json"))
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<Network>> {
        let dir = self.dir("networks");
        let mut networks = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(networks),
            Err(e) => return Err(Error::io(format!("read {}", dir.display()), e)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                networks.push(read_network(&path)?);
            }
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// The network `name`; the default one is made on first use.
    pub fn get(&self, name: &str) -> Result<Network> {
        let path = self.network_path(name);
        if path.is_file() {
            return read_network(&path);
        }
        if name == DEFAULT_NETWORK {
            let _lock = self.lock()?;
            if path.is_file() {
                return read_network(&path);
            }
            let subnet = Ipv4Net::new(DEFAULT_SUBNET, 16)?;
            return self.store(name, DEFAULT_BRIDGE.to_string(), subnet);
        }
        validate_name(name)?;
        Err(Error::new(
            ErrorKind::NotFound,
            format!("network {name} not found"),
        ))
    }

    /// Make a user-defined bridge network, on `subnet` or the next free private /16.
    pub fn create(&self, name: &str, subnet: Option<Ipv4Net>) -> Result<Network> {
        validate_name(name)?;
        if matches!(name, "none" | "host" | DEFAULT_NETWORK) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("network with name {name} already exists (it is predefined)"),
            ));
        }
        let _lock = self.lock()?;
        if self.network_path(name).is_file() {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("network with name {name} already exists"),
            ));
        }
        let mut existing = self.list()?;
        if !existing.iter().any(|n| n.name == DEFAULT_NETWORK) {
            // The default network's subnet is taken even before its first use.
            existing.push(Network {
                name: DEFAULT_NETWORK.into(),
                bridge: DEFAULT_BRIDGE.into(),
                subnet: Ipv4Net::new(DEFAULT_SUBNET, 16)?,
                gateway: Ipv4Addr::UNSPECIFIED,
                created: 0,
            });
        }
        let subnet = match subnet {
            Some(subnet) => {
                if let Some(other) = existing.iter().find(|n| n.subnet.overlaps(&subnet)) {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "subnet {subnet} overlaps network {}'s subnet {}",
                            other.name, other.subnet
                        ),
                    ));
                }
                subnet
            }
            None => (USER_SUBNETS_FROM..=255)
                .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(10, b, 0, 0), 16).ok())
                .find(|candidate| !existing.iter().any(|n| n.subnet.overlaps(candidate)))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Conflict,
                        "no free subnet left: give one with --subnet",
                    )
                })?,
        };
        let bridge = (1..)
            .map(|n| format!("lcd{n}"))
            .find(|b| !existing.iter().any(|n| &n.bridge == b))
            .unwrap_or_default();
        self.store(name, bridge, subnet)
    }

    fn store(&self, name: &str, bridge: String, subnet: Ipv4Net) -> Result<Network> {
        let network = Network {
            name: name.to_string(),
            bridge,
            gateway: subnet.gateway(),
            subnet,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let dir = self.dir("networks");
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let text =
            serde_json::to_vec_pretty(&network).map_err(|e| Error::io("encode network", e))?;
        crate::files::write_atomic(&self.network_path(name), &text)?;
        Ok(network)
    }

    /// Remove network `name` and its bridge device; refused while a container is attached to it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let network = self.remove_config(name)?;
        crate::link::delete(&network.bridge)
    }

    /// Remove network `name`'s config (the checks of [`Networks::remove`]); returns what it was.
    fn remove_config(&self, name: &str) -> Result<Network> {
        if matches!(name, "none" | "host" | DEFAULT_NETWORK) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("{name} is a pre-defined network and cannot be removed"),
            ));
        }
        let _lock = self.lock()?;
        let path = self.network_path(name);
        if !path.is_file() {
            validate_name(name)?;
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("network {name} not found"),
            ));
        }
        let users: Vec<String> = self
            .attachments()?
            .into_iter()
            .filter(|a| a.interfaces.iter().any(|i| i.network == name))
            .map(|a| a.request.container_id)
            .collect();
        if !users.is_empty() {
            return Err(Error::new(
                ErrorKind::InUse,
                format!(
                    "network {name} has active endpoints: container {} uses it",
                    users.join(", ")
                ),
            ));
        }
        let network = read_network(&path)?;
        fs::remove_file(&path).map_err(|e| Error::io(format!("remove {}", path.display()), e))?;
        Ok(network)
    }
}

fn read_network(path: &Path) -> Result<Network> {
    let text = fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    serde_json::from_slice(&text).map_err(|e| Error::io(format!("parse {}", path.display()), e))
}

/// docker's rule for network names.
fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || name.len() > 64
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(Error::invalid(format!(
            "invalid network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Config;

    fn layer() -> (tempfile::TempDir, Networks) {
        let dir = tempfile::tempdir().unwrap();
        let networks = Networks::new(Config::new(dir.path()));
        (dir, networks)
    }

    #[test]
    fn default_on_first_use_and_user_networks_apart() {
        let (_dir, n) = layer();
        assert!(n.list().unwrap().is_empty());
        let default = n.get("bridge").unwrap();
        assert_eq!(default.bridge, "lcd0");
        assert_eq!(default.subnet.to_string(), "10.209.0.0/16");
        let front = n.create("front", None).unwrap();
        assert_eq!(front.subnet.to_string(), "10.210.0.0/16");
        assert_eq!(front.bridge, "lcd1");
        let back = n
            .create("back", Some("192.168.77.0/24".parse().unwrap()))
            .unwrap();
        assert_eq!(back.gateway, Ipv4Addr::new(192, 168, 77, 1));
        assert_eq!(n.list().unwrap().len(), 3);
    }

    #[test]
    fn refusals() {
        let (_dir, n) = layer();
        n.create("front", Some("10.50.0.0/16".parse().unwrap()))
            .unwrap();
        let e = n.create("front", None).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        let e = n
            .create("other", Some("10.50.3.0/24".parse().unwrap()))
            .unwrap_err();
        assert!(e.to_string().contains("overlaps network front"), "{e}");
        let e = n
            .create("x", Some("10.209.0.0/24".parse().unwrap()))
            .unwrap_err();
        assert!(e.to_string().contains("overlaps network bridge"), "{e}");
        assert!(n.create("bad name", None).is_err());
        assert!(n.create("host", None).is_err());
        assert_eq!(n.get("nope").unwrap_err().kind(), ErrorKind::NotFound);
        // remove_config: the unit tests never touch the host's links.
        assert!(n.remove_config("bridge").is_err());
        assert_eq!(
            n.remove_config("nope").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        n.remove_config("front").unwrap();
        assert!(n.list().unwrap().is_empty());
    }
}
