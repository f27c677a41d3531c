//! `lcd-logger file FILE`: the logging binary containerd's shim starts for a detached container
//! (`binary://` IO; containerd passes the URI's `file=FILE` query as two arguments). It appends the
//! container's stdout (fd 3) and stderr (fd 4) to FILE until both end, each read as timestamped
//! entries of its stream (see `log_format`), and closes fd 5 to tell the shim it is ready. A binary of its own, std only, so that the process each running detached
//! container keeps is small (lcd itself would map tens of MiB and start a runtime).
//!
//! Why not the shim's own `file://` IO: it shares one descriptor between the two streams and lets
//! the stdout copier close it, so stderr written after stdout ended is lost (containerd 1.6 and 1.7).
//! Here each stream has a descriptor of its own on the same O_APPEND file, and each write lands
//! whole at the end.
//!
//! It exits when the container's output ends: when every writer of both pipes has closed them,
//! which is when the task is deleted (the shim keeps its ends open until then). lcd's agent deletes
//! a detached container's task as soon as it has recorded the exit, so the logger goes with the
//! container. It holds an exclusive lock on the log file while it runs: a second logger for the
//! same file refuses to start.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

// The format `lcd logs` reads; only the writing half is used here.
#[allow(dead_code)]
#[path = "log_format.rs"]
mod log_format;

use log_format::Stream;

/// The fds containerd's shim hands a logging binary.
const STDOUT_FD: RawFd = 3;
const STDERR_FD: RawFd = 4;
const READY_FD: RawFd = 5;

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let path = match args.as_slice() {
        [key, path] if key == "file" => PathBuf::from(path),
        _ => {
            eprintln!("usage: lcd-logger file FILE (run by containerd's shim for lcd's detached containers)");
            std::process::exit(2);
        }
    };
    if let Err(e) = log_to(&path) {
        eprintln!("lcd-logger: {e:#}");
        std::process::exit(1);
    }
}

/// Run the logger; returns once both streams have ended.
fn log_to(path: &Path) -> Result<()> {
    for fd in [STDOUT_FD, STDERR_FD, READY_FD] {
        // SAFETY: F_GETFD only queries whether the descriptor is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            bail!("lcd-logger is run by containerd's shim, with the container's output on fds 3 and 4 (fd {fd} is not open)");
        }
    }
    // SAFETY: the three fds are open (checked above) and nothing else in this process uses them.
    let (stdout, stderr, ready) = unsafe {
        (
            OwnedFd::from_raw_fd(STDOUT_FD),
            OwnedFd::from_raw_fd(STDERR_FD),
            OwnedFd::from_raw_fd(READY_FD),
        )
    };
    // The shim sends SIGTERM when the task is deleted; by then both streams have ended or are about
    // to, and what is still in the pipes must reach the file (the shim SIGKILLs after 12 s).
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            // Never through a symlink someone planted at the log's path.
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("open log file {}", path.display()))
    };
    let (out_file, err_file) = (open()?, open()?);
    // One logger per log file, ever: a second (a task made again while an old one's logger still
    // drains) would interleave two containers' output. The lock goes when this process exits.
    // SAFETY: flock on a descriptor we own; LOCK_NB makes it return at once.
    if unsafe { libc::flock(out_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!(
            "{} is being written by another lcd-logger: refusing to write it too",
            path.display()
        );
    }
    drop(ready);
    let err_copier = std::thread::spawn(move || copy(stderr, err_file, Stream::Stderr));
    let out_result = copy(stdout, out_file, Stream::Stdout);
    let err_result = err_copier
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the stderr copier panicked")));
    out_result.and(err_result)
}

/// Copy one stream into the file until it ends, each read as entries written at once (one
/// `write` on an O_APPEND file: the other stream's entries never land inside them).
fn copy(from: OwnedFd, mut to: File, stream: Stream) -> Result<()> {
    let mut from = File::from(from);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("read the container's output"),
        };
        let entries = log_format::encode(stream, &buf[..n], std::time::SystemTime::now());
        to.write_all(&entries).context("write to the log file")?;
    }
    to.flush()?;
    Ok(())
}
