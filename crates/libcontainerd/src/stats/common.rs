//! Messages that containerd/cgroups declares twice, once per metrics proto (`io.containerd.cgroups.v1`
//! and `.v2`), with the same fields, numbers and types. They are declared once here and re-exported
//! by [`cgroup1`](super::cgroup1) and [`cgroup2`](super::cgroup2): a message's package is not part of
//! its wire format (only the top-level `Metrics` is named, in the `Any`'s type URL), so one Rust type
//! encodes and decodes both.

use prost::Message;

/// The pids controller.
#[derive(Clone, PartialEq, Message)]
pub struct PidsStat {
    /// Processes and threads now.
    #[prost(uint64, tag = "1")]
    pub current: u64,
    /// `pids.max`; 0 means no limit (`max`).
    #[prost(uint64, tag = "2")]
    pub limit: u64,
}

/// The rdma controller (`rdma.current` / `rdma.max`).
#[derive(Clone, PartialEq, Message)]
pub struct RdmaStat {
    /// Resources in use, per device (`rdma.current`).
    #[prost(message, repeated, tag = "1")]
    pub current: Vec<RdmaEntry>,
    /// Limits, per device (`rdma.max`).
    #[prost(message, repeated, tag = "2")]
    pub limit: Vec<RdmaEntry>,
}

/// One rdma device's counters.
#[derive(Clone, PartialEq, Message)]
pub struct RdmaEntry {
    /// The RDMA device.
    #[prost(string, tag = "1")]
    pub device: String,
    /// HCA handles.
    #[prost(uint32, tag = "2")]
    pub hca_handles: u32,
    /// HCA objects.
    #[prost(uint32, tag = "3")]
    pub hca_objects: u32,
}
