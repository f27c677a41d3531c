//! `lcd diff ID`: what a container made from an image changed in its filesystem, as `docker diff`
//! prints it: `A path` added, `C path` changed (a directory too when something inside it changed),
//! `D path` deleted, sorted by path. The container's snapshot (a read-only view of it, so that a
//! running container is left alone) is compared with its parent, the image's top layer, by each
//! file's type, mode, owner, size and modification time, as docker compares layers.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::cli::DiffArgs;
use crate::container_fs::{ContainerRoot, ParentView};
use crate::context::Ctx;
use crate::state::{self, LABEL_ROOTFS};

/// One change, docker's letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Changed,
    Deleted,
}

impl Change {
    fn letter(self) -> char {
        match self {
            Change::Added => 'A',
            Change::Changed => 'C',
            Change::Deleted => 'D',
        }
    }
}

/// `lcd diff`.
pub async fn diff(ctx: &Ctx, args: DiffArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let container = state::load(&client, &args.id).await?;
    if let Some(dir) = container.labels().get(LABEL_ROOTFS) {
        bail!(
            "lcd diff needs a container made from an image: {} runs on the directory {dir} in place, with no original to compare it with",
            container.id()
        );
    }
    let Some(snapshot) = container.snapshot().cloned() else {
        bail!("container {} has no snapshot to compare", container.id());
    };
    let root = ContainerRoot::layer(&client, &container, false).await?;
    let parent = ParentView::open(&client, &snapshot).await?;
    let new = root.path().to_path_buf();
    let old = parent.as_ref().map(|p| p.path().to_path_buf());
    let compared = tokio::task::spawn_blocking(move || {
        let mut changes = BTreeMap::new();
        compare(&new, old.as_deref(), Path::new("/"), &mut changes).map(|_| changes)
    })
    .await
    .context("the diff task failed");
    if let Some(parent) = parent {
        parent.close().await;
    }
    drop(root);
    let mut out = String::new();
    for (path, change) in compared?? {
        out.push_str(&format!("{} {}\n", change.letter(), path.display()));
    }
    print!("{out}");
    Ok(0)
}

/// Record the changes under `rel` (a path inside both trees) of `new` against `old` (None: the
/// old tree has nothing there); returns whether anything under `rel` changed.
fn compare(
    new: &Path,
    old: Option<&Path>,
    rel: &Path,
    changes: &mut BTreeMap<PathBuf, Change>,
) -> Result<bool> {
    let new_names = names(&inside(new, rel))?;
    let old_names = match old {
        Some(old) => names(&inside(old, rel)).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut any = false;
    for name in &new_names {
        let path = rel.join(name);
        let Some(new_meta) = lstat(&inside(new, &path))? else {
            continue;
        };
        let old_meta = match old {
            Some(old) if old_names.contains(name) => lstat(&inside(old, &path))?,
            _ => None,
        };
        match old_meta {
            None => {
                changes.insert(path.clone(), Change::Added);
                if new_meta.is_dir() {
                    compare(new, None, &path, changes)?;
                }
                any = true;
            }
            Some(old_meta) => {
                let both_dirs = new_meta.is_dir() && old_meta.is_dir();
                let below = if both_dirs {
                    compare(new, old, &path, changes)?
                } else if new_meta.is_dir() {
                    compare(new, None, &path, changes)?
                } else {
                    false
                };
                if below || differs(&new_meta, &old_meta) {
                    changes.insert(path, Change::Changed);
                    any = true;
                }
            }
        }
    }
    for name in old_names.iter().filter(|n| !new_names.contains(n)) {
        changes.insert(rel.join(name), Change::Deleted);
        any = true;
    }
    Ok(any)
}

/// docker's test for a changed file: type and mode, owner, device, size (not of directories),
/// modification time.
fn differs(new: &Metadata, old: &Metadata) -> bool {
    new.mode() != old.mode()
        || new.uid() != old.uid()
        || new.gid() != old.gid()
        || new.rdev() != old.rdev()
        || (!new.is_dir() && new.size() != old.size())
        || new.mtime() != old.mtime()
        || new.mtime_nsec() != old.mtime_nsec()
}

/// `rel` (absolute inside the tree) under the tree's root on the host.
fn inside(root: &Path, rel: &Path) -> PathBuf {
    root.join(rel.strip_prefix("/").unwrap_or(rel))
}

/// A directory's entry names, sorted; nothing if it is gone.
fn names(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    let mut names = entries
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("read {}", dir.display()))?;
    names.sort();
    Ok(names)
}

/// A file's own metadata (never a link's target), or None if it is gone.
fn lstat(path: &Path) -> Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("stat {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn added_changed_and_deleted_files_read_like_dockers() {
        let old = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(old.path().join("etc")).unwrap();
        std::fs::write(old.path().join("etc/keep"), "same").unwrap();
        std::fs::write(old.path().join("etc/gone"), "x").unwrap();
        std::fs::create_dir_all(old.path().join("var/old")).unwrap();
        let new = tempfile::tempdir().unwrap();
        // A copy keeps the times, as an overlay copy-up does.
        let status = std::process::Command::new("cp")
            .args([
                "-a",
                &format!("{}/.", old.path().display()),
                &new.path().display().to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_file(new.path().join("etc/gone")).unwrap();
        std::fs::remove_dir(new.path().join("var/old")).unwrap();
        std::fs::create_dir_all(new.path().join("data/sub")).unwrap();
        let mut changes = BTreeMap::new();
        compare(new.path(), Some(old.path()), Path::new("/"), &mut changes).unwrap();
        let listed: Vec<String> = changes
            .iter()
            .map(|(p, c)| format!("{} {}", c.letter(), p.display()))
            .collect();
        assert_eq!(
            listed,
            [
                "A /data",
                "A /data/sub",
                "C /etc",
                "D /etc/gone",
                "C /var",
                "D /var/old"
            ]
        );
    }
}
