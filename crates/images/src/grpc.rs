//! The one place this crate reaches containerd's gRPC channel, and the headers every call carries.
//!
//! libcontainerd keeps its request helpers private, so we send `containerd-namespace` ourselves, and
//! `containerd-lease` while a lease holds what the calls create. If the channel accessor moves
//! (e.g. to `libcontainerd::raw::channel`), [`Services::new`] is the only line to change.

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::introspection_client::IntrospectionClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use libcontainerd::{Client, Error, Result};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

/// containerd's own gRPC message limit (tonic's default of 4 MiB is smaller).
pub(crate) const MAX_MESSAGE_SIZE: usize = 16 << 20;

const NAMESPACE_HEADER: &str = "containerd-namespace";
const LEASE_HEADER: &str = "containerd-lease";

/// containerd's services in one namespace, optionally under a lease. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Services {
    channel: Channel,
    namespace: AsciiMetadataValue,
    lease: Option<AsciiMetadataValue>,
}

macro_rules! service {
    ($name:ident, $client:ident) => {
        pub(crate) fn $name(&self) -> $client<Channel> {
            $client::new(self.channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE)
        }
    };
}

impl Services {
    pub(crate) fn new(client: &Client) -> Result<Services> {
        let namespace = client.namespace().as_str();
        let namespace = AsciiMetadataValue::try_from(namespace)
            .map_err(|e| Error::invalid(format!("namespace {namespace:?}: {e}")))?;
        Ok(Services {
            channel: libcontainerd::raw::channel(client),
            namespace,
            lease: None,
        })
    }

    /// The same services, with every request made under lease `id`.
    pub(crate) fn leased(&self, id: &str) -> Result<Services> {
        let lease = AsciiMetadataValue::try_from(id)
            .map_err(|e| Error::invalid(format!("lease id {id:?}: {e}")))?;
        Ok(Services {
            lease: Some(lease),
            ..self.clone()
        })
    }

    /// The same services without a lease (for what must outlive one, e.g. image records).
    pub(crate) fn unleased(&self) -> Services {
        Services {
            lease: None,
            ..self.clone()
        }
    }

    /// The namespace the requests carry.
    pub(crate) fn namespace(&self) -> &str {
        self.namespace.to_str().unwrap_or_default()
    }

    /// Wrap `message` with the namespace (and lease) headers.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        metadata.insert(NAMESPACE_HEADER, self.namespace.clone());
        if let Some(lease) = &self.lease {
            metadata.insert(LEASE_HEADER, lease.clone());
        }
        request
    }

    service!(content, ContentClient);
    service!(images, ImagesClient);
    service!(leases, LeasesClient);
    service!(snapshots, SnapshotsClient);
    service!(diff, DiffClient);
    service!(introspection, IntrospectionClient);
}
