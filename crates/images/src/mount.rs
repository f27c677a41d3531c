//! Mount a snapshot's mounts read-only in a directory of ours, to read files of an image.

use std::path::{Path, PathBuf};

use containerd_client::types::Mount;
use libcontainerd::{Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// A read-only mount, undone on drop (lazily, so a busy mount never leaks past its reader).
#[derive(Debug)]
pub(crate) struct Mounted {
    target: PathBuf,
}

impl Mounted {
    /// Mount `mounts` (as a snapshotter gives them) read-only at `target`.
    pub(crate) fn read_only(mounts: &[Mount], target: &Path) -> Result<Mounted> {
        let [m] = mounts else {
            return Err(Error::invalid(format!(
                "mount a snapshot at {}: expected one mount, the snapshotter gave {}",
                target.display(),
                mounts.len()
            )));
        };
        let context = || format!("mount {} ({}) at {}", m.source, m.r#type, target.display());
        let mut flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        let mut data = vec![];
        for option in &m.options {
            match option.as_str() {
                "ro" | "rw" => {}
                "bind" => flags |= MsFlags::MS_BIND,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                other => data.push(other),
            }
        }
        let fstype = if m.r#type == "bind" {
            flags |= MsFlags::MS_BIND;
            None
        } else {
            Some(m.r#type.as_str())
        };
        let data = data.join(",");
        let data = (!data.is_empty() && fstype.is_some()).then_some(data.as_str());
        mount(Some(m.source.as_str()), target, fstype, flags, data)
            .map_err(|e| Error::io(context(), e.into()))?;
        let mounted = Mounted {
            target: target.to_path_buf(),
        };
        if flags.contains(MsFlags::MS_BIND) {
            // A bind mount ignores MS_RDONLY until remounted.
            let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
            mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
                .map_err(|e| Error::io(format!("{}: remount read-only", context()), e.into()))?;
        }
        Ok(mounted)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = umount2(&self.target, MntFlags::MNT_DETACH) {
            tracing::warn!(target = %self.target.display(), error = %e, "unmounting an image view");
        }
    }
}

/// `path` inside `root` with symlinks resolved as if `root` were `/`: an image's `/etc/passwd`
/// may be a symlink, and must never lead to the host's files.
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut resolved: Vec<String> = vec![];
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(resolved.join("/")).join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = target.to_string_lossy().to_string();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
            Err(_) => resolved.push(part),
        }
    }
    Some(root.join(resolved.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/real"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/real", root.join("etc/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/real", root.join("etc/rel")).unwrap();
        std::os::unix::fs::symlink("/etc/loop", root.join("etc/loop")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/etc/abs").unwrap(),
            root.join("etc/real")
        );
        assert_eq!(
            resolve_in_root(root, "/etc/rel").unwrap(),
            root.join("etc/real")
        );
        assert_eq!(resolve_in_root(root, "/etc/loop"), None);
        assert_eq!(
            resolve_in_root(root, "/../etc/real").unwrap(),
            root.join("etc/real")
        );
    }
}
