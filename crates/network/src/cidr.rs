//! IPv4 subnets in CIDR form: parsing, overlap, and the gateway address a bridge takes.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An IPv4 network: its address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// The network `addr/prefix`; `addr` must have no host bits set.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net> {
        if prefix > 30 {
            // A bridge network needs a gateway and at least one container address.
            return Err(Error::invalid(format!(
                "subnet {addr}/{prefix} is too small: use a prefix of /30 or shorter"
            )));
        }
        let net = Ipv4Net { addr, prefix };
        if net.addr != Ipv4Addr::from(u32::from(addr) & net.mask()) {
            let aligned = Ipv4Addr::from(u32::from(addr) & net.mask());
            return Err(Error::invalid(format!(
                "subnet {addr}/{prefix} has host bits set: use {aligned}/{prefix}"
            )));
        }
        Ok(net)
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The first host address, which the bridge takes as the containers' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;

    fn from_str(s: &str) -> Result<Ipv4Net> {
        let bad = || {
            Error::invalid(format!(
                "invalid subnet {s:?}: use CIDR form, e.g. 10.1.0.0/16"
            ))
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ipv4Net::new(addr, prefix)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl TryFrom<String> for Ipv4Net {
    type Error = Error;
    fn try_from(s: String) -> Result<Ipv4Net> {
        s.parse()
    }
}

impl From<Ipv4Net> for String {
    fn from(n: Ipv4Net) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let n: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        assert_eq!(n.gateway(), Ipv4Addr::new(10, 1, 0, 1));
        assert!(n.contains(Ipv4Addr::new(10, 1, 255, 3)));
        assert!(!n.contains(Ipv4Addr::new(10, 2, 0, 1)));
        for bad in [
            "10.1.0.0",
            "10.1.0.0/33",
            "x/16",
            "10.1.0.0/x",
            "10.1.0.0/31",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
        let e = "10.1.2.3/16".parse::<Ipv4Net>().unwrap_err();
        assert!(e.to_string().contains("use 10.1.0.0/16"), "{e}");
    }

    #[test]
    fn overlap() {
        let a: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        let b: Ipv4Net = "10.1.5.0/24".parse().unwrap();
        let c: Ipv4Net = "10.2.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}
