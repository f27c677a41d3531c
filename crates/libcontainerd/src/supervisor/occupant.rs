//! Another containerd on our state directory. Two roots may be given one state directory (lcd's data
//! roots share the default exec root); their containerds would share the sockets, the pid file and
//! the shims' state. So when our containerd is not running but something listens on our sockets, it
//! is another one's: we must neither start a second containerd over it nor remove its sockets, or
//! its clients and containers lose it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixStream;

use super::config::DaemonConfig;
use super::files::recorded_root;
use crate::error::{Error, ErrorKind};

/// The longest a connect to a socket may take (a unix connect does not wait for the server to
/// accept, so this only bounds the unexpected).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A process serving our sockets that is not our containerd.
#[derive(Debug)]
pub(super) struct Occupant {
    /// The socket it listens on.
    socket: PathBuf,
    /// Its pid, from the socket's peer credentials.
    pid: Option<u32>,
    /// The root recorded by the last start on this state directory: the occupant's, unless it was
    /// started by something that does not record it.
    root: Option<PathBuf>,
}

impl Occupant {
    /// The process listening on one of `config`'s sockets, if any. Call it only once our own
    /// containerd was not found. A socket file that nobody listens on (its containerd died) is
    /// stale, not occupied.
    pub(super) async fn find(config: &DaemonConfig) -> Option<Occupant> {
        for socket in [config.socket(), config.ttrpc_socket()] {
            if let Some(pid) = listener(&socket).await {
                return Some(Occupant {
                    socket,
                    pid,
                    root: recorded_root(config),
                });
            }
        }
        None
    }

    /// Why `config`'s containerd cannot start here, on one line.
    pub(super) fn refusal(&self, config: &DaemonConfig) -> Error {
        let pid = self
            .pid
            .map(|pid| format!(" (pid {pid})"))
            .unwrap_or_default();
        let who = match &self.root {
            Some(root) if *root != config.root => {
                format!("the containerd{pid} of root {}", root.display())
            }
            // Our root, or unknown: a containerd started some other way, or with another binary.
            _ => format!(
                "a containerd{pid} that is not {} with {}",
                config.binary.display(),
                config.config_file().display()
            ),
        };
        Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "containerd state directory {} is in use by {who}, which serves {}: stop that containerd first, or give root {} a state directory of its own",
                config.state.display(),
                self.socket.display(),
                config.root.display()
            ),
        )
    }
}

/// `Some` if a process listens on `socket`, with its pid when the kernel tells it.
async fn listener(socket: &Path) -> Option<Option<u32>> {
    match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(socket)).await {
        Ok(Ok(stream)) => Some(
            stream
                .peer_cred()
                .ok()
                .and_then(|cred| cred.pid())
                .and_then(|pid| u32::try_from(pid).ok()),
        ),
        // No file, or a file nobody listens on.
        Ok(Err(err))
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            None
        }
        // Anything else (a full backlog, no permission, no answer) may hide a live server: rather
        // refuse than remove the socket of a containerd that still runs.
        Ok(Err(err)) => {
            tracing::debug!(socket = %socket.display(), error = %err, "cannot tell whether the socket is served; taking it as in use");
            Some(None)
        }
        Err(_) => Some(None),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[tokio::test]
    async fn a_listener_is_found_and_a_stale_socket_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = DaemonConfig::new(dir.path().join("mine"), dir.path());
        assert!(Occupant::find(&config).await.is_none(), "no socket file");

        let listening = UnixListener::bind(config.socket()).expect("bind");
        let occupant = Occupant::find(&config).await.expect("a listener");
        assert_eq!(occupant.pid, Some(std::process::id()));
        assert_eq!(occupant.root, None);
        drop(listening);
        // The socket file stays, but nobody listens on it any more.
        assert!(config.socket().exists());
        assert!(Occupant::find(&config).await.is_none(), "stale socket");
    }

    #[test]
    fn refusal_names_the_other_root_on_one_line() {
        let config = DaemonConfig::new("/data/b/containerd", "/run/lcd/containerd");
        let occupant = Occupant {
            socket: config.socket(),
            pid: Some(42),
            root: Some(PathBuf::from("/data/a/containerd")),
        };
        let err = occupant.refusal(&config);
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(
            err.message(),
            "containerd state directory /run/lcd/containerd is in use by the containerd (pid 42) of root /data/a/containerd, which serves /run/lcd/containerd/containerd.sock: stop that containerd first, or give root /data/b/containerd a state directory of its own"
        );

        let unknown = Occupant {
            root: None,
            ..occupant
        };
        let msg = unknown.refusal(&config).to_string();
        assert!(
            msg.contains(
                "a containerd (pid 42) that is not containerd with /data/b/containerd/config.toml"
            ),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }
}
