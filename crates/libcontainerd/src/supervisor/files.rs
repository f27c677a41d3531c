//! The managed containerd's files: private directories, atomic writes, the start/stop lock, the
//! sockets' permissions, removing what a stopped containerd left, and quoting its log in errors.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::config::DaemonConfig;
use super::{KILL_WAIT, POLL_INTERVAL};
use crate::error::{Error, ErrorKind, Result};

/// How many log lines an error message quotes.
const LOG_TAIL_LINES: usize = 5;
/// The longest log line an error message quotes.
const LOG_LINE_MAX: usize = 400;

/// Create `dir` (and missing parents) with mode 0700. An existing directory is left as it is, with
/// a warning if others can write to it.
pub(super) fn create_private_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.permissions().mode() & 0o022 != 0 {
                tracing::warn!(dir = %dir.display(), "managed containerd directory is writable by others; use a private directory");
            }
            Ok(())
        }
        Ok(_) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} exists and is not a directory: remove it or choose another directory",
                dir.display()
            ),
        )),
        Err(_) => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(format!("create directory {}", dir.display()), e))?;
            // The umask may have narrowed or the mode may need widening to exactly 0700.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(format!("chmod directory {}", dir.display()), e))
        }
    }
}

/// Replace `path` with `contents` through a temporary file and a rename (mode 0600).
pub(super) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        io::Write::write_all(&mut file, contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(format!("write {}", path.display()), e)
    })
}

pub(super) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io(format!("remove {}", path.display()), err)),
    }
}

/// Remove the pid file, the sockets and the recorded root. Only for when no containerd serves them
/// any more: a client that finds no socket cannot reach a containerd that is still running.
pub(super) fn remove_runtime_files(config: &DaemonConfig) -> Result<()> {
    for path in [
        config.pid_file(),
        config.socket(),
        config.ttrpc_socket(),
        config.root_file(),
    ] {
        remove_if_exists(&path)?;
    }
    Ok(())
}

/// Record `config.root` in the state directory, for the containerd about to start there.
pub(super) fn record_root(config: &DaemonConfig) -> Result<()> {
    let mut contents = config.root.as_os_str().as_bytes().to_vec();
    contents.push(b'\n');
    write_atomic(&config.root_file(), &contents)
}

/// The root [`record_root`] recorded, if the file is there.
pub(super) fn recorded_root(config: &DaemonConfig) -> Option<PathBuf> {
    let mut contents = fs::read(config.root_file()).ok()?;
    if contents.last() == Some(&b'\n') {
        contents.pop();
    }
    (!contents.is_empty()).then(|| PathBuf::from(OsString::from_vec(contents)))
}

/// Restrict the sockets to their owner (containerd creates them 0660).
pub(super) fn secure_sockets(config: &DaemonConfig) -> Result<()> {
    for path in [config.socket(), config.ttrpc_socket()] {
        match fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::io(format!("chmod {}", path.display()), err)),
        }
    }
    Ok(())
}

/// Take the start/stop lock, polling so that the wait is bounded and cancellation is safe.
pub(super) async fn lock(config: &DaemonConfig) -> Result<Flock<File>> {
    let path = config.lock_file();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("open lock file {}", path.display()), e))?;
    // A holder waits at most start_timeout (starting) or stop_timeout plus the SIGKILL wait
    // (stopping); allow both and some slack.
    let patience = config.start_timeout + config.stop_timeout + KILL_WAIT * 2;
    let deadline = Instant::now() + patience;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
                file = f;
                if Instant::now() >= deadline {
                    return Err(Error::new(
                        ErrorKind::DeadlineExceeded,
                        format!(
                            "timed out after {patience:?} waiting for lock {}: another process is starting or stopping containerd, retry later",
                            path.display()
                        ),
                    ));
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            Err((_, errno)) => {
                return Err(Error::io(
                    format!("lock {}", path.display()),
                    io::Error::from(errno),
                ))
            }
        }
    }
}

/// The last lines the log got after `offset`, on one line.
pub(super) fn log_tail(path: &Path, offset: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        // Read at most the last 64 KiB of this run's output.
        let start = offset.max(len.saturating_sub(64 * 1024));
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let text = match read() {
        Ok(text) => text,
        Err(err) => return format!("cannot read the log: {err}"),
    };
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.len() > LOG_LINE_MAX {
                let mut end = LOG_LINE_MAX;
                while !l.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}...", &l[..end])
            } else {
                l.to_string()
            }
        })
        .collect();
    if lines.is_empty() {
        return "containerd wrote nothing to its log".to_string();
    }
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!("last log lines: {}", tail.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_root_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = DaemonConfig::new(dir.path().join("r oot\n"), dir.path());
        assert_eq!(recorded_root(&config), None);
        record_root(&config).expect("record");
        assert_eq!(recorded_root(&config), Some(config.root.clone()));
        remove_runtime_files(&config).expect("remove");
        assert_eq!(recorded_root(&config), None);
    }

    #[test]
    fn log_tail_takes_the_last_lines_after_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        fs::write(&path, "old run\n").expect("write");
        let offset = fs::metadata(&path).expect("stat").len();
        let mut text = String::new();
        for i in 0..10 {
            text.push_str(&format!("line {i}\n"));
        }
        fs::write(&path, format!("old run\n{text}")).expect("write");
        let tail = log_tail(&path, offset);
        assert_eq!(
            tail,
            "last log lines: line 5 | line 6 | line 7 | line 8 | line 9"
        );
        assert_eq!(
            log_tail(&path, fs::metadata(&path).expect("stat").len()),
            "containerd wrote nothing to its log"
        );
    }
}
