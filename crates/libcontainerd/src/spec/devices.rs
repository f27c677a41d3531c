//! Host devices in a container: `docker run --device` mappings and a privileged container's
//! whole `/dev`, as docker (moby `oci.DevicesFromPath`) and containerd (`oci.HostDevices`) read them.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// One `--device HOST[:CONTAINER[:PERMS]]` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceMapping {
    pub host: PathBuf,
    pub container: PathBuf,
    pub perms: String,
}

/// Directories of `/dev` a privileged container does not get (containerd's list): pseudo
/// terminals, shared memory and message queues are the container's own.
const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// Device cgroup permissions: some of `r`, `w`, `m`, each at most once.
pub(super) fn validate_perms(option: &str, perms: &str) -> Result<()> {
    let ok = !perms.is_empty()
        && perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && !perms
            .char_indices()
            .any(|(i, c)| perms[i + c.len_utf8()..].contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{option}: invalid permissions {perms:?}: use some of r, w and m (e.g. rwm)"
        )))
    }
}

/// The device node at `path` (not following a final symlink), or `None` if it is no block or
/// character device.
fn device_at(path: &Path) -> std::io::Result<Option<LinuxDevice>> {
    let meta = std::fs::symlink_metadata(path)?;
    let typ = if meta.file_type().is_block_device() {
        LinuxDeviceType::B
    } else if meta.file_type().is_char_device() {
        LinuxDeviceType::C
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    let mut device = LinuxDevice::default();
    device
        .set_path(path.to_path_buf())
        .set_typ(typ)
        .set_major(i64::from(libc::major(rdev)))
        .set_minor(i64::from(libc::minor(rdev)))
        .set_file_mode(Some(meta.mode() & 0o7777))
        .set_uid(Some(meta.uid()))
        .set_gid(Some(meta.gid()));
    Ok(Some(device))
}

fn cgroup_rule(device: &LinuxDevice, perms: &str) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true)
        .set_typ(Some(device.typ()))
        .set_major(Some(device.major()))
        .set_minor(Some(device.minor()))
        .set_access(Some(perms.to_string()));
    rule
}

/// The devices one mapping adds and the cgroup rules that allow them: a device node (a symlink to
/// one is followed), or every device under a directory, placed at the same relative path under the
/// container path. Anything else is an error naming the host path.
pub(super) fn from_mapping(
    mapping: &DeviceMapping,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let shown = mapping.host.display();
    let resolved = std::fs::canonicalize(&mapping.host).map_err(|e| {
        Error::invalid(format!("device {shown}: cannot use it on the host: {e}")).with_source(e)
    })?;
    let io_err = |e: std::io::Error| Error::invalid(format!("device {shown}: {e}")).with_source(e);
    if let Some(mut device) = device_at(&resolved).map_err(io_err)? {
        device.set_path(mapping.container.clone());
        let rule = cgroup_rule(&device, &mapping.perms);
        return Ok((vec![device], vec![rule]));
    }
    if !resolved.is_dir() {
        return Err(Error::invalid(format!(
            "device {shown} is not a device node (nor a directory of them)"
        )));
    }
    let mut devices = Vec::new();
    walk(&resolved, &mut |path| {
        if let Some(mut device) = device_at(path)? {
            let relative = path.strip_prefix(&resolved).unwrap_or(path);
            device.set_path(mapping.container.join(relative));
            devices.push(device);
        }
        Ok(())
    })
    .map_err(io_err)?;
    if devices.is_empty() {
        return Err(Error::invalid(format!(
            "device {shown}: the directory holds no device nodes"
        )));
    }
    let rules = devices
        .iter()
        .map(|d| cgroup_rule(d, &mapping.perms))
        .collect();
    Ok((devices, rules))
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, visit)?;
        } else {
            visit(&path)?;
        }
    }
    Ok(())
}

/// Every block and character device under `/dev` (containerd's `HostDevices`): not the skipped
/// directories, not `/dev/console`, not symlinks; a node that vanishes meanwhile is skipped.
pub(super) fn host_devices(dev: &Path) -> Result<Vec<LinuxDevice>> {
    let mut devices = Vec::new();
    collect_host_devices(dev, &mut devices)
        .map_err(|e| Error::io(format!("read host devices under {}", dev.display()), e))?;
    Ok(devices)
}

fn collect_host_devices(dir: &Path, out: &mut Vec<LinuxDevice>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if file_type.is_dir() {
            if !SKIPPED_DIRS.iter().any(|d| name == *d) {
                collect_host_devices(&path, out)?;
            }
            continue;
        }
        if name == "console" {
            continue;
        }
        match device_at(&path) {
            Ok(Some(device)) => out.push(device),
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The cgroup rule of a privileged container: every device, every access.
pub(super) fn allow_all() -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true)
        .set_typ(None)
        .set_major(None)
        .set_minor(None)
        .set_access(Some("rwm".to_string()));
    rule
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn mapping(host: &str, container: &str, perms: &str) -> DeviceMapping {
        DeviceMapping {
            host: host.into(),
            container: container.into(),
            perms: perms.into(),
        }
    }

    #[test]
    fn a_device_node_is_read_from_the_host() {
        let (devices, rules) = from_mapping(&mapping("/dev/null", "/dev/mynull", "rw")).unwrap();
        assert_eq!(devices.len(), 1);
        let null = &devices[0];
        assert_eq!(null.path(), &PathBuf::from("/dev/mynull"));
        assert_eq!(null.typ(), LinuxDeviceType::C);
        assert_eq!((null.major(), null.minor()), (1, 3));
        assert_eq!(null.file_mode(), Some(0o666));
        assert_eq!(rules[0].access().as_deref(), Some("rw"));
        assert_eq!((rules[0].major(), rules[0].minor()), (Some(1), Some(3)));
        assert!(rules[0].allow());
    }

    #[test]
    fn missing_and_non_devices_are_named() {
        let err = from_mapping(&mapping("/dev/nonexistent-device", "/dev/x", "rwm")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("device /dev/nonexistent-device: cannot use it on the host"),
            "{err}"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        let host = file.path().to_str().unwrap();
        let err = from_mapping(&mapping(host, "/dev/x", "rwm")).unwrap_err();
        assert!(err.to_string().contains("is not a device node"), "{err}");
    }

    #[test]
    fn perms_are_rwm_letters() {
        for good in ["r", "rw", "rwm", "mwr", "m"] {
            validate_perms("device", good).unwrap();
        }
        for bad in ["", "x", "rr", "rwmr", "RWM", "rw m"] {
            assert!(validate_perms("device", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_devices_skip_what_containerd_skips() {
        let devices = host_devices(Path::new("/dev")).unwrap();
        let paths: Vec<String> = devices
            .iter()
            .map(|d| d.path().display().to_string())
            .collect();
        assert!(paths.contains(&"/dev/null".to_string()), "{paths:?}");
        assert!(!paths
            .iter()
            .any(|p| p == "/dev/console" || p.starts_with("/dev/pts/")));
    }
}
