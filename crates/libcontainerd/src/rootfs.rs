//! A minimal root filesystem from the host's static busybox, so a first container needs no image.

use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, ErrorKind, Result};

/// Where Debian's `busybox-static` installs busybox.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// Build a busybox rootfs in `dir` (created if missing; must be empty if it exists): `/bin/busybox`,
/// one link per applet at its usual place, and the directories and files a container expects.
pub fn busybox(dir: &Path, busybox: &Path) -> Result<()> {
    check_static(busybox)?;
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).map_err(|e| Error::io(format!("read {}", dir.display()), e))?;
        if entries.next().is_some() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{} is not empty: give a new or empty directory",
                    dir.display()
                ),
            ));
        }
    }
    for (sub, mode) in [
        ("", 0o755),
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("var", 0o755),
        ("tmp", 0o1777),
    ] {
        let path = dir.join(sub);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&path)
            .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        // mkdir's mode is filtered by the umask; the sticky /tmp needs its bits exactly.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    }
    let target = dir.join("bin/busybox");
    std::fs::copy(busybox, &target).map_err(|e| {
        Error::io(
            format!("copy {} to {}", busybox.display(), target.display()),
            e,
        )
    })?;
    for applet in applets(busybox)? {
        let link = dir.join(&applet);
        if link == target || link.exists() {
            continue;
        }
        symlink("/bin/busybox", &link)
            .map_err(|e| Error::io(format!("link {}", link.display()), e))?;
    }
    for (file, content) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        (
            "etc/hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        ),
        ("etc/resolv.conf", ""),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, content)
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
    }
    Ok(())
}

/// A dynamically linked busybox would not run inside a rootfs without its libraries.
fn check_static(busybox: &Path) -> Result<()> {
    let bytes = std::fs::read(busybox).map_err(|e| {
        Error::io(
            format!(
                "read {} (install Debian's busybox-static package)",
                busybox.display()
            ),
            e,
        )
    })?;
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err(Error::invalid(format!(
            "{} is not an ELF binary",
            busybox.display()
        )));
    }
    // A dynamic executable names its loader in a PT_INTERP segment; its path string is a reliable tell.
    if bytes.windows(15).any(|w| w == b"/lib64/ld-linux")
        || bytes.windows(13).any(|w| w == b"/lib/ld-linux")
    {
        return Err(Error::invalid(format!(
            "{} is dynamically linked: install busybox-static",
            busybox.display()
        )));
    }
    Ok(())
}

/// The applets' install paths relative to `/`, e.g. `bin/sh`, `usr/bin/env`.
fn applets(busybox: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| Error::io(format!("run {} --list-full", busybox.display()), e))?;
    if !output.status.success() {
        return Err(Error::internal(format!(
            "{} --list-full failed: {}",
            busybox.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .filter(|l| !l.is_empty() && !l.split('/').any(|c| c == ".." || c.is_empty()))
        .map(PathBuf::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_rootfs_with_a_shell() {
        if !Path::new(DEFAULT_BUSYBOX).exists() {
            eprintln!("skipped: {DEFAULT_BUSYBOX} missing (install busybox-static)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        busybox(&root, Path::new(DEFAULT_BUSYBOX)).unwrap();
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(root.join("usr/bin/env").symlink_metadata().is_ok());
        let tmp = std::fs::metadata(root.join("tmp")).unwrap();
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
        let err = busybox(&root, Path::new(DEFAULT_BUSYBOX)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_missing_busybox_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = busybox(&dir.path().join("r"), Path::new("/nonexistent/busybox")).unwrap_err();
        assert!(err.to_string().contains("busybox-static"), "{err}");
    }
}
