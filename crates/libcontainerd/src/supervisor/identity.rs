//! Which process is our containerd: the pid file, and the checks a pid must pass before we adopt or
//! signal it (alive, our binary, our configuration file on its command line).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::config::{resolve_binary, DaemonConfig};
use super::files::write_atomic;
use super::pidfd::{process_live, Proc};
use crate::error::Result;

/// The executable our containerd runs.
struct ExeId {
    /// Canonical path of the configured binary.
    path: PathBuf,
    /// Its device and inode, when it exists.
    dev_ino: Option<(u64, u64)>,
}

/// What makes a process our containerd.
pub(super) struct Identity {
    exe: Option<ExeId>,
    config: PathBuf,
    config_canonical: Option<PathBuf>,
}

impl Identity {
    /// What identifies the containerd `config` describes.
    pub(super) fn of(config: &DaemonConfig) -> Identity {
        let exe = match resolve_binary(&config.binary) {
            Ok(path) => fs::canonicalize(&path).ok().map(|canonical| {
                let meta = fs::metadata(&canonical).ok();
                ExeId {
                    path: canonical,
                    dev_ino: meta.map(|m| (m.dev(), m.ino())),
                }
            }),
            // The binary may have been removed (upgrade) while our containerd runs.
            Err(_) if config.binary.is_absolute() => Some(ExeId {
                path: config.binary.clone(),
                dev_ino: None,
            }),
            Err(_) => None,
        };
        let config = config.config_file();
        Identity {
            exe,
            config_canonical: fs::canonicalize(&config).ok(),
            config,
        }
    }

    /// Whether `pid` is alive, runs our binary and was started with our config file.
    pub(super) fn is_ours(&self, pid: u32) -> bool {
        if pid <= 1 || pid == std::process::id() || !process_live(pid) {
            return false;
        }
        self.exe_matches(pid) && self.cmdline_matches(pid)
    }

    fn exe_matches(&self, pid: u32) -> bool {
        let Some(exe) = &self.exe else {
            return false;
        };
        let link = format!("/proc/{pid}/exe");
        if let Ok(target) = fs::read_link(&link) {
            // After a package upgrade the running binary shows as "<path> (deleted)".
            let bytes = target.as_os_str().as_bytes();
            let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
            if Path::new(OsStr::from_bytes(bytes)) == exe.path {
                return true;
            }
        }
        match (exe.dev_ino, fs::metadata(&link)) {
            (Some(dev_ino), Ok(meta)) => (meta.dev(), meta.ino()) == dev_ino,
            _ => false,
        }
    }

    fn cmdline_matches(&self, pid: u32) -> bool {
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let Some(arg) = config_arg(&cmdline) else {
            return false;
        };
        let arg = Path::new(&arg);
        if arg == self.config {
            return true;
        }
        match (&self.config_canonical, arg.is_absolute()) {
            (Some(ours), true) => fs::canonicalize(arg).is_ok_and(|theirs| &theirs == ours),
            _ => false,
        }
    }

    /// Our containerd found by scanning `/proc`, for when the pid file is missing or wrong.
    pub(super) fn scan(&self) -> Option<u32> {
        self.exe.as_ref()?;
        let entries = fs::read_dir("/proc").ok()?;
        let mut pids: Vec<u32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        pids.into_iter().find(|&pid| self.is_ours(pid))
    }

    /// Our running containerd, found through `pid_file` or else `/proc`, as a signalable handle.
    pub(super) fn locate(&self, pid_file: &Path) -> Option<Proc> {
        let recorded = match read_pid_file(pid_file) {
            PidFile::Pid(pid) => Some(pid),
            _ => None,
        };
        recorded
            .and_then(|pid| self.open_verified(pid))
            .or_else(|| self.scan().and_then(|pid| self.open_verified(pid)))
    }

    /// A handle for `pid` if it is our containerd. The pidfd is opened before the check, so the
    /// handle refers to the process that passed it.
    fn open_verified(&self, pid: u32) -> Option<Proc> {
        let proc = Proc::open(pid)?;
        (self.is_ours(pid) && !proc.has_exited()).then_some(proc)
    }
}

/// The `--config` argument in a NUL-separated command line.
fn config_arg(cmdline: &[u8]) -> Option<OsString> {
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    for (i, arg) in args.iter().enumerate() {
        if matches!(*arg, b"--config" | b"-config" | b"-c") {
            return args.get(i + 1).map(|v| OsStr::from_bytes(v).to_os_string());
        }
        for prefix in [&b"--config="[..], b"-config=", b"-c="] {
            if let Some(value) = arg.strip_prefix(prefix) {
                return Some(OsStr::from_bytes(value).to_os_string());
            }
        }
    }
    None
}

/// What the pid file holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PidFile {
    Missing,
    Invalid,
    Pid(u32),
}

pub(super) fn read_pid_file(path: &Path) -> PidFile {
    match fs::read_to_string(path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) if pid > 1 && pid <= i32::MAX as u32 => PidFile::Pid(pid),
            _ => PidFile::Invalid,
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => PidFile::Missing,
        Err(_) => PidFile::Invalid,
    }
}

/// Record `pid` in the pid file (atomically).
pub(super) fn write_pid_file(path: &Path, pid: u32) -> Result<()> {
    write_atomic(path, format!("{pid}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn config_arg_forms() {
        assert_eq!(
            config_arg(b"containerd\0--config\0/a/config.toml\0"),
            Some(OsString::from("/a/config.toml"))
        );
        assert_eq!(
            config_arg(b"containerd\0--config=/b.toml\0"),
            Some(OsString::from("/b.toml"))
        );
        assert_eq!(
            config_arg(b"containerd\0-c\0/c.toml"),
            Some(OsString::from("/c.toml"))
        );
        assert_eq!(config_arg(b"containerd\0--log-level\0debug\0"), None);
        assert_eq!(config_arg(b"containerd\0--config\0"), Some(OsString::new()));
    }

    #[test]
    fn pid_file_parsing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pid");
        assert_eq!(read_pid_file(&path), PidFile::Missing);
        for (text, want) in [
            ("1234\n", PidFile::Pid(1234)),
            (" 77 ", PidFile::Pid(77)),
            ("0", PidFile::Invalid),
            ("1", PidFile::Invalid),
            ("-5", PidFile::Invalid),
            ("4294967295", PidFile::Invalid),
            ("abc", PidFile::Invalid),
            ("", PidFile::Invalid),
        ] {
            fs::write(&path, text).expect("write");
            assert_eq!(read_pid_file(&path), want, "{text:?}");
        }
    }

    #[test]
    fn identity_rejects_unrelated_processes() {
        let config = DaemonConfig::new("/tmp/lcd-identity-r", "/tmp/lcd-identity-s");
        let id = Identity::of(&config);
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        assert!(process_live(pid));
        assert!(!id.is_ours(pid));
        assert!(!id.is_ours(std::process::id()));
        assert!(!id.is_ours(1));
        child.kill().expect("kill sleep");
        child.wait().expect("wait sleep");
        assert!(!process_live(pid));
    }
}
