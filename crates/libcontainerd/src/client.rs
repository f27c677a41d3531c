//! The connection to containerd: one shared gRPC channel, one namespace, one bundle directory.
//!
//! A [`Client`] is cheap to clone (an `Arc`); every clone shares the same HTTP/2 connection, so no call
//! pays for connection setup. Every request carries the `containerd-namespace` header.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::{
    containers_client::ContainersClient, tasks_client::TasksClient, version_client::VersionClient,
};
use containerd_client::types::v1::Process;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;

/// containerd's own gRPC message limit; tonic's default of 4 MiB is too small for large specs/lists.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Refuse a request containerd could not take: over [`MAX_MESSAGE_SIZE`] once encoded. tonic would
/// reset the stream instead, which looks like a lost connection.
pub(crate) fn check_message_size(
    message: &impl prost::Message,
    context: impl FnOnce() -> String,
) -> Result<()> {
    let size = message.encoded_len();
    if size > MAX_MESSAGE_SIZE {
        return Err(Error::invalid(format!(
            "{}: the request is {size} bytes, over containerd's limit of {MAX_MESSAGE_SIZE} bytes (16 MiB); make the spec smaller",
            context()
        )));
    }
    Ok(())
}

/// How long [`Client::connect`] waits for containerd's socket to accept a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to reach containerd.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// containerd's gRPC socket.
    pub address: PathBuf,
    /// The containerd namespace every call works in.
    pub namespace: String,
    /// Where bundle directories (FIFOs, per-container files) are made: `<state_dir>/<container id>`.
    /// Should be private to this namespace.
    pub state_dir: PathBuf,
    /// Bound on establishing the connection.
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// A config with the default connect timeout.
    pub fn new(
        address: impl Into<PathBuf>,
        namespace: impl Into<String>,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        ClientConfig {
            address: address.into(),
            namespace: namespace.into(),
            state_dir: state_dir.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// containerd's version, as reported by its Version service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    /// Release, e.g. `1.6.20~ds1`.
    pub version: String,
    /// Source revision.
    pub revision: String,
}

/// A connection to containerd in one namespace.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    channel: Channel,
    address: PathBuf,
    namespace: Id,
    namespace_header: AsciiMetadataValue,
    state_dir: PathBuf,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.inner.address)
            .field("namespace", &self.inner.namespace)
            .finish()
    }
}

impl Client {
    /// Connect to containerd. Fails with [`ErrorKind::Unavailable`] if the socket does not answer within
    /// the connect timeout, and [`ErrorKind::InvalidArgument`] for a malformed namespace.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        let namespace = Id::new(config.namespace.clone())
            .map_err(|e| e.context(format!("namespace {:?}", config.namespace)))?;
        let namespace_header = AsciiMetadataValue::try_from(namespace.as_str())
            .map_err(|e| Error::invalid(format!("namespace {namespace}: {e}")))?;
        let channel = connect_channel(&config.address, config.connect_timeout).await?;
        Ok(Client {
            inner: Arc::new(Inner {
                channel,
                address: config.address,
                namespace,
                namespace_header,
                state_dir: config.state_dir,
            }),
        })
    }

    /// The namespace this client works in.
    pub fn namespace(&self) -> &Id {
        &self.inner.namespace
    }

    /// containerd's socket.
    pub fn address(&self) -> &Path {
        &self.inner.address
    }

    /// Where this client keeps bundle directories.
    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// The bundle directory of container `id`, unless its record names another one.
    pub fn default_bundle_dir(&self, id: &Id) -> PathBuf {
        self.inner.state_dir.join(id.as_str())
    }

    /// Wrap `message` in a request for this client's namespace.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("containerd-namespace", self.inner.namespace_header.clone());
        request
    }

    pub(crate) fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.inner.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    pub(crate) fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.inner.channel.clone())
    }

    pub(crate) fn containers_service(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.inner.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// The shared channel ([`raw::channel`](crate::raw::channel) for users).
    pub(crate) fn channel(&self) -> Channel {
        self.inner.channel.clone()
    }

    /// containerd's version.
    pub async fn version(&self) -> Result<Version> {
        let response = VersionClient::new(self.channel())
            .version(self.request(()))
            .await
            .map_err(|s| Error::from_status("containerd version", s))?
            .into_inner();
        Ok(Version {
            version: response.version,
            revision: response.revision,
        })
    }

    /// The raw state of one process (`exec_id` empty for the init process).
    pub(crate) async fn get_process(&self, container_id: &Id, exec_id: &str) -> Result<Process> {
        let request = containerd_client::services::v1::GetRequest {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
        };
        let mut answer = self.tasks().get(self.request(request.clone())).await;
        // A task being deleted meanwhile: containerd 1.7 answers with its shim's closed
        // connection until the delete is done, then "not found". Asked again for up to half a
        // second, so that a lookup racing a delete sees the task gone, not an error.
        for _ in 0..50 {
            match &answer {
                Err(s) if s.message().contains("ttrpc: closed") => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    answer = self.tasks().get(self.request(request.clone())).await;
                }
                _ => break,
            }
        }
        let response = answer
            .map_err(|s| {
                if s.code() == tonic::Code::NotFound {
                    Error::not_found(format!("no task for container {container_id}")).with_source(s)
                } else {
                    Error::from_status(format!("get task of container {container_id}"), s)
                }
            })?
            .into_inner();
        response.process.ok_or_else(|| {
            Error::internal(format!("containerd returned no task for {container_id}"))
        })
    }
}

/// Map a lookup failure to "no such container" when containerd says not found.
pub(crate) fn no_such_container(id: &Id, status: tonic::Status) -> Error {
    if status.code() == tonic::Code::NotFound {
        Error::not_found(format!("no such container: {id}")).with_source(status)
    } else {
        Error::from_status(format!("load container {id}"), status)
    }
}

async fn connect_channel(address: &Path, timeout: Duration) -> Result<Channel> {
    let unreachable = |detail: String| {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "cannot connect to containerd at {}: {detail}",
                address.display()
            ),
        )
    };
    // Not `exists()`, which says false for a socket in a directory we may not search: a socket
    // we are not allowed to reach is a permission error, not a missing socket.
    match std::fs::metadata(address) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "cannot connect to containerd at {}: permission denied",
                    address.display()
                ),
            )
            .with_source(e));
        }
        Err(_) => {
            return Err(unreachable(
                "no such socket (is containerd running?)".into(),
            ))
        }
    }
    let path = address.to_path_buf();
    // The URI is a placeholder: the connector below always dials the unix socket.
    let endpoint = Endpoint::from_static("http://[::]:50051")
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    let connect = endpoint.connect_with_connector(tower::service_fn(move |_| {
        let path = path.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(path).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    }));
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => {
            let detail = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.to_string());
            Err(unreachable(detail).with_source(e))
        }
        Err(_) => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "cannot connect to containerd at {}: timed out after {:?}",
                address.display(),
                timeout
            ),
        )),
    }
}
