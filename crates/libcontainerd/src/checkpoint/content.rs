//! What both directions of the round trip need from containerd: the content store client, names no
//! other upload or lease uses, blob deletion, and leases that keep blobs from the garbage collector.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::DeleteContentRequest;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

use crate::client::{Client, MAX_MESSAGE_SIZE};
use crate::error::{Error, Result};

/// The media type of the tarred CRIU images in a containerd checkpoint.
pub const CRIU_CHECKPOINT_MEDIA_TYPE: &str =
    "application/vnd.containerd.container.criu.checkpoint.criu.tar";

/// Label that keeps a blob from containerd's garbage collector.
pub(super) const GC_ROOT_LABEL: &str = "containerd.io/gc.root";

/// Label after which containerd's garbage collector drops a lease.
const GC_EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// How long a checkpoint lease may outlive a client that crashed while holding it.
const LEASE_TTL: Duration = Duration::from_secs(3600);

/// Bytes per `Content.Write` message: well under the 16 MiB gRPC limit, big enough to be cheap.
pub(super) const CHUNK: usize = 1 << 20;

/// How many chunks may wait between the network and the (blocking) tar code.
pub(super) const PIPE_DEPTH: usize = 4;

/// A `Content` client that takes containerd's own message limit, not tonic's smaller default.
pub(super) fn content(client: &Client) -> ContentClient<Channel> {
    ContentClient::new(client.channel())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// A name no other upload or lease of any process uses: `lcd-<purpose>-<pid>-<nanoseconds>`. It
/// holds no container id because lease ids are containerd identifiers (76 characters at most).
pub(super) fn unique_name(purpose: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("lcd-{purpose}-{}-{nanos}", std::process::id())
}

/// Delete a blob; one that is already gone is fine.
pub(super) async fn delete_blob(client: &Client, digest: &str) -> Result<()> {
    match content(client)
        .delete(client.request(DeleteContentRequest {
            digest: digest.to_string(),
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(Error::from_status(format!("delete blob {digest}"), s)),
    }
}

/// A containerd lease: content written under it survives garbage collection until it is released
/// (or expires, should this process die first).
pub(super) struct Lease {
    client: Client,
    id: String,
    header: AsciiMetadataValue,
}

impl Lease {
    pub(super) async fn create(client: &Client, purpose: &str) -> Result<Lease> {
        let id = unique_name(purpose);
        let expires = crate::time::rfc3339(SystemTime::now() + LEASE_TTL);
        LeasesClient::new(client.channel())
            .create(
                client.request(containerd_client::services::v1::CreateRequest {
                    id: id.clone(),
                    labels: HashMap::from([(GC_EXPIRE_LABEL.to_string(), expires)]),
                }),
            )
            .await
            .map_err(|s| Error::from_status("create a lease for the checkpoint", s))?;
        let header = AsciiMetadataValue::try_from(id.as_str())
            .map_err(|e| Error::internal(format!("lease id {id}: {e}")))?;
        Ok(Lease {
            client: client.clone(),
            id,
            header,
        })
    }

    /// Make `request` work under this lease.
    pub(super) fn attach<T>(&self, request: &mut tonic::Request<T>) {
        request
            .metadata_mut()
            .insert("containerd-lease", self.header.clone());
    }

    /// Drop the lease; what it alone held becomes garbage. Failure only delays that until expiry.
    pub(super) async fn release(self) {
        let result = LeasesClient::new(self.client.channel())
            .delete(
                self.client
                    .request(containerd_client::services::v1::DeleteRequest {
                        id: self.id.clone(),
                        sync: false,
                    }),
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(lease = %self.id, error = %e, "releasing a checkpoint lease");
        }
    }
}
