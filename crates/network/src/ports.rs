//! Published ports: docker's `-p` forms, and whether a host port is free before a container
//! starts.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// A port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One published port: traffic to `host_ip:host_port` goes to the container's `container_port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address it listens on; `None` is every address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port; 0 until a free one is picked (`-p CONTAINER`).
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    /// Parse docker's `-p` value: `[IP:][HOST:]CONTAINER[/tcp|udp]`, where an empty or absent HOST
    /// leaves the host port to be picked (0).
    pub fn parse(value: &str) -> Result<PortMapping> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid port mapping {value:?}: {why} (use [IP:]HOST:CONTAINER[/tcp|udp] or CONTAINER)"
            ))
        };
        let (spec, protocol) = match value.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Protocol::Tcp),
            Some((spec, "udp")) => (spec, Protocol::Udp),
            Some((_, other)) => return Err(bad(&format!("unknown protocol {other:?}"))),
            None => (value, Protocol::Tcp),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [container] => (None, "", *container),
            [host, container] => (None, *host, *container),
            [ip, host, container] => (Some(*ip), *host, *container),
            _ => return Err(bad("too many colons")),
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?,
            ),
        };
        let port = |text: &str, what: &str| -> Result<u16> {
            if text.contains('-') {
                return Err(bad("port ranges are not supported"));
            }
            match text.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                Ok(n) => Err(bad(&format!("{what} port {n} is out of range 1-65535"))),
                Err(_) => Err(bad(&format!("{what} port {text:?} is not a number"))),
            }
        };
        let container_port = port(container, "container")?;
        let host_port = if host.is_empty() {
            0
        } else {
            port(host, "host")?
        };
        Ok(PortMapping {
            host_ip,
            host_port,
            container_port,
            protocol,
        })
    }

    /// The host address as docker prints it.
    pub fn host_ip_text(&self) -> String {
        self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string()
    }

    /// Whether the two mappings would take the same host port.
    pub fn clashes_with(&self, other: &PortMapping) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }

    /// Check the host port is free here (nothing listens on it) by binding it for a moment; with
    /// host port 0, pick a free one. portmap forwards with NAT rules and never binds, so a port that
    /// a server already holds would silently stop reaching it: docker refuses such a port too.
    pub(crate) fn reserve(&mut self) -> Result<()> {
        let addr = SocketAddrV4::new(
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
        );
        let bound = match self.protocol {
            Protocol::Tcp => TcpListener::bind(addr).and_then(|l| l.local_addr()),
            Protocol::Udp => UdpSocket::bind(addr).and_then(|s| s.local_addr()),
        };
        match bound {
            Ok(local) => {
                self.host_port = local.port();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "bind for {}:{}/{} failed: port is already allocated",
                    self.host_ip_text(),
                    self.host_port,
                    self.protocol
                ),
            )),
            Err(e) => Err(Error::new(
                ErrorKind::Conflict,
                format!("bind for {addr}/{} failed: {e}", self.protocol),
            )),
        }
    }
}

impl fmt::Display for PortMapping {
    /// docker's `port` line: `80/tcp -> 127.0.0.1:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port,
            self.protocol,
            self.host_ip_text(),
            self.host_port
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dockers_forms() {
        let p = PortMapping::parse("127.0.0.1:8080:80").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (8080, 80, Protocol::Tcp)
        );
        let p = PortMapping::parse("53:53/udp").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.protocol),
            (None, 53, Protocol::Udp)
        );
        let p = PortMapping::parse("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = PortMapping::parse("127.0.0.1::80").unwrap();
        assert_eq!((p.host_ip, p.host_port), (Some(Ipv4Addr::LOCALHOST), 0));
        assert_eq!(p.to_string(), "80/tcp -> 127.0.0.1:0");
    }

    #[test]
    fn bad_values_say_why() {
        for (value, why) in [
            ("70000:80", "out of range"),
            ("8080:0", "out of range"),
            ("x:80", "not a number"),
            ("80/sctp", "unknown protocol"),
            ("1:2:3:4", "too many colons"),
            ("300.1.1.1:80:80", "not an IPv4"),
            ("8000-8010:80", "ranges"),
            ("", "not a number"),
        ] {
            let e = PortMapping::parse(value).unwrap_err().to_string();
            assert!(e.contains(why), "{value}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn a_port_in_use_is_refused_and_zero_picks_one() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let mut p = PortMapping::parse(&format!("127.0.0.1:{port}:80")).unwrap();
        let e = p.reserve().unwrap_err();
        assert!(e.to_string().contains("already allocated"), "{e}");
        let mut p = PortMapping::parse("127.0.0.1::80").unwrap();
        p.reserve().unwrap();
        assert_ne!(p.host_port, 0);
    }
}
