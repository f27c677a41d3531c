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
use super::pidfd::process_live;
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
                // The kernel names the process that called listen(). One that has exited is no
                // server: a killed containerd whose other threads are still tearing down (its
                // group leader a zombie, its fds not yet released) accepts connections for a
                // moment after it is gone.
                if pid.is_some_and(|pid| !process_live(pid)) {
                    tracing::debug!(socket = %socket.display(), ?pid, "the socket's listener has exited; stale");
                    continue;
                }
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

    /// A socket still listening after the process that called listen() exited (as a killed
    /// containerd's does while its other threads tear down) is stale, not another containerd.
    #[tokio::test]
    async fn a_listener_whose_process_exited_is_stale() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = DaemonConfig::new(dir.path().join("mine"), dir.path());
        let path = config.socket();
        // SAFETY: a plain socket(2); the descriptor is closed at the end of the test.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket");
        // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (slot, byte) in addr.sun_path.iter_mut().zip(path.as_os_str().as_bytes()) {
            *slot = *byte as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: addr is a valid sockaddr_un of `len` bytes that outlives the call.
        let bound = unsafe { libc::bind(fd, std::ptr::addr_of!(addr).cast(), len) };
        assert_eq!(bound, 0, "bind");
        // The child calls listen() on our descriptor and exits at once: the socket keeps
        // listening (we hold it) with the credentials of a process that is gone.
        // SAFETY: the child runs only async-signal-safe calls (listen, _exit) before exiting.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: see above.
            unsafe {
                libc::listen(fd, 4);
                libc::_exit(0);
            }
        }
        assert!(child > 0, "fork");
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(listener(&path).await.is_some(), "still accepts connections");
        assert!(
            Occupant::find(&config).await.is_none(),
            "a listener that exited"
        );
        // SAFETY: closes the descriptor opened above, once.
        unsafe { libc::close(fd) };
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
