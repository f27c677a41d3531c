//! Copy a directory out of an image into a host directory: what fills a new volume with the
//! image's files at its mount point (docker and nerdctl do the same). Owners, modes, symlinks,
//! device nodes and FIFOs are kept; hard links become copies.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use libcontainerd::{Client, Error, Result, Snapshot};
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::mount::{resolve_in_root, Mounted};
use crate::rootfs::{snapshot_mounts, tempfile_dir};

/// Copy what directory `path` of snapshot `snapshot` (e.g. a prepared container's) holds into
/// `dest` (an existing directory), through a temporary read-only mount. Returns false, copying
/// nothing, when `path` is not a directory in the snapshot.
pub async fn copy_from_snapshot(
    client: &Client,
    snapshot: &Snapshot,
    path: &str,
    dest: &Path,
) -> Result<bool> {
    let mounts = snapshot_mounts(client, &snapshot.snapshotter, &snapshot.key).await?;
    let (path, dest) = (path.to_string(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let dir = tempfile_dir()?;
        let mounted = Mounted::read_only(&mounts, dir.path())?;
        let copied = copy_dir_in_root(dir.path(), &path, &dest);
        drop(mounted);
        copied
    })
    .await
    .map_err(|e| Error::internal(format!("copy out of snapshot {}: {e}", snapshot.key)))?
}

/// Copy what directory `path` inside the root filesystem `root` holds (symlinks resolved inside
/// `root`) into `dest`. Returns false when `path` is not a directory there.
pub fn copy_dir_in_root(root: &Path, path: &str, dest: &Path) -> Result<bool> {
    let Some(source) = resolve_in_root(root, path) else {
        return Ok(false);
    };
    match std::fs::symlink_metadata(&source) {
        Ok(meta) if meta.is_dir() => {}
        _ => return Ok(false),
    }
    copy_contents(&source, dest)?;
    // The volume's root takes the directory's owner and mode, as docker's copy does.
    let meta = std::fs::symlink_metadata(&source).map_err(|e| io(&source, e))?;
    set_owner_and_mode(dest, &meta)?;
    Ok(true)
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("copy {}", path.display()), e)
}

fn set_owner_and_mode(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid())).map_err(|e| io(path, e))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| io(path, e))?;
    }
    Ok(())
}

/// Copy every entry of directory `source` into directory `dest`, recursively.
fn copy_contents(source: &Path, dest: &Path) -> Result<()> {
    for entry in std::fs::read_dir(source).map_err(|e| io(source, e))? {
        let entry = entry.map_err(|e| io(source, e))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from).map_err(|e| io(&from, e))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&to).map_err(|e| io(&to, e))?;
            copy_contents(&from, &to)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&from).map_err(|e| io(&from, e))?;
            std::os::unix::fs::symlink(target, &to).map_err(|e| io(&to, e))?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to).map_err(|e| io(&from, e))?;
        } else {
            let flag = if kind.is_fifo() {
                SFlag::S_IFIFO
            } else if kind.is_char_device() {
                SFlag::S_IFCHR
            } else if kind.is_block_device() {
                SFlag::S_IFBLK
            } else {
                continue; // a socket means nothing without its process
            };
            let mode = Mode::from_bits_truncate(meta.mode() & 0o7777);
            mknod(&to, flag, mode, meta.rdev()).map_err(|e| io(&to, e.into()))?;
        }
        set_owner_and_mode(&to, &meta)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_copied_with_modes_and_links_and_missing_paths_copy_nothing() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("srv/data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/file"), "x").unwrap();
        std::fs::set_permissions(
            data.join("sub/file"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::os::unix::fs::symlink("/srv/data", root.path().join("link")).unwrap();
        std::os::unix::fs::symlink("sub/file", data.join("rel")).unwrap();
        let dest = tempfile::tempdir().unwrap();
        // Through a symlink resolved inside the root, never the host's /srv.
        assert!(copy_dir_in_root(root.path(), "/link", dest.path()).unwrap());
        assert_eq!(
            std::fs::read_to_string(dest.path().join("sub/file")).unwrap(),
            "x"
        );
        let mode = std::fs::metadata(dest.path().join("sub/file"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            std::fs::read_link(dest.path().join("rel")).unwrap(),
            Path::new("sub/file")
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(!copy_dir_in_root(root.path(), "/nonexistent", empty.path()).unwrap());
        assert!(!copy_dir_in_root(root.path(), "/srv/data/sub/file", empty.path()).unwrap());
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    }
}
