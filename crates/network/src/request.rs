//! What an engine asks of the network layer for one container.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ports::PortMapping;

/// Which network a container gets, docker's `--network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A namespace of its own with only a working loopback.
    None,
    /// The host's namespace (no namespace of its own).
    Host,
    /// A namespace of its own on the named bridge network.
    Bridge(String),
}

impl Mode {
    /// docker's `--network` value: `none`, `host`, `bridge` or a network's name.
    pub fn parse(value: &str) -> Result<Mode> {
        match value {
            "" => Err(Error::invalid(
                "--network needs a value: none, host, bridge or a network name",
            )),
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            name if name.starts_with("container:") => Err(Error::invalid(format!(
                "--network {name}: joining another container's network is not supported"
            ))),
            name => Ok(Mode::Bridge(name.to_string())),
        }
    }

    /// Whether the container has a network namespace of its own.
    pub fn own_namespace(&self) -> bool {
        !matches!(self, Mode::Host)
    }

    /// The bridge network's name, if any.
    pub fn network(&self) -> Option<&str> {
        match self {
            Mode::Bridge(name) => Some(name),
            _ => None,
        }
    }

    /// As docker names it in `inspect`.
    pub fn name(&self) -> &str {
        match self {
            Mode::None => "none",
            Mode::Host => "host",
            Mode::Bridge(name) => name,
        }
    }
}

/// One container's network, as an engine asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The engine's grouping of containers (lcd: the containerd namespace): ids are unique in it.
    pub namespace: String,
    /// The container's id (CNI's container id, the key of its leases and rules).
    pub container_id: String,
    /// The name other containers on its network reach it by.
    pub name: String,
    /// Its hostname.
    pub hostname: String,
    pub mode: Mode,
    /// Published ports (host ports already picked by [`Networks::prepare`](crate::Networks::prepare)).
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// DNS servers in place of the host's (`--dns`).
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    /// Extra `/etc/hosts` lines: (name, address) (`--add-host`).
    #[serde(default)]
    pub extra_hosts: Vec<(String, IpAddr)>,
}

/// docker's `--add-host NAME:IP` (also `NAME=IP`).
pub fn parse_extra_host(value: &str) -> Result<(String, IpAddr)> {
    let bad = || {
        Error::invalid(format!(
            "invalid --add-host {value:?}: use NAME:IP, e.g. db:10.1.0.5"
        ))
    };
    let (name, ip) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .ok_or_else(bad)?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad());
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Ok((name.to_string(), ip.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("none").unwrap(), Mode::None);
        assert_eq!(Mode::parse("host").unwrap(), Mode::Host);
        assert_eq!(Mode::parse("front").unwrap(), Mode::Bridge("front".into()));
        assert!(Mode::parse("container:x").is_err());
    }

    #[test]
    fn extra_hosts() {
        assert_eq!(
            parse_extra_host("db:10.1.0.5").unwrap(),
            ("db".to_string(), "10.1.0.5".parse().unwrap())
        );
        assert_eq!(
            parse_extra_host("v6=::1").unwrap().1,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_extra_host("db").is_err());
        assert!(parse_extra_host("db:nope").is_err());
    }
}
