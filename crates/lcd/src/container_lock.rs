//! One lcd at a time changes a container's task. Without a daemon, several lcd processes may act on
//! one container at once (`run -d` creating its task while `rm -f` removes the container, the
//! agent reaping an exit while `rm -f` deletes the same task), and containerd does not serialise
//! them: a task deleted twice at once, or created while its record is removed, can leave its shim
//! (and logger) running with nothing left that knows of it. Every step that creates, reaps or
//! deletes a task therefore holds the container's lock: an exclusive `flock` on
//! `<exec-root>/locks/<namespace>/<id>`, which the kernel drops however its holder dies.
//!
//! Holding is short (a create and start, a reap, a removal): an attached session does not hold it
//! while the container runs, so `rm -f` can always kill it.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::context::Ctx;

/// Proof that this process holds a container's lock; released when dropped.
#[derive(Debug)]
pub struct ContainerLock {
    // The lock lives as long as this open file description.
    _file: File,
    path: PathBuf,
}

impl ContainerLock {
    /// Wait for, and take, container `id`'s lock.
    pub async fn acquire(ctx: &Ctx, id: &str) -> Result<ContainerLock> {
        let dir = ctx.exec_root.join("locks").join(&ctx.namespace);
        let path = dir.join(id);
        match tokio::task::spawn_blocking(move || lock_blocking(&dir, path)).await {
            Ok(Err(e)) if is_permission_error(&e) => {
                Err(anyhow::anyhow!("{e:#}{}", crate::context::NEEDS_ROOT))
            }
            Ok(locked) => locked,
            Err(e) => Err(e).context("wait for a container's lock"),
        }
    }

    /// Release the lock of a container that was removed, and remove its file: a later container
    /// of the same name starts with a new one.
    pub fn remove(self) {
        // Unlinked while held: whoever waits on the old file sees, once it has the lock, that
        // the path no longer names it, and takes the path's new file instead.
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(path = %self.path.display(), error = %e, "removing a lock file");
            }
        }
    }

    /// Release the lock, removing its file if the container no longer exists (removed by whoever
    /// held the lock before us).
    pub async fn release(self, container: &libcontainerd::Container) {
        let lookup = container.client().load_container(container.id()).await;
        if matches!(lookup, Err(e) if e.kind() == libcontainerd::ErrorKind::NotFound) {
            self.remove();
        }
    }
}

fn lock_blocking(dir: &Path, path: PathBuf) -> Result<ContainerLock> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("open lock {}", path.display()))?;
        flock_exclusive(&file).with_context(|| format!("lock {}", path.display()))?;
        // The holder before us may have removed the file (its container went): a lock on an
        // unlinked file excludes nobody who opens the path now.
        let ours = file.metadata()?;
        match std::fs::symlink_metadata(&path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {
                return Ok(ContainerLock { _file: file, path });
            }
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
        }
    }
}

fn is_permission_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
    })
}

fn flock_exclusive(file: &File) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor this function borrows for the call; no memory involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_a_removed_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c1");
        let first = lock_blocking(dir.path(), path.clone()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let dir = dir.path().to_path_buf();
            let path = path.clone();
            std::thread::spawn(move || {
                let lock = lock_blocking(&dir, path).unwrap();
                tx.send(()).unwrap();
                lock
            })
        };
        // Held: the waiter cannot have it yet.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(100))
            .is_err());
        first.remove();
        rx.recv().unwrap();
        let second = waiter.join().unwrap();
        // The waiter holds the file now at the path (not the removed one): whoever opens the path
        // next is excluded.
        let third = File::open(&path).unwrap();
        // SAFETY: flock on a descriptor this test owns.
        let taken = unsafe { libc::flock(third.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(taken, -1, "a third process got the lock the waiter holds");
        drop(second);
    }
}
