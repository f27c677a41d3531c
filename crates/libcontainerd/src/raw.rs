//! containerd's wire types, for what this library does not wrap.
//!
//! Everything else in the crate speaks in its own types; the gRPC channel, the generated
//! service clients and messages (`containerd_client`), prost's `Any` and tonic's `Status` appear
//! only here, so that an engine can reach a service the library does not wrap (images, content,
//! snapshots, leases...) over the same connection and namespace, and know when it leaves the
//! library's guarantees (typed errors, cleanup on cancellation, checked ids).

use std::time::SystemTime;

pub use containerd_client as protos;
pub use prost_types::Any;
pub use tonic::transport::Channel;
pub use tonic::{Request, Status};

pub use crate::stats::Raw as Metrics;

use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use crate::checkpoint::RestoreBlob;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::stats::Stats;

/// containerd's `io.containerd.cgroups.v1.Metrics`, as [`Metrics::V1`] carries it.
pub mod cgroup1 {
    pub use crate::stats::cgroup1::*;
}

/// containerd's `io.containerd.cgroups.v2.Metrics`, as [`Metrics::V2`] carries it.
pub mod cgroup2 {
    pub use crate::stats::cgroup2::*;
}

/// The client's shared HTTP/2 channel to containerd (cheap to clone; no new connection).
pub fn channel(client: &Client) -> Channel {
    client.channel()
}

/// `message` as a request in the client's namespace (the `containerd-namespace` header set).
pub fn request<T>(client: &Client, message: T) -> Request<T> {
    client.request(message)
}

/// A gRPC failure as the library's [`Error`]: the kind from the status code, `context` in front of
/// containerd's message, the status kept as the source.
pub fn error_from_status(context: impl std::fmt::Display, status: Status) -> Error {
    Error::from_status(context, status)
}

/// Decode a metrics `Any` (cgroup v1 or v2, as `Tasks.Metrics` sends it) sampled at `read`.
pub fn stats_from_any(read: SystemTime, data: &Any) -> Result<Stats> {
    Stats::from_any(read, data)
}

/// The descriptor to pass as `CreateTaskRequest.checkpoint` for an uploaded checkpoint.
pub fn checkpoint_descriptor(blob: &RestoreBlob) -> &protos::types::Descriptor {
    blob.descriptor()
}

/// An OCI runtime spec as the `Any` containerd stores in a container record.
pub fn spec_to_any(spec: &Spec) -> Result<Any> {
    crate::spec::to_any(spec)
}

/// The OCI runtime spec in a container record's `Any`.
pub fn spec_from_any(any: &Any) -> Result<Spec> {
    crate::spec::from_any(any)
}

/// An OCI process spec as the `Any` that `Tasks.Exec` takes.
pub fn process_to_any(process: &Process) -> Result<Any> {
    crate::process::process_to_any(process)
}

/// Stream the checkpoint blob `descriptor` out of the content store and untar it into `dir`.
pub async fn extract_checkpoint(
    client: &Client,
    descriptor: &protos::types::Descriptor,
    dir: &Path,
) -> Result<()> {
    crate::checkpoint::extract_checkpoint(client, descriptor, dir).await
}
