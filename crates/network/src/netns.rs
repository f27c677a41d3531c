//! Pinning a container's network namespace: a bind mount of `/proc/PID/ns/net` on a file of ours
//! keeps the namespace (and the veth in it) alive after the container's processes are gone, until
//! DEL has run in it. The bridge plugin removes its masquerade rule only when it finds the veth's
//! address in the namespace, so a DEL after the namespace died would leave that rule behind.

use std::fs;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statfs::NSFS_MAGIC;

use crate::error::{Error, Result};

/// Bind-mount process `pid`'s network namespace on `path` (created empty).
pub(crate) fn pin(pid: u32, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    }
    fs::write(path, b"").map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    let source = format!("/proc/{pid}/ns/net");
    mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        Error::io(
            format!("pin network namespace {source} on {}", path.display()),
            e,
        )
    })
}

/// Whether `path` is a pinned namespace (nsfs), not a plain file that a reboot left.
pub(crate) fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Unmount the pin and remove the file (either may be gone already).
pub(crate) fn unpin(path: &Path) -> Result<()> {
    if is_pinned(path) {
        umount2(path, MntFlags::MNT_DETACH)
            .map_err(|e| Error::io(format!("unmount {}", path.display()), e))?;
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("remove {}", path.display()), e)),
    }
}
