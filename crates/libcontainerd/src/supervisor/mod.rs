//! The managed containerd: a private containerd that this library starts, finds again and stops.
//!
//! This is the counterpart of moby's `libcontainerd/supervisor`. When the user gives no containerd
//! address, the `lcd` CLI calls [`Daemon::ensure_running`]: the first invocation starts a private
//! containerd with its own root, state and socket, and later invocations (separate processes) adopt it.
//! Integration tests start their own containerd the same way in a temporary directory.
//!
//! Layout, for a [`DaemonConfig`] with `root` and `state`:
//!
//! | path                            | what                                              |
//! |---------------------------------|---------------------------------------------------|
//! | `<root>/config.toml`            | the containerd configuration we generate           |
//! | `<root>/containerd`             | containerd's root (images, snapshots, metadata)   |
//! | `<state>/containerd`            | containerd's state (shim bundles, fifos)           |
//! | `<state>/containerd.sock`       | the gRPC socket (mode 0600)                        |
//! | `<state>/containerd.sock.ttrpc` | the ttrpc socket for shims (mode 0600)             |
//! | `<state>/containerd.pid`        | the pid of the running containerd                  |
//! | `<state>/containerd.root`       | the `root` of the containerd started here          |
//! | `<state>/containerd.lock`       | an flock that serialises starting and stopping     |
//! | `<state>/containerd.log`        | containerd's stdout and stderr, appended           |
//!
//! Unlike moby, which adopts whatever process the pid file names, a process counts as *our*
//! containerd only if it is alive (not a zombie), its executable is the configured binary and its
//! command line names our configuration file. Signals are sent through a pidfd opened before that
//! check, so a recycled pid is never signalled.
//!
//! Two roots may be given the same state directory (lcd's data roots share the default exec root).
//! Only one containerd can serve its sockets: while another root's containerd does, starting is
//! refused and its sockets and pid file are left alone, as dockerd refuses an exec root in use.
//!
//! The modules, from the bottom up (each uses only those above it):
//!
//! - `config`: [`DaemonConfig`], the paths it implies, finding the binary, rendering `config.toml`;
//! - `pidfd`: a process handle that signals through a pidfd, liveness, SIGTERM-then-SIGKILL;
//! - `files`: private directories, atomic writes, the start/stop lock, socket permissions and
//!   cleanup, the log tail quoted in errors;
//! - `identity`: the pid file and whether a process is our containerd;
//! - `launch`: spawning containerd detached and waiting until it serves;
//! - `occupant`: another root's containerd serving our sockets, which we must leave alone;
//! - `lifecycle`: [`Daemon`] and [`DaemonStatus`], the public start/adopt/stop/kill/status.

use std::time::Duration;

mod config;
mod files;
mod identity;
mod launch;
mod lifecycle;
mod occupant;
mod pidfd;

pub use config::{CriConfig, DaemonConfig};
pub use lifecycle::{Daemon, DaemonStatus};

/// How often the supervisor polls for a socket, a lock or an exit.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long to wait for a process to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
