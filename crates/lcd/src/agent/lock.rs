//! The agent's pid file, which is also its lock: the agent holds an exclusive `flock` on it for its
//! whole life, so "an agent runs" is "the lock is held" (no stale pid file can fool it, and the
//! kernel drops the lock when the agent dies however it dies).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// The agent holding the lock on `path`, or None if no process holds it.
pub fn holder(path: &Path) -> Option<Holder> {
    let mut file = File::open(path).ok()?;
    if try_lock(&file, libc::LOCK_SH) {
        // Nobody holds it; ours goes when the file closes.
        return None;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    // Held but without a pid yet (the agent is writing it): running all the same.
    let mut numbers = text.split_whitespace().map(|n| n.parse().ok());
    Some(Holder {
        pid: numbers.next().flatten().unwrap_or(0),
        containerd: numbers.next().flatten(),
    })
}

/// What the lock file says about the agent holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// The agent's pid.
    pub pid: u32,
    /// The pid of the containerd it serves, once it knows it.
    pub containerd: Option<u32>,
}

/// Write the pid of the containerd the agent serves next to its own, in the file it holds.
pub fn note_containerd(file: &mut File, containerd: u32) -> Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{} {containerd}", std::process::id())?;
    Ok(())
}

/// Take the lock on `path` for this process and write our pid in it; None if another holds it.
/// The lock lasts as long as the returned file is open.
pub fn acquire(path: &Path) -> Result<Option<File>> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    // A shared lock is only ever a `holder` check, held for a moment: wait it out. An exclusive
    // one is another agent's.
    while !try_lock(&file, libc::LOCK_EX) {
        let probe = File::open(path).with_context(|| format!("open {}", path.display()))?;
        if !try_lock(&probe, libc::LOCK_SH) {
            return Ok(None);
        }
        drop(probe);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(Some(file))
}

fn try_lock(file: &File, kind: libc::c_int) -> bool {
    // SAFETY: flock on a descriptor we own; LOCK_NB makes it return at once.
    unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) == 0 }
}
