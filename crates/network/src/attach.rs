//! Attaching a container to its network and detaching it: the plugin chain's ADD (each plugin given
//! the previous one's result) and DEL (in reverse), undone on failure, recorded so that DEL can run
//! later from anywhere (another process, a runtime hook, the next command after a crash).
//!
//! A record is written before the first ADD and removed after the last DEL, so a crash at any point
//! leaves a record that [`Networks::reclaim`] finds: its process (pid and start time) is gone, or the
//! host has rebooted since (boot id), and DEL releases the leases and rules.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::files::{hosts_file, write_in_place};
use crate::plugin::{self, Invocation, Op};
use crate::ports::PortMapping;
use crate::request::Request;
use crate::store::{Network, CNI_VERSION};
use crate::{netns, ContainerFiles, Networks};

/// The interface a bridge network gets inside the container.
const IFNAME: &str = "eth0";

/// One network interface of an attached container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub network: String,
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
}

/// An attached container: what it asked for, where it is, what it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub request: Request,
    /// The container's first process, and its start time (clock ticks since boot): together they
    /// tell whether that process still runs.
    pub pid: u32,
    pub start_time: u64,
    /// The host's boot id when it was attached: after a reboot nothing of it is left but leases.
    pub boot_id: String,
    /// Where its namespace is pinned.
    pub netns: PathBuf,
    pub interfaces: Vec<Interface>,
    /// The bridge network chain's final result, handed to DEL as CNI asks.
    #[serde(default)]
    pub result: Value,
}

impl Attachment {
    /// The handle that detaches this container.
    pub fn teardown(&self, networks: &Networks) -> Teardown {
        Teardown {
            networks: networks.clone(),
            namespace: self.request.namespace.clone(),
            container_id: self.request.container_id.clone(),
        }
    }
}

/// Detaches one container: DEL of its chain, lease and rules released, namespace unpinned.
#[derive(Debug, Clone)]
pub struct Teardown {
    networks: Networks,
    namespace: String,
    container_id: String,
}

impl Teardown {
    /// Detach (nothing to do if it was detached already).
    pub fn run(self) -> Result<()> {
        self.networks
            .detach(&self.namespace, &self.container_id)
            .map(|_| ())
    }
}

impl Networks {
    /// Check a request before its container is made, and write the container's files: the network
    /// exists (the default one is made now), the plugins are installed, each published host port is
    /// free (a `-p CONTAINER` port gets a free host port now). Returns the request with its host
    /// ports picked, and the files to bind-mount.
    pub fn prepare(&self, mut request: Request) -> Result<(Request, ContainerFiles)> {
        if !request.ports.is_empty() && request.mode.network().is_none() {
            return Err(Error::invalid(format!(
                "published ports need a bridge network, not --network {}",
                request.mode.name()
            )));
        }
        if let Some(name) = request.mode.network() {
            self.get(name)?;
            for kind in ["loopback", "bridge", "host-local", "portmap"] {
                plugin::find(kind, &self.config.plugin_dirs)?;
            }
        }
        let others = self.attachments()?;
        for (i, port) in request.ports.clone().iter().enumerate() {
            if port.host_port != 0 {
                check_port_unclaimed(port, &others, &request)?;
            }
            let mut reserved = port.clone();
            reserved.reserve()?;
            // Two mappings of this one request may not take one port either.
            if request.ports[..i].iter().any(|p| p.clashes_with(&reserved)) {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("port {reserved} is published twice"),
                ));
            }
            request.ports[i] = reserved;
        }
        let files = self.write_files(&request)?;
        Ok((request, files))
    }

    pub(crate) fn record_path(&self, namespace: &str, id: &str) -> PathBuf {
        self.dir("attachments")
            .join(namespace)
            .join(format!("{id}.json"))
    }

    /// Container `id`'s attachment, if it is attached.
    pub fn attachment(&self, namespace: &str, id: &str) -> Result<Option<Attachment>> {
        read_record(&self.record_path(namespace, id))
    }

    /// Every attachment.
    pub fn attachments(&self) -> Result<Vec<Attachment>> {
        let mut all = Vec::new();
        let root = self.dir("attachments");
        for ns in read_dir(&root)? {
            for path in read_dir(&ns)? {
                if path.extension().is_some_and(|e| e == "json") {
                    if let Some(a) = read_record(&path)? {
                        all.push(a);
                    }
                }
            }
        }
        Ok(all)
    }

    /// Attach the container whose first process is `pid` (its namespace is `/proc/PID/ns/net`):
    /// loopback up, then the bridge network's chain. A failure undoes what was done and leaves no
    /// record. A stale attachment of the same container (a restart whose DEL never ran) is
    /// detached first. `Mode::None` needs no attach under runc or crun, which bring up the
    /// loopback of a namespace they create; attaching it runs CNI's loopback plugin, for runtimes
    /// that do not.
    pub fn attach(&self, request: &Request, pid: u32) -> Result<Attachment> {
        let network = request.mode.network().map(|n| self.get(n)).transpose()?;
        if network.is_none() {
            // Only loopback: nothing outside the namespace to release later, so no record and no
            // pin (the namespace goes with the container).
            let proc_netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
            self.add_chain(request, None, &proc_netns)?;
            return Ok(Attachment {
                request: request.clone(),
                pid,
                start_time: start_time(pid).unwrap_or(0),
                boot_id: boot_id(),
                netns: proc_netns,
                interfaces: Vec::new(),
                result: Value::Null,
            });
        }
        let _lock = self.lock()?;
        // Under the lock, so that a rename racing this attach is not undone.
        let request = &self.with_current_name(request);
        if self
            .attachment(&request.namespace, &request.container_id)?
            .is_some()
        {
            self.detach_locked(&request.namespace, &request.container_id)?;
        }
        let others = self.attachments()?;
        for port in &request.ports {
            check_port_unclaimed(port, &others, request)?;
        }
        let netns_path = self
            .dir("netns")
            .join(&request.namespace)
            .join(&request.container_id);
        let mut attachment = Attachment {
            request: request.clone(),
            pid,
            start_time: start_time(pid).unwrap_or(0),
            boot_id: boot_id(),
            netns: netns_path.clone(),
            interfaces: Vec::new(),
            result: Value::Null,
        };
        let record = self.record_path(&request.namespace, &request.container_id);
        self.write_record(&record, &attachment)?;
        let added = netns::pin(pid, &netns_path)
            .and_then(|()| self.add_chain(request, network.as_ref(), &netns_path));
        match added {
            Ok(Some((interface, result))) => {
                attachment.interfaces.push(interface);
                attachment.result = result;
            }
            Ok(None) => {}
            Err(e) => {
                // Undo: DEL whatever part of the chain ran, then forget the container.
                if let Some(network) = &network {
                    let _ = self.del_chain(request, network, &netns_path, &Value::Null);
                }
                let _ = netns::unpin(&netns_path);
                let _ = fs::remove_file(&record);
                return Err(e);
            }
        }
        self.write_record(&record, &attachment)?;
        if let Some(network) = &network {
            self.refresh_hosts(&network.name)?;
        }
        Ok(attachment)
    }

    /// Loopback, then the network's chain; the interface and the chain's result.
    fn add_chain(
        &self,
        request: &Request,
        network: Option<&Network>,
        netns_path: &Path,
    ) -> Result<Option<(Interface, Value)>> {
        let lo = json!({"cniVersion": CNI_VERSION, "name": "loopback", "type": "loopback"});
        let at = Invocation {
            container_id: &request.container_id,
            netns: netns_path,
            ifname: "lo",
        };
        plugin::run(Op::Add, &lo, &at, &self.config.plugin_dirs)?;
        let Some(network) = network else {
            return Ok(None);
        };
        let at = Invocation {
            ifname: IFNAME,
            ..at
        };
        let mut prev = Value::Null;
        for plugin_conf in network.plugins(&self.dir("leases")) {
            let conf = chain_config(plugin_conf, network, &request.ports, &prev);
            prev = plugin::run(Op::Add, &conf, &at, &self.config.plugin_dirs)?;
        }
        let interface = interface_of(&prev, &network.name).ok_or_else(|| {
            Error::new(
                ErrorKind::Plugin,
                format!(
                    "network {}: the plugins gave the container no IPv4 address",
                    network.name
                ),
            )
        })?;
        Ok(Some((interface, prev)))
    }

    /// DEL of the network's chain in reverse. Every plugin runs even if one fails; the first
    /// failure is returned.
    fn del_chain(
        &self,
        request: &Request,
        network: &Network,
        netns_path: &Path,
        result: &Value,
    ) -> Result<()> {
        // A namespace that died with its container (or a reboot) is no namespace: the plugins
        // then release what lives outside it (the lease, the port rules).
        let netns = if netns::is_pinned(netns_path) {
            netns_path
        } else {
            Path::new("")
        };
        let at = Invocation {
            container_id: &request.container_id,
            netns,
            ifname: IFNAME,
        };
        let mut first_error = None;
        for plugin_conf in network.plugins(&self.dir("leases")).into_iter().rev() {
            let conf = chain_config(plugin_conf, network, &request.ports, result);
            if let Err(e) = plugin::run(Op::Del, &conf, &at, &self.config.plugin_dirs) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Detach container `id`: DEL in reverse, namespace unpinned, record removed, its peers' hosts
    /// files rewritten. `false` if it was not attached.
    pub fn detach(&self, namespace: &str, id: &str) -> Result<bool> {
        if !self.record_path(namespace, id).is_file() {
            return Ok(false);
        }
        let _lock = self.lock()?;
        self.detach_locked(namespace, id)
    }

    fn detach_locked(&self, namespace: &str, id: &str) -> Result<bool> {
        let record = self.record_path(namespace, id);
        let Some(attachment) = read_record(&record)? else {
            return Ok(false);
        };
        let network_name = attachment.request.mode.network().map(str::to_string);
        if let Some(name) = &network_name {
            let path = self.dir("networks").join(format!("{name}.json"));
            if let Ok(text) = fs::read(&path) {
                if let Ok(network) = serde_json::from_slice::<Network>(&text) {
                    self.del_chain(
                        &attachment.request,
                        &network,
                        &attachment.netns,
                        &attachment.result,
                    )?;
                }
            }
        }
        netns::unpin(&attachment.netns)?;
        fs::remove_file(&record)
            .map_err(|e| Error::io(format!("remove {}", record.display()), e))?;
        if let Some(name) = &network_name {
            self.refresh_hosts(name)?;
        }
        Ok(true)
    }

    /// Detach every container whose process is gone or whose attachment predates a reboot: after
    /// a crash of the engine, the runtime or the host, this releases their leases and rules.
    /// Returns the `namespace/id` of each.
    pub fn reclaim(&self) -> Result<Vec<String>> {
        if !self.dir("attachments").is_dir() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
        let boot = boot_id();
        let mut reclaimed = Vec::new();
        for attachment in self.attachments()? {
            let alive = attachment.boot_id == boot
                && start_time(attachment.pid).is_some_and(|t| t == attachment.start_time);
            if !alive {
                let (ns, id) = (
                    &attachment.request.namespace,
                    &attachment.request.container_id,
                );
                self.detach_locked(ns, id)?;
                reclaimed.push(format!("{ns}/{id}"));
            }
        }
        Ok(reclaimed)
    }

    /// Rewrite the hosts file of every container on `network` so that each names all the others
    /// (docker does this for user-defined networks; the default one names only the container).
    pub(crate) fn refresh_hosts(&self, network: &str) -> Result<()> {
        let members: Vec<Attachment> = self
            .attachments()?
            .into_iter()
            .filter(|a| a.request.mode.network() == Some(network))
            .collect();
        let user_defined = network != crate::DEFAULT_NETWORK;
        for member in &members {
            let own = member.interfaces.first().map(|i| IpAddr::V4(i.ip));
            let peers: Vec<(String, IpAddr)> = if user_defined {
                members
                    .iter()
                    .filter(|m| m.request.container_id != member.request.container_id)
                    .filter_map(|m| {
                        m.interfaces
                            .first()
                            .map(|i| (m.request.name.clone(), IpAddr::V4(i.ip)))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let files =
                self.container_files(&member.request.namespace, &member.request.container_id);
            if files.hosts.is_file() {
                let text = hosts_file(&member.request, own, &peers);
                write_in_place(&files.hosts, text.as_bytes())?;
            }
        }
        Ok(())
    }

    pub(crate) fn write_record(&self, path: &Path, attachment: &Attachment) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        let text =
            serde_json::to_vec_pretty(attachment).map_err(|e| Error::io("encode attachment", e))?;
        crate::files::write_atomic(path, &text)
    }
}

/// A port that another attached container publishes is taken, even though nothing binds it
/// (portmap forwards with NAT rules).
fn check_port_unclaimed(
    port: &PortMapping,
    others: &[Attachment],
    request: &Request,
) -> Result<()> {
    let taken = others
        .iter()
        .filter(|a| {
            a.request.container_id != request.container_id
                || a.request.namespace != request.namespace
        })
        .flat_map(|a| a.request.ports.iter())
        .any(|p| p.clashes_with(port));
    if taken {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "bind for {}:{}/{} failed: port is already allocated",
                port.host_ip_text(),
                port.host_port,
                port.protocol
            ),
        ));
    }
    Ok(())
}

/// One plugin's stdin: its own config, the network's name and version, the previous plugin's
/// result, and the published ports for a plugin that asks for them.
fn chain_config(mut conf: Value, network: &Network, ports: &[PortMapping], prev: &Value) -> Value {
    conf["cniVersion"] = json!(CNI_VERSION);
    conf["name"] = json!(network.name);
    if !prev.is_null() {
        conf["prevResult"] = prev.clone();
    }
    if conf["capabilities"]["portMappings"] == json!(true) {
        let mappings: Vec<Value> = ports
            .iter()
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol.to_string(),
                });
                if let Some(ip) = p.host_ip {
                    m["hostIP"] = json!(ip.to_string());
                }
                m
            })
            .collect();
        conf["runtimeConfig"] = json!({"portMappings": mappings});
    }
    conf
}

/// The container's IPv4 address from a CNI 1.0 result (`ips[].address` with `interface` pointing
/// into `interfaces[]`, which has the MAC).
fn interface_of(result: &Value, network: &str) -> Option<Interface> {
    let interfaces = result["interfaces"].as_array();
    result["ips"].as_array()?.iter().find_map(|ip| {
        let (addr, prefix) = ip["address"].as_str()?.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let index = ip["interface"].as_u64();
        let iface = index.and_then(|i| interfaces?.get(usize::try_from(i).ok()?));
        Some(Interface {
            network: network.to_string(),
            ifname: iface
                .and_then(|i| i["name"].as_str())
                .unwrap_or(IFNAME)
                .to_string(),
            ip: addr,
            prefix: prefix.parse().ok()?,
            gateway: ip["gateway"]
                .as_str()
                .and_then(|g| g.parse().ok())
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            mac: iface
                .and_then(|i| i["mac"].as_str())
                .unwrap_or_default()
                .to_string(),
        })
    })
}

pub(crate) fn read_record(path: &Path) -> Result<Option<Attachment>> {
    match fs::read(path) {
        Ok(text) => serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| Error::io(format!("parse {}", path.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().map(|e| e.path()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(format!("read {}", dir.display()), e)),
    }
}

/// A process's start time (field 22 of /proc/PID/stat); `None` if it is gone.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This boot's id.
fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reclaim_forgets_what_a_reboot_or_a_dead_process_left() {
        let dir = tempfile::tempdir().unwrap();
        let networks = Networks::new(crate::Config::new(dir.path()));
        let request = |id: &str| Request {
            namespace: "ns".into(),
            container_id: id.into(),
            name: id.into(),
            hostname: id.into(),
            // A network whose config is gone: no plugin runs, the record and pin still go.
            mode: crate::Mode::Bridge("gone".into()),
            ports: vec![],
            dns: vec![],
            extra_hosts: vec![],
        };
        let me = std::process::id();
        let record = |id: &str, boot: &str, start: u64| {
            let pin = dir.path().join("netns/ns").join(id);
            fs::create_dir_all(pin.parent().unwrap()).unwrap();
            // After a reboot a pin is a plain file.
            fs::write(&pin, b"").unwrap();
            let a = Attachment {
                request: request(id),
                pid: me,
                start_time: start,
                boot_id: boot.into(),
                netns: pin,
                interfaces: vec![],
                result: Value::Null,
            };
            networks
                .write_record(&networks.record_path("ns", id), &a)
                .unwrap();
        };
        let mine = start_time(me).unwrap();
        record("rebooted", "an-earlier-boot", mine);
        record("restarted", &boot_id(), mine + 1);
        record("alive", &boot_id(), mine);
        let mut gone = networks.reclaim().unwrap();
        gone.sort();
        assert_eq!(gone, ["ns/rebooted", "ns/restarted"]);
        let left: Vec<String> = networks
            .attachments()
            .unwrap()
            .into_iter()
            .map(|a| a.request.container_id)
            .collect();
        assert_eq!(left, ["alive"]);
        assert!(!dir.path().join("netns/ns/rebooted").exists());
    }

    #[test]
    fn our_own_start_time_is_read() {
        assert!(start_time(std::process::id()).is_some());
        assert!(start_time(u32::MAX).is_none());
    }

    #[test]
    fn the_chain_gets_prev_result_and_ports() {
        let network = Network {
            name: "front".into(),
            bridge: "lcd1".into(),
            subnet: "10.1.0.0/16".parse().unwrap(),
            gateway: "10.1.0.1".parse().unwrap(),
            created: 0,
        };
        let ports = vec![PortMapping::parse("127.0.0.1:8080:80").unwrap()];
        let plugins = network.plugins(Path::new("/leases"));
        let bridge = chain_config(plugins[0].clone(), &network, &ports, &Value::Null);
        assert_eq!(bridge["name"], "front");
        assert!(bridge.get("prevResult").is_none() && bridge.get("runtimeConfig").is_none());
        assert_eq!(bridge["ipam"]["dataDir"], "/leases");
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/16", "interface": 0, "gateway": "10.1.0.1"}], "interfaces": [{"name": "eth0", "mac": "aa:bb"}]});
        let portmap = chain_config(plugins[1].clone(), &network, &ports, &prev);
        assert_eq!(portmap["prevResult"], prev);
        assert_eq!(
            portmap["runtimeConfig"]["portMappings"][0]["hostIP"],
            "127.0.0.1"
        );
        assert_eq!(
            portmap["runtimeConfig"]["portMappings"][0]["hostPort"],
            8080
        );
        let iface = interface_of(&prev, "front").unwrap();
        assert_eq!(
            (iface.ip, iface.prefix, iface.mac.as_str()),
            ("10.1.0.2".parse().unwrap(), 16, "aa:bb")
        );
    }
}
