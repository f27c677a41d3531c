//! Where and how the managed containerd runs: [`DaemonConfig`], the paths it implies, the binary it
//! runs, and the containerd configuration file rendered from it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// The longest path a unix socket address can hold (`sun_path` is 108 bytes including the NUL).
const SOCKET_PATH_MAX: usize = 107;
/// Where to look for the binary when `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// containerd's CRI plugin: the API a kubelet drives, serving namespace `k8s.io`.
const CRI_PLUGIN: &str = "io.containerd.grpc.v1.cri";

/// Plugins the managed containerd does not load: the snapshotters that only log errors on an
/// ordinary host (aufs even runs `modprobe`), and `opt`, which would create `/opt/containerd`
/// outside our directories. CRI ([`CRI_PLUGIN`]) is off too unless [`DaemonConfig::cri`] asks
/// for it.
const DISABLED_PLUGINS: &[&str] = &[
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.internal.v1.opt",
];

/// Where and how to run the managed containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Persistent directory: containerd's root (`<root>/containerd`) and our `config.toml`.
    pub root: PathBuf,
    /// Runtime directory: containerd's state (`<state>/containerd`), the socket, the pid file, the
    /// lock file and the log. Keep it short: the socket path must fit in 107 bytes.
    pub state: PathBuf,
    /// The containerd binary; a bare name is looked up in `PATH`. Default `containerd`.
    pub binary: PathBuf,
    /// How long [`Daemon::ensure_running`] waits for containerd to answer. Default 15 s.
    ///
    /// [`Daemon::ensure_running`]: super::Daemon::ensure_running
    pub start_timeout: Duration,
    /// How long [`Daemon::stop`] waits after SIGTERM before SIGKILL. Default 15 s.
    ///
    /// [`Daemon::stop`]: super::Daemon::stop
    pub stop_timeout: Duration,
    /// Run containerd with log level `debug` instead of `info`.
    pub debug: bool,
    /// Serve the CRI API (the kubelet's) too; `None`, the default, leaves the CRI plugin off:
    /// an engine's own containerd has no kubelet, and CRI would start a streaming server and
    /// watch namespace `k8s.io` for nothing. For testing an engine next to Kubernetes on one
    /// containerd.
    pub cri: Option<CriConfig>,
}

/// The CRI plugin's settings for a managed containerd that serves a kubelet-style client. Its
/// files stay in the daemon's directories: the plugin's own under containerd's root and state,
/// runc's state under `<state>/runc-cri`, the CNI directories under `<root>/cni` (pods on the
/// host's network never call CNI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriConfig {
    /// The image of the pods' sandbox ("pause") containers, a reference stored in namespace
    /// `k8s.io` (containerd 1.6 would otherwise pull `registry.k8s.io/pause`). Its entrypoint must
    /// keep running until it is killed.
    pub sandbox_image: String,
}

impl DaemonConfig {
    /// A configuration with the default binary and timeouts. Relative paths are made absolute
    /// against the current directory.
    pub fn new(root: impl Into<PathBuf>, state: impl Into<PathBuf>) -> Self {
        DaemonConfig {
            root: make_absolute(root.into()),
            state: make_absolute(state.into()),
            binary: PathBuf::from("containerd"),
            start_timeout: Duration::from_secs(15),
            stop_timeout: Duration::from_secs(15),
            debug: false,
            cri: None,
        }
    }

    /// The gRPC socket clients connect to: `<state>/containerd.sock`.
    pub fn socket(&self) -> PathBuf {
        self.state.join("containerd.sock")
    }

    /// The pid file: `<state>/containerd.pid`.
    pub fn pid_file(&self) -> PathBuf {
        self.state.join("containerd.pid")
    }

    /// containerd's log (stdout and stderr, appended): `<state>/containerd.log`.
    pub fn log_file(&self) -> PathBuf {
        self.state.join("containerd.log")
    }

    /// containerd's own temporary directory, `<state>/tmp` (its `XDG_RUNTIME_DIR`): containerd
    /// 1.6 and 1.7 unpack a checkpoint restored from the content store into a `ctrd-checkpoint*`
    /// directory there and never remove it, which under `/tmp` grew by a checkpoint image per
    /// restore. Here it is emptied whenever the daemon starts.
    pub fn scratch_dir(&self) -> PathBuf {
        self.state.join("tmp")
    }

    /// The generated configuration: `<root>/config.toml`.
    pub(super) fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The ttrpc socket the shims connect back to.
    pub(super) fn ttrpc_socket(&self) -> PathBuf {
        self.state.join("containerd.sock.ttrpc")
    }

    /// The lock that serialises starting and stopping.
    pub(super) fn lock_file(&self) -> PathBuf {
        self.state.join("containerd.lock")
    }

    /// The root of the containerd last started on this state directory, so that another root's
    /// refusal can name it.
    pub(super) fn root_file(&self) -> PathBuf {
        self.state.join("containerd.root")
    }

    /// Check what can be checked without touching the filesystem.
    pub(super) fn validate(&self) -> Result<()> {
        for (what, dir) in [("root", &self.root), ("state", &self.state)] {
            if !dir.is_absolute() {
                return Err(Error::invalid(format!(
                    "containerd {what} directory {} is not absolute: pass an absolute path",
                    dir.display()
                )));
            }
        }
        // The ttrpc socket is the longest socket path.
        let longest = self.ttrpc_socket();
        let len = longest.as_os_str().len();
        if len > SOCKET_PATH_MAX {
            return Err(Error::invalid(format!(
                "containerd socket path {} is {len} bytes, longer than the {SOCKET_PATH_MAX}-byte unix socket limit: use a shorter state directory",
                longest.display()
            )));
        }
        if self.binary.as_os_str().is_empty() {
            return Err(Error::invalid(
                "containerd binary path is empty: pass a binary name or path",
            ));
        }
        Ok(())
    }

    /// The containerd 1.6 configuration (`version = 2`) for this daemon.
    pub(super) fn render(&self) -> Result<String> {
        let root = toml_path(&self.root.join("containerd"))?;
        let state = toml_path(&self.state.join("containerd"))?;
        let socket = toml_path(&self.socket())?;
        let ttrpc = toml_path(&self.ttrpc_socket())?;
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let level = if self.debug { "debug" } else { "info" };
        let cri_disabled = self.cri.is_none().then_some(CRI_PLUGIN);
        let disabled = cri_disabled
            .iter()
            .chain(DISABLED_PLUGINS)
            .map(|p| toml_string(p))
            .collect::<Vec<_>>()
            .join(", ");
        // bolt waits forever for its file lock by default; a bound turns a second containerd on the
        // same root into an error in the log instead of a hang.
        let bolt_timeout_ms = self.start_timeout.as_millis().max(1000);
        Ok(format!(
            "# Generated by libcontainerd for its managed containerd; rewritten at every start.\n\
             version = 2\n\
             root = {root}\n\
             state = {state}\n\
             oom_score = 0\n\
             disabled_plugins = [{disabled}]\n\
             \n\
             [grpc]\n  address = {socket}\n  uid = {uid}\n  gid = {gid}\n\
             \n\
             [ttrpc]\n  address = {ttrpc}\n  uid = {uid}\n  gid = {gid}\n\
             \n\
             [debug]\n  address = \"\"\n  level = \"{level}\"\n\
             \n\
             [timeouts]\n  \"io.containerd.timeout.bolt.open\" = \"{bolt_timeout_ms}ms\"\n\
             \n\
             [plugins]\n  [plugins.\"io.containerd.monitor.v1.cgroups\"]\n    no_prometheus = true\n\
             {cri}",
            cri = self.render_cri()?,
        ))
    }

    /// The CRI plugin's section, empty when it is off.
    fn render_cri(&self) -> Result<String> {
        let Some(cri) = &self.cri else {
            return Ok(String::new());
        };
        let image = toml_string(&cri.sandbox_image);
        let cni_bin = toml_path(&self.root.join("cni/bin"))?;
        let cni_conf = toml_path(&self.root.join("cni/net.d"))?;
        let runc_root = toml_path(&self.state.join("runc-cri"))?;
        // restrict_oom_score_adj: CRI gives sandboxes oom_score_adj -998, which runc cannot set
        // without CAP_SYS_RESOURCE (a containerd in a container, or a restricted root); clamping
        // to containerd's own score keeps pods startable there and changes nothing elsewhere.
        Ok(format!(
            "  [plugins.\"{CRI_PLUGIN}\"]\n    sandbox_image = {image}\n    restrict_oom_score_adj = true\n\
             \x20   [plugins.\"{CRI_PLUGIN}\".cni]\n      bin_dir = {cni_bin}\n      conf_dir = {cni_conf}\n\
             \x20   [plugins.\"{CRI_PLUGIN}\".containerd.runtimes.runc]\n      runtime_type = \"io.containerd.runc.v2\"\n\
             \x20   [plugins.\"{CRI_PLUGIN}\".containerd.runtimes.runc.options]\n      Root = {runc_root}\n"
        ))
    }
}

/// Find the containerd binary: a path is taken as is, a bare name is looked up in `PATH`.
pub(super) fn resolve_binary(binary: &Path) -> Result<PathBuf> {
    if binary.components().count() > 1 || binary.is_absolute() {
        let path = make_absolute(binary.to_path_buf());
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(binary_not_found(binary))
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| binary_not_found(binary))
}

pub(super) fn binary_not_found(binary: &Path) -> Error {
    let message = if binary.components().count() > 1 || binary.is_absolute() {
        format!(
            "containerd binary {:?} not found or not executable: install the containerd package or give the path of a containerd binary",
            binary.display().to_string()
        )
    } else {
        format!(
            "containerd binary {:?} not found in PATH: install the containerd package or give its path",
            binary.display().to_string()
        )
    };
    Error::new(ErrorKind::Unavailable, message)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn make_absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        std::path::absolute(&path).unwrap_or(path)
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path as a TOML string; containerd's config cannot hold non-UTF-8 paths.
fn toml_path(path: &Path) -> Result<String> {
    path.to_str().map(toml_string).ok_or_else(|| {
        Error::invalid(format!(
            "path {} is not valid UTF-8: choose a UTF-8 directory for the managed containerd",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_config_is_valid_and_escaped() {
        let mut config = DaemonConfig::new("/tmp/r\"x\\y", "/tmp/s");
        config.debug = true;
        let text = config.render().expect("render");
        assert!(
            text.contains("root = \"/tmp/r\\\"x\\\\y/containerd\""),
            "{text}"
        );
        assert!(text.contains("state = \"/tmp/s/containerd\""));
        assert!(text.contains("address = \"/tmp/s/containerd.sock\""));
        assert!(text.contains("address = \"/tmp/s/containerd.sock.ttrpc\""));
        assert!(text.contains("level = \"debug\""));
        assert!(text.contains("disabled_plugins = [\"io.containerd.grpc.v1.cri\""));
        assert!(!text.contains("sandbox_image"), "{text}");
        assert!(text.contains("\"io.containerd.timeout.bolt.open\" = \"15000ms\""));
        assert_eq!(toml_string("a\nb"), "\"a\\u000Ab\"");
    }

    #[test]
    fn cri_is_enabled_only_when_asked_for() {
        let mut config = DaemonConfig::new("/tmp/r", "/tmp/s");
        config.cri = Some(CriConfig {
            sandbox_image: "docker.io/test/pause:1".into(),
        });
        let text = config.render().expect("render");
        let disabled = text
            .lines()
            .find(|l| l.starts_with("disabled_plugins"))
            .expect("disabled_plugins");
        assert!(!disabled.contains("grpc.v1.cri"), "{disabled}");
        assert!(disabled.contains("snapshotter.v1.aufs"), "{disabled}");
        assert!(
            text.contains("sandbox_image = \"docker.io/test/pause:1\""),
            "{text}"
        );
        assert!(text.contains("restrict_oom_score_adj = true"), "{text}");
        assert!(text.contains("conf_dir = \"/tmp/r/cni/net.d\""), "{text}");
        assert!(text.contains("Root = \"/tmp/s/runc-cri\""), "{text}");
    }

    #[test]
    fn long_socket_path_is_rejected() {
        let long = format!("/tmp/{}", "x".repeat(90));
        let err = DaemonConfig::new("/tmp/r", long)
            .validate()
            .expect_err("too long");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("shorter state directory"), "{err}");
        DaemonConfig::new("/tmp/r", "/tmp/s")
            .validate()
            .expect("short path");
    }

    #[test]
    fn relative_paths_become_absolute() {
        let config = DaemonConfig::new("r", "s");
        assert!(config.root.is_absolute());
        assert!(config.socket().is_absolute());
    }

    #[test]
    fn missing_binary_is_unavailable() {
        let err = resolve_binary(Path::new("lcd-no-such-containerd")).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.message().contains("not found in PATH"), "{err}");
        let err = resolve_binary(Path::new("/nonexistent/containerd")).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        resolve_binary(Path::new("sh")).expect("sh is in PATH");
    }
}
