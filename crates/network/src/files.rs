//! A container's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`: files of ours that the engine
//! bind-mounts into the container, kept under `<root>/containers/<namespace>/<id>`. The hosts file is
//! rewritten in place (same inode: the bind mount shows the new text) when the container, or a
//! container on its network, gets its address.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::request::{Mode, Request};
use crate::Networks;

/// docker's fallback when the host has only loopback resolvers, which a container in a namespace of
/// its own cannot reach.
const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The lines every container's hosts file starts with (docker's).
const BASE_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Where a container's three files are, for the engine to bind-mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
}

impl ContainerFiles {
    /// `(file on the host, path in the container)` for each.
    pub fn mounts(&self) -> [(&Path, &'static str); 3] {
        [
            (&self.hosts, "/etc/hosts"),
            (&self.resolv_conf, "/etc/resolv.conf"),
            (&self.hostname, "/etc/hostname"),
        ]
    }
}

impl Networks {
    pub(crate) fn files_dir(&self, namespace: &str, id: &str) -> PathBuf {
        self.dir("containers").join(namespace).join(id)
    }

    /// The files of container `id` (whether or not they exist yet).
    pub fn container_files(&self, namespace: &str, id: &str) -> ContainerFiles {
        let dir = self.files_dir(namespace, id);
        ContainerFiles {
            hosts: dir.join("hosts"),
            resolv_conf: dir.join("resolv.conf"),
            hostname: dir.join("hostname"),
        }
    }

    /// Write the container's files as they are before it has an address.
    pub(crate) fn write_files(&self, request: &Request) -> Result<ContainerFiles> {
        let files = self.container_files(&request.namespace, &request.container_id);
        let dir = self.files_dir(&request.namespace, &request.container_id);
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let (hosts, resolv) = match request.mode {
            Mode::Host => {
                let host_hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
                let mut hosts = host_hosts;
                push_extra_hosts(&mut hosts, request);
                (hosts, resolv_conf(&host_resolv, &request.dns, false))
            }
            _ => (
                hosts_file(request, None, &[]),
                resolv_conf(&host_resolv, &request.dns, true),
            ),
        };
        write_in_place(&files.hosts, hosts.as_bytes())?;
        write_in_place(&files.resolv_conf, resolv.as_bytes())?;
        write_in_place(
            &files.hostname,
            format!("{}\n", request.hostname).as_bytes(),
        )?;
        Ok(files)
    }

    /// Remove container `id`'s files.
    pub fn remove_files(&self, namespace: &str, id: &str) -> Result<()> {
        let dir = self.files_dir(namespace, id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", dir.display()), e)),
        }
    }
}

fn push_extra_hosts(hosts: &mut String, request: &Request) {
    for (name, ip) in &request.extra_hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
}

/// A container's hosts file: docker's base lines, `--add-host` lines, its own address under its
/// hostname and name, then the other containers on its network by name.
pub(crate) fn hosts_file(
    request: &Request,
    own: Option<IpAddr>,
    peers: &[(String, IpAddr)],
) -> String {
    let mut hosts = BASE_HOSTS.to_string();
    push_extra_hosts(&mut hosts, request);
    if let Some(ip) = own {
        if request.name == request.hostname {
            hosts.push_str(&format!("{ip}\t{}\n", request.hostname));
        } else {
            hosts.push_str(&format!("{ip}\t{} {}\n", request.hostname, request.name));
        }
    }
    for (name, ip) in peers {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    hosts
}

/// The host's resolv.conf for a container: with `own_namespace`, its loopback resolvers dropped (a
/// container cannot reach the host's 127.0.0.53), docker's public fallback when none is left;
/// `--dns` replaces the resolvers. `search` and `options` lines stay.
pub(crate) fn resolv_conf(host: &str, dns: &[IpAddr], own_namespace: bool) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let loopback = words
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|a| a.is_loopback());
            if !dns.is_empty() || (own_namespace && loopback) {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    for server in dns {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if dns.is_empty() && servers == 0 && own_namespace {
        for server in FALLBACK_DNS {
            out.push_str(&format!("nameserver {server}\n"));
        }
    }
    out
}

/// Replace a file's contents keeping its inode (a bind mount of it shows the new text).
pub(crate) fn write_in_place(path: &Path, text: &[u8]) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    file.write_all(text)
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Replace a file whole (a crash leaves the old or the new one, never half).
pub(crate) fn write_atomic(path: &Path, text: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("rename {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn loopback_resolvers_go_and_dns_replaces() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n";
        let own = resolv_conf(host, &[], true);
        assert!(!own.contains("127.0.0.53") && own.contains("10.0.0.2") && own.contains("search"));
        let only_loopback = resolv_conf("nameserver 127.0.0.53\n", &[], true);
        assert!(
            only_loopback.contains("nameserver 8.8.8.8"),
            "{only_loopback}"
        );
        assert_eq!(resolv_conf(host, &[], false), host);
        let dns = resolv_conf(host, &["1.1.1.1".parse().unwrap()], true);
        assert!(
            dns.contains("nameserver 1.1.1.1") && !dns.contains("10.0.0.2"),
            "{dns}"
        );
    }

    #[test]
    fn hosts_have_the_container_and_its_peers() {
        let request = Request {
            namespace: "ns".into(),
            container_id: "web".into(),
            name: "web".into(),
            hostname: "box".into(),
            mode: Mode::Bridge("front".into()),
            ports: vec![],
            dns: vec![],
            extra_hosts: vec![("db".into(), "10.9.9.9".parse().unwrap())],
        };
        let text = hosts_file(
            &request,
            Some("10.1.0.2".parse().unwrap()),
            &[("api".into(), "10.1.0.3".parse().unwrap())],
        );
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("10.9.9.9\tdb\n"));
        assert!(text.contains("10.1.0.2\tbox web\n"));
        assert!(text.contains("10.1.0.3\tapi\n"));
    }
}
