//! Container networks with the CNI plugins of Debian's `containernetworking-plugins`, run directly
//! (no daemon, no libcni): bridge networks with host-local IP leases and masquerade, published ports
//! (portmap), a working loopback, and the per-container `/etc/hosts`, `/etc/resolv.conf` and
//! `/etc/hostname` files. It knows nothing of containerd: an engine hands it a [`Request`] and a
//! network namespace and gets the addresses and a [`Teardown`] back. It never runs `ip` or
//! `iptables` itself; the plugins do that work.
//!
//! Everything it keeps is under one directory ([`Config::root`]): network configs, the leases of the
//! host-local plugin, one record per attached container (what DEL needs, even after a crash), the
//! pinned network namespaces and the containers' files. [`Networks::reclaim`] finds attachments
//! whose container process is gone (a crash of the engine, the runtime or the host) and releases
//! their leases and rules.

mod attach;
mod cidr;
mod error;
mod files;
mod link;
mod netns;
mod plugin;
mod ports;
mod rename;
mod request;
mod store;

use std::path::PathBuf;

pub use attach::{Attachment, Interface, Teardown};
pub use cidr::Ipv4Net;
pub use error::{Error, ErrorKind, Result};
pub use files::ContainerFiles;
pub use ports::{PortMapping, Protocol};
pub use request::{parse_extra_host, Mode, Request};
pub use store::{Network, DEFAULT_BRIDGE, DEFAULT_NETWORK};

/// Where the network layer keeps its files and finds the plugins.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory of everything this layer keeps (e.g. `<data root>/network`).
    pub root: PathBuf,
    /// Directories searched for plugin binaries, in order (CNI's `CNI_PATH`).
    pub plugin_dirs: Vec<PathBuf>,
}

/// Debian's plugin directory.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/cni";

impl Config {
    /// A layer rooted at `root` with Debian's plugin directory.
    pub fn new(root: impl Into<PathBuf>) -> Config {
        Config {
            root: root.into(),
            plugin_dirs: vec![PathBuf::from(DEFAULT_PLUGIN_DIR)],
        }
    }
}

/// The network layer: networks, attachments and container files under one [`Config`].
#[derive(Debug, Clone)]
pub struct Networks {
    config: Config,
}

impl Networks {
    /// The layer for `config`; nothing is created until it is needed.
    pub fn new(config: Config) -> Networks {
        Networks { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
