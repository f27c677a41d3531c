//! What every command needs: where containerd is (given, or our managed one), the namespace, and the
//! directories lcd keeps its files in.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use libcontainerd::supervisor::{Daemon, DaemonConfig};
use libcontainerd::{Client, ClientConfig, ErrorKind, Id, Output, Runtime};

/// Global settings, from flags or the environment.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// containerd's socket; `None` means the managed containerd.
    pub address: Option<PathBuf>,
    /// The containerd namespace.
    pub namespace: String,
    /// Persistent files: managed containerd's root, container logs.
    pub data_root: PathBuf,
    /// Runtime files: managed containerd's state and socket, bundle dirs.
    pub exec_root: PathBuf,
    /// The containerd binary for the managed daemon.
    pub containerd: PathBuf,
    /// Let commands change containers that Kubernetes manages (see [`crate::cri`]).
    pub force_kubernetes: bool,
}

impl Ctx {
    /// The managed containerd's supervisor.
    pub fn daemon(&self) -> Daemon {
        let mut config = DaemonConfig::new(
            self.data_root.join("containerd"),
            self.exec_root.join("containerd"),
        );
        config.binary = self.containerd.clone();
        Daemon::new(config)
    }

    /// The socket to use, starting the managed containerd (and lcd's agent beside it, see
    /// [`crate::agent`]) if no address was given.
    pub async fn socket(&self) -> Result<PathBuf> {
        match &self.address {
            Some(address) => Ok(address.clone()),
            None => {
                check_private_root("data root", &self.data_root)?;
                check_private_root("exec root", &self.exec_root)?;
                let daemon = self.daemon();
                let pid = self.ensure_daemon(&daemon).await?;
                crate::agent::ensure(self, pid).await?;
                Ok(daemon.config().socket())
            }
        }
    }

    /// Start the managed containerd unless it runs; returns its pid. The library's messages name
    /// no lcd flags: where one of ours is the fix, this adds it.
    pub async fn ensure_daemon(&self, daemon: &Daemon) -> Result<u32> {
        daemon.ensure_running().await.map_err(|err| {
            if is_permission_error(&err) {
                // Not the library's error any more: its kind must not make this a 126.
                return anyhow::anyhow!("start the managed containerd: {err}{NEEDS_ROOT}");
            }
            let hint = match err.kind() {
                // Another data root's containerd serves our exec root (the default one is shared).
                ErrorKind::FailedPrecondition => " (each --data-root needs its own --exec-root)",
                ErrorKind::Unavailable if !is_found(&self.containerd) => {
                    " (--containerd or LCD_CONTAINERD names the binary)"
                }
                _ => "",
            };
            anyhow::Error::new(err).context(format!("start the managed containerd{hint}"))
        })
    }

    /// Where this namespace's bundle dirs live.
    pub fn bundles_dir(&self) -> PathBuf {
        self.exec_root.join("bundles").join(&self.namespace)
    }

    /// A detached container's output: appended to its log file by `lcd-logger` (installed next to
    /// lcd), which the shim starts (containerd's own `file://` IO loses stderr written after stdout
    /// has ended).
    pub fn log_output(&self, id: &Id) -> Result<Output> {
        check_private_root("data root", &self.data_root)?;
        let log = self.log_path(id);
        if let Some(dir) = log.parent() {
            // Only root reads and writes the logs (docker keeps them 0710 under a 0710 root).
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("create {}", dir.display()))?;
        }
        let lcd = std::env::current_exe().context("find lcd's own binary")?;
        let logger = lcd.with_file_name("lcd-logger");
        if !logger.is_file() {
            bail!(
                "{} is missing: detached containers log through it (cargo build -p lcd builds it next to lcd)",
                logger.display()
            );
        }
        Ok(Output::Binary {
            path: logger,
            args: vec![("file".into(), log.to_string_lossy().into_owned())],
        })
    }

    /// Where a detached container's output is written.
    pub fn log_path(&self, id: &Id) -> PathBuf {
        self.data_root
            .join("logs")
            .join(&self.namespace)
            .join(format!("{id}.log"))
    }

    /// Where a container's checkpoints are kept unless --checkpoint-dir says otherwise (docker
    /// keeps them in the container's own directory); `lcd rm` removes it with the container.
    pub fn checkpoints_dir(&self, id: &Id) -> PathBuf {
        self.data_root
            .join("checkpoints")
            .join(&self.namespace)
            .join(id.as_str())
    }

    /// The runtime lcd creates containers with: runc v2, with runc's state under our exec root (as
    /// dockerd keeps it under /run/docker), so that two lcd roots never share runc state, and with
    /// the criu lcd finds in its own PATH (the one `lcd checkpoint` checks), so that checkpoints do
    /// not depend on containerd's PATH (containerd 1.7's shim ignores it and uses its PATH, which
    /// for lcd's own containerd is lcd's).
    pub fn runtime(&self) -> Runtime {
        let mut runtime = Runtime::default();
        if let Some(options) = runtime.options.as_mut() {
            options.root = self.exec_root.join("runc").to_string_lossy().into_owned();
        }
        match libcontainerd::checkpoint::find_criu() {
            Some(criu) => runtime.with_criu(criu.to_string_lossy()),
            None => runtime,
        }
    }

    /// A connected client.
    pub async fn client(&self) -> Result<Client> {
        let socket = self.socket().await?;
        let connected = Client::connect(ClientConfig::new(
            socket,
            self.namespace.clone(),
            self.bundles_dir(),
        ))
        .await;
        match connected {
            Err(e) if is_permission_error(&e) => Err(anyhow::anyhow!("{e}{NEEDS_ROOT}")),
            Err(e) if self.address.is_some() && e.kind() == ErrorKind::Unavailable => {
                // The library says what failed; where to look next is lcd's to say.
                Err(anyhow::anyhow!(
                    "{e} (without --address, lcd starts its own containerd)"
                ))
            }
            connected => Ok(connected?),
        }
    }
}

/// What a permission error means for lcd when it runs as a user other than root.
pub const NEEDS_ROOT: &str = " (lcd needs root: run it as root, or give a rootless containerd's socket with --address and data and exec roots of your own)";

/// A refusal by the file system (the data root, the socket), as a non-root user meets it.
fn is_permission_error(err: &libcontainerd::Error) -> bool {
    err.kind() == ErrorKind::PermissionDenied
        || err.to_string().contains("Permission denied (os error 13)")
}

/// Whether `binary` is an executable file: a path as it is, a bare name in `PATH` (as the library
/// looks for it).
fn is_found(binary: &Path) -> bool {
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if binary.components().count() > 1 || binary.is_absolute() {
        return executable(binary);
    }
    // Without PATH the library searches a default one; without knowing it, add no hint.
    std::env::var_os("PATH").is_none_or(|path| {
        std::env::split_paths(&path).any(|dir| dir.is_absolute() && executable(&dir.join(binary)))
    })
}

/// Refuse a root directory that users other than its owner (and root) can write to: anyone who
/// could plant a file or a symlink there could make lcd, running as root, write through it (as
/// dockerd refuses such roots). A root that does not exist yet is made by lcd itself.
fn check_private_root(what: &str, root: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(root) else {
        return Ok(());
    };
    let mode = meta.permissions().mode();
    let world_writable = mode & 0o002 != 0;
    let foreign_owner = meta.uid() != 0 && meta.uid() != nix::unistd::geteuid().as_raw();
    if world_writable || foreign_owner {
        bail!(
            "{what} {} is writable by other users (mode {:04o}, owner uid {}): give lcd a directory only root can write to (chmod o-w, chown root)",
            root.display(),
            mode & 0o7777,
            meta.uid()
        );
    }
    Ok(())
}
