//! Trees in and out of tar streams for `cp` and `export`, each side run in a thread of its own
//! whose root is the container's (`chroot` after `unshare(CLONE_FS)`, which gives the thread a
//! root and working directory of its own): symbolic links in a container resolve inside it, as
//! they do for its processes, never to the host's files, however the container made them.

use std::fs::Metadata;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use tar::{EntryType, Header, HeaderMode};

/// Run `work` in a new thread whose `/` is `root` (the host's `/` needs no chroot), and return
/// what it returns.
pub fn in_root<T, F>(root: &Path, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let root = root.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("lcd-in-root".into())
        .spawn(move || {
            if root != Path::new("/") {
                // The thread's root and working directory become its own; the process's and
                // the other threads' stay as they are.
                // SAFETY: unshare takes flags only; CLONE_FS affects this thread alone.
                if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
                    return Err(std::io::Error::last_os_error())
                        .context("unshare the filesystem attributes");
                }
                nix::unistd::chroot(&root)
                    .with_context(|| format!("enter the container's root {}", root.display()))?;
                std::env::set_current_dir("/").context("enter the container's root")?;
            }
            work()
        })
        .context("start a thread")?;
    thread
        .join()
        .map_err(|_| anyhow!("a file copier thread panicked"))?
}

/// What the copied tree's top is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    Other,
}

/// The kind of `path` (following a final symbolic link if `follow`), or None if it is missing.
pub fn kind_of(path: &Path, follow: bool) -> Result<Option<Kind>> {
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    match meta {
        Ok(m) if m.is_dir() => Ok(Some(Kind::Directory)),
        Ok(_) => Ok(Some(Kind::Other)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("stat {}", path.display())),
    }
}

/// Write the tree at `source` to `out` as a tar stream whose top entry is named `name` (with
/// `name` empty, only what is inside a directory, at the top). `follow` follows `source` itself
/// if it is a symbolic link (links inside are kept as links); directories on another filesystem
/// than `source` are written empty (a running container's /proc, /sys and /dev are not its files).
pub fn write_tree(out: impl Write, source: &Path, name: &Path, follow: bool) -> Result<()> {
    let meta = if follow {
        std::fs::metadata(source)
    } else {
        std::fs::symlink_metadata(source)
    }
    .with_context(|| format!("stat {}", source.display()))?;
    let mut builder = tar::Builder::new(out);
    let device = meta.dev();
    if name.as_os_str().is_empty() {
        if meta.is_dir() {
            write_children(&mut builder, source, Path::new(""), device)?;
        }
    } else {
        write_entry(&mut builder, source, name, &meta, device)?;
    }
    builder
        .into_inner()
        .context("finish the tar stream")?
        .flush()?;
    Ok(())
}

fn write_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    meta: &Metadata,
    device: u64,
) -> Result<()> {
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(meta, HeaderMode::Complete);
    let kind = meta.file_type();
    let context = || format!("archive {}", path.display());
    if kind.is_file() {
        let file = std::fs::File::open(path).with_context(context)?;
        builder
            .append_data(&mut header, name, file)
            .with_context(context)?;
    } else if kind.is_dir() {
        header.set_size(0);
        builder
            .append_data(&mut header, name, std::io::empty())
            .with_context(context)?;
        if meta.dev() == device {
            write_children(builder, path, name, device)?;
        }
    } else if kind.is_symlink() {
        let target = std::fs::read_link(path).with_context(context)?;
        header.set_size(0);
        builder
            .append_link(&mut header, name, target)
            .with_context(context)?;
    } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
        header.set_entry_type(if kind.is_fifo() {
            EntryType::Fifo
        } else if kind.is_char_device() {
            EntryType::Char
        } else {
            EntryType::Block
        });
        let rdev = meta.rdev();
        header.set_device_major(libc::major(rdev))?;
        header.set_device_minor(libc::minor(rdev))?;
        header.set_size(0);
        builder
            .append_data(&mut header, name, std::io::empty())
            .with_context(context)?;
    } else {
        // Sockets cannot be archived; docker skips them too.
        tracing::debug!(path = %path.display(), "skipping a socket");
    }
    Ok(())
}

fn write_children<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    name: &Path,
    device: u64,
) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("read {}", dir.display()))?;
    // The same input gives the same archive.
    entries.sort();
    for path in entries {
        let Some(file_name) = path.file_name() else {
            continue;
        };
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            // Gone since the listing (a running container's files change).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
        };
        write_entry(builder, &path, &name.join(file_name), &meta, device)?;
    }
    Ok(())
}

/// Unpack the tar stream `input` into the directory `dir`, keeping modes and times; owners too
/// with `keep_owners` (else what is unpacked belongs to whoever runs lcd, as docker's cp does).
pub fn unpack(input: impl Read, dir: &Path, keep_owners: bool) -> Result<()> {
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(keep_owners);
    archive.set_overwrite(true);
    archive
        .unpack(dir)
        .with_context(|| format!("unpack into {}", dir.display()))
}

/// A pipe's two ends, as files: what one thread writes the other reads.
pub fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (read, write) = nix::unistd::pipe().context("make a pipe")?;
    Ok((std::fs::File::from(read), std::fs::File::from(write)))
}
