//! The directory side of checkpoints: which user-given directories are acceptable, and the tar
//! archives CRIU images travel in. Directories and archives both come from users, so this is where
//! the hostile cases are refused: `..` in a path (moby#28769), archive entries that would land
//! outside the directory, set-uid bits, and files CRIU never writes (FIFOs, devices).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// The file every CRIU image directory has; a directory without it is not a checkpoint.
pub const CRIU_INVENTORY: &str = "inventory.img";

/// Refuse a user-given directory that could escape where the user meant (`..` components).
pub fn check_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Err(Error::invalid("checkpoint directory must not be empty"));
    }
    if dir.components().any(|c| c == Component::ParentDir) {
        return Err(Error::invalid(format!(
            "checkpoint directory {} must not contain '..'; give a path without it",
            dir.display()
        )));
    }
    Ok(())
}

/// Refuse, before anything is uploaded, a restore directory that holds no CRIU images: containerd
/// would only fail later, with a less telling error.
pub(super) fn check_restore_dir(dir: &Path) -> Result<()> {
    check_dir(dir)?;
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("checkpoint directory {}", dir.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "checkpoint {} is not a directory",
            dir.display()
        )));
    }
    if !dir.join(CRIU_INVENTORY).is_file() {
        return Err(Error::invalid(format!(
            "{} is not a checkpoint: it has no {CRIU_INVENTORY}; give a directory a checkpoint was made into",
            dir.display()
        )));
    }
    Ok(())
}

/// The directory a checkpoint is extracted into, and whether we made it (to undo on failure).
pub(super) struct CheckpointTarget {
    pub(super) dir: PathBuf,
    created: bool,
}

impl CheckpointTarget {
    /// Validate `dir` and make it if missing; an existing directory must be empty.
    pub(super) fn prepare(dir: &Path) -> Result<CheckpointTarget> {
        check_dir(dir)?;
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!(
                            "checkpoint directory {} is not empty; choose a new directory",
                            dir.display()
                        ),
                    ));
                }
                Ok(CheckpointTarget {
                    dir: dir.to_path_buf(),
                    created: false,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::io(format!("create checkpoint directory {}", dir.display()), e)
                })?;
                Ok(CheckpointTarget {
                    dir: dir.to_path_buf(),
                    created: true,
                })
            }
            Err(e) => Err(Error::io(
                format!("checkpoint directory {}", dir.display()),
                e,
            )),
        }
    }

    /// Remove whatever a failed checkpoint left: the directory if we made it, else its contents.
    pub(super) fn discard(&self) {
        let result = if self.created {
            std::fs::remove_dir_all(&self.dir)
        } else {
            remove_contents(&self.dir)
        };
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cleaning up a failed checkpoint");
        }
    }
}

fn remove_contents(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Tar the contents of `dir` (entries relative to it, sorted, symlinks kept as links) into `out`.
pub(super) fn write_tar(dir: &Path, out: &mut impl Write) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&relative))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        // Reverse so that popping visits directories in name order.
        for name in entries.into_iter().rev() {
            let path = relative.join(&name);
            let full = dir.join(&path);
            let kind = std::fs::symlink_metadata(&full)?.file_type();
            // CRIU writes files, directories and links; anything else (a FIFO would block a
            // reader, and tar mis-names them) does not belong in a checkpoint.
            if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{} is not a regular file, directory or symlink: not part of a CRIU image",
                        full.display()
                    ),
                ));
            }
            builder.append_path_with_name(&full, &path)?;
            if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    builder.into_inner()?.flush()
}

/// Untar `archive` into `dir`, keeping permissions and skipping entries that would escape it.
pub(super) fn unpack(archive: impl Read, dir: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(archive);
    archive.set_preserve_permissions(true);
    // CRIU images need no set-uid/set-gid bits; a blob carrying them must not plant such files.
    archive.set_mask(0o6000);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(false);
    for entry in archive.entries()? {
        // unpack_in refuses `..`, absolute paths and links out of `dir`, returning false.
        let mut entry = entry?;
        if !entry.unpack_in(dir)? {
            tracing::warn!(path = %String::from_utf8_lossy(&entry.path_bytes()), "skipped a checkpoint entry outside the directory");
        }
    }
    // Drain the padding so the network side is not left blocked on a full channel.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::content::CHUNK;

    #[test]
    fn parent_components_are_refused() {
        for bad in ["../x", "a/../b", "/tmp/..", ".."] {
            let err = check_dir(Path::new(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        assert_eq!(
            check_dir(Path::new("")).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        for good in ["x", "./x", "/tmp/cp", "a..b/c"] {
            check_dir(Path::new(good)).unwrap();
        }
    }

    #[test]
    fn tar_round_trip_keeps_files_dirs_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join(CRIU_INVENTORY), b"inventory").unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/pages-1.img"), vec![7u8; 3 * CHUNK + 5]).unwrap();
        std::fs::set_permissions(
            src.path().join("sub/pages-1.img"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("sub/pages-1.img", src.path().join("link")).unwrap();

        let mut archive = Vec::new();
        write_tar(src.path(), &mut archive).unwrap();
        let dst = tempfile::tempdir().unwrap();
        unpack(archive.as_slice(), dst.path()).unwrap();

        assert_eq!(
            std::fs::read(dst.path().join(CRIU_INVENTORY)).unwrap(),
            b"inventory"
        );
        let pages = dst.path().join("sub/pages-1.img");
        assert_eq!(std::fs::read(&pages).unwrap().len(), 3 * CHUNK + 5);
        let mode = std::fs::metadata(&pages).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_link(dst.path().join("link")).unwrap(),
            Path::new("sub/pages-1.img")
        );
        // The same directory tars to the same bytes: its digest is stable.
        let mut again = Vec::new();
        write_tar(src.path(), &mut again).unwrap();
        assert_eq!(archive, again);
    }

    #[test]
    fn entries_escaping_the_directory_are_skipped() {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in [("../escaped", b"evil".as_slice()), ("inside", b"ok")] {
            let mut header = tar::Header::new_gnu();
            // set_path refuses `..`, so write the raw name as a hostile archive would.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        let archive = builder.into_inner().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dst = root.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        unpack(archive.as_slice(), &dst).unwrap();
        assert!(!root.path().join("escaped").exists());
        assert_eq!(std::fs::read(dst.join("inside")).unwrap(), b"ok");
    }

    #[test]
    fn non_checkpoint_directories_are_refused_for_restore() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_restore_dir(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("is not a checkpoint"), "{err}");
        let err = check_restore_dir(&dir.path().join("missing")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        std::fs::write(dir.path().join(CRIU_INVENTORY), b"").unwrap();
        check_restore_dir(dir.path()).unwrap();
    }
}
