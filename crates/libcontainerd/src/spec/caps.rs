//! Capability names and numbers, and docker's rules for `--cap-add`, `--cap-drop` and
//! `--privileged` (moby `oci/caps.TweakCapabilities`).

use std::collections::HashSet;

use oci_spec::runtime::{Capabilities, Capability};

use crate::error::{Error, Result};

/// Every capability the library knows, by kernel number (`include/uapi/linux/capability.h`).
pub(super) const CAPABILITIES: [(u8, &str, Capability); 41] = [
    (0, "CAP_CHOWN", Capability::Chown),
    (1, "CAP_DAC_OVERRIDE", Capability::DacOverride),
    (2, "CAP_DAC_READ_SEARCH", Capability::DacReadSearch),
    (3, "CAP_FOWNER", Capability::Fowner),
    (4, "CAP_FSETID", Capability::Fsetid),
    (5, "CAP_KILL", Capability::Kill),
    (6, "CAP_SETGID", Capability::Setgid),
    (7, "CAP_SETUID", Capability::Setuid),
    (8, "CAP_SETPCAP", Capability::Setpcap),
    (9, "CAP_LINUX_IMMUTABLE", Capability::LinuxImmutable),
    (10, "CAP_NET_BIND_SERVICE", Capability::NetBindService),
    (11, "CAP_NET_BROADCAST", Capability::NetBroadcast),
    (12, "CAP_NET_ADMIN", Capability::NetAdmin),
    (13, "CAP_NET_RAW", Capability::NetRaw),
    (14, "CAP_IPC_LOCK", Capability::IpcLock),
    (15, "CAP_IPC_OWNER", Capability::IpcOwner),
    (16, "CAP_SYS_MODULE", Capability::SysModule),
    (17, "CAP_SYS_RAWIO", Capability::SysRawio),
    (18, "CAP_SYS_CHROOT", Capability::SysChroot),
    (19, "CAP_SYS_PTRACE", Capability::SysPtrace),
    (20, "CAP_SYS_PACCT", Capability::SysPacct),
    (21, "CAP_SYS_ADMIN", Capability::SysAdmin),
    (22, "CAP_SYS_BOOT", Capability::SysBoot),
    (23, "CAP_SYS_NICE", Capability::SysNice),
    (24, "CAP_SYS_RESOURCE", Capability::SysResource),
    (25, "CAP_SYS_TIME", Capability::SysTime),
    (26, "CAP_SYS_TTY_CONFIG", Capability::SysTtyConfig),
    (27, "CAP_MKNOD", Capability::Mknod),
    (28, "CAP_LEASE", Capability::Lease),
    (29, "CAP_AUDIT_WRITE", Capability::AuditWrite),
    (30, "CAP_AUDIT_CONTROL", Capability::AuditControl),
    (31, "CAP_SETFCAP", Capability::Setfcap),
    (32, "CAP_MAC_OVERRIDE", Capability::MacOverride),
    (33, "CAP_MAC_ADMIN", Capability::MacAdmin),
    (34, "CAP_SYSLOG", Capability::Syslog),
    (35, "CAP_WAKE_ALARM", Capability::WakeAlarm),
    (36, "CAP_BLOCK_SUSPEND", Capability::BlockSuspend),
    (37, "CAP_AUDIT_READ", Capability::AuditRead),
    (38, "CAP_PERFMON", Capability::Perfmon),
    (39, "CAP_BPF", Capability::Bpf),
    (40, "CAP_CHECKPOINT_RESTORE", Capability::CheckpointRestore),
];

/// Docker's default capability set (moby `oci/caps.DefaultCapabilities`), in docker's order.
pub(super) const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The magic `--cap-add ALL` / `--cap-drop ALL` value.
const ALL: &str = "ALL";

/// The canonical name (`CAP_NET_ADMIN`) of `name` as docker accepts it: any case, with or without
/// the `CAP_` prefix, or `ALL`. Unknown names are an error naming `option`.
pub fn normalize_capability(option: &str, name: &str) -> Result<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == ALL {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if CAPABILITIES.iter().any(|(_, n, _)| *n == full) {
        Ok(full)
    } else {
        Err(Error::invalid(format!(
            "{option}: unknown capability {name:?} (e.g. NET_ADMIN, CAP_SYS_PTRACE or ALL)"
        )))
    }
}

/// The kernel number of a canonical capability name.
pub(super) fn number(name: &str) -> Option<u8> {
    CAPABILITIES
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(bit, _, _)| *bit)
}

fn capability(name: &str) -> Option<Capability> {
    CAPABILITIES
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(_, _, c)| *c)
}

/// What the host offers: the highest capability number its kernel knows
/// (`/proc/sys/kernel/cap_last_cap`) and this process's bounding set, which is what `ALL` means to
/// docker (containerd's `cap.Current`). Unknown parts are `None`: then every known capability counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct HostCaps {
    pub last_cap: Option<u8>,
    pub bounding: Option<u64>,
}

impl HostCaps {
    pub fn read() -> HostCaps {
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let bounding = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status.lines().find_map(|line| {
                    line.strip_prefix("CapBnd:")
                        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                })
            });
        HostCaps { last_cap, bounding }
    }

    fn supports(&self, bit: u8) -> bool {
        self.last_cap.is_none_or(|last| bit <= last)
            && self.bounding.is_none_or(|set| set & (1u64 << bit) != 0)
    }

    /// `ALL`: every known capability the host supports and this process holds, by number.
    fn all(&self) -> Vec<String> {
        CAPABILITIES
            .iter()
            .filter(|(bit, _, _)| self.supports(*bit))
            .map(|(_, name, _)| name.to_string())
            .collect()
    }
}

/// The capability set a container gets, by docker's rules: privileged gets `ALL`; `--cap-add ALL`
/// is `ALL` minus the drops; `--cap-drop ALL` is exactly the adds; otherwise the defaults minus the
/// drops plus the adds. Names are canonical (see [`normalize_capability`]); a capability the host
/// cannot grant is refused, as docker does.
pub(super) fn effective_set(
    adds: &[String],
    drops: &[String],
    privileged: bool,
    host: &HostCaps,
) -> Result<Vec<String>> {
    for (option, names) in [("cap_add", adds), ("cap_drop", drops)] {
        for name in names.iter().filter(|n| *n != ALL) {
            let bit = number(name)
                .ok_or_else(|| Error::invalid(format!("{option}: unknown capability {name:?}")))?;
            if !host.supports(bit) {
                return Err(Error::invalid(format!(
                    "{option}: capability {name} is not supported by this kernel or not available to this process"
                )));
            }
        }
    }
    let caps: Vec<String> = if privileged {
        host.all()
    } else if adds.iter().any(|c| c == ALL) {
        host.all()
            .into_iter()
            .filter(|c| !drops.contains(c))
            .collect()
    } else if drops.iter().any(|c| c == ALL) {
        adds.to_vec()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drops.contains(c))
            .chain(adds.iter().cloned())
            .collect()
    };
    // Keep the first of any duplicate, so the order stays docker's.
    let mut seen = HashSet::new();
    Ok(caps
        .into_iter()
        .filter(|c| seen.insert(c.clone()))
        .collect())
}

/// The spec's form of a set of canonical names.
pub(super) fn to_oci(names: &[String]) -> Capabilities {
    names.iter().filter_map(|n| capability(n)).collect()
}

/// The kernel's bit mask of a set of canonical names, as `/proc/<pid>/status` prints it (`CapEff`).
pub fn capability_mask<S: AsRef<str>>(names: &[S]) -> u64 {
    names
        .iter()
        .filter_map(|n| number(n.as_ref()))
        .fold(0, |mask, bit| mask | (1u64 << bit))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::ErrorKind;

    const FULL_HOST: HostCaps = HostCaps {
        last_cap: Some(40),
        bounding: None,
    };

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn set(adds: &[&str], drops: &[&str]) -> Result<Vec<String>> {
        let n = |names: &[&str]| -> Vec<String> {
            names
                .iter()
                .map(|c| normalize_capability("test", c).unwrap())
                .collect()
        };
        effective_set(&n(adds), &n(drops), false, &FULL_HOST)
    }

    #[test]
    fn the_table_is_the_kernels_numbering() {
        for (i, (bit, name, cap)) in CAPABILITIES.iter().enumerate() {
            assert_eq!(usize::from(*bit), i, "{name}");
            // oci_spec serialises the enum under the kernel's name.
            assert_eq!(serde_json::to_value(cap).unwrap(), *name);
        }
    }

    #[test]
    fn names_are_normalised_as_docker_does() {
        for (input, want) in [
            ("NET_ADMIN", "CAP_NET_ADMIN"),
            ("net_admin", "CAP_NET_ADMIN"),
            ("CAP_NET_ADMIN", "CAP_NET_ADMIN"),
            ("cap_sys_ptrace", "CAP_SYS_PTRACE"),
            ("all", "ALL"),
            ("ALL", "ALL"),
            ("bpf", "CAP_BPF"),
        ] {
            assert_eq!(normalize_capability("cap_add", input).unwrap(), want);
        }
        for bad in [
            "",
            "CAP_",
            "NET-ADMIN",
            "CAP_ALL",
            "SYS_EVERYTHING",
            "CAP_CAP_KILL",
        ] {
            let err = normalize_capability("cap_add", bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert!(
                err.to_string().starts_with("cap_add: unknown capability"),
                "{err}"
            );
        }
    }

    #[test]
    fn docker_default_mask() {
        assert_eq!(capability_mask(&DEFAULT_CAPABILITIES), 0xa80425fb);
        assert_eq!(set(&[], &[]).unwrap(), strings(&DEFAULT_CAPABILITIES));
    }

    #[test]
    fn add_and_drop_follow_dockers_rules() {
        assert_eq!(
            capability_mask(&set(&["NET_ADMIN"], &[]).unwrap()),
            0xa80435fb
        );
        assert_eq!(capability_mask(&set(&[], &["ALL"]).unwrap()), 0);
        // Drop ALL then add: exactly the adds.
        assert_eq!(
            set(&["NET_BIND_SERVICE", "chown"], &["ALL"]).unwrap(),
            strings(&["CAP_NET_BIND_SERVICE", "CAP_CHOWN"])
        );
        // Add ALL minus drops.
        let all_but_admin = set(&["ALL"], &["SYS_ADMIN"]).unwrap();
        assert_eq!(all_but_admin.len(), 40);
        assert!(!all_but_admin.contains(&"CAP_SYS_ADMIN".to_string()));
        // Defaults minus a drop, plus an add already there: no duplicate.
        let s = set(&["CHOWN"], &["NET_RAW"]).unwrap();
        assert_eq!(capability_mask(&s), 0xa80405fb);
        assert_eq!(s.len(), 13);
    }

    #[test]
    fn privileged_is_everything_the_host_offers() {
        let all = effective_set(&[], &[], true, &FULL_HOST).unwrap();
        assert_eq!(capability_mask(&all), (1u64 << 41) - 1);
        let old_kernel = HostCaps {
            last_cap: Some(37),
            bounding: None,
        };
        let all = effective_set(&[], &[], true, &old_kernel).unwrap();
        assert_eq!(capability_mask(&all), (1u64 << 38) - 1);
        let err = effective_set(&strings(&["CAP_BPF"]), &[], false, &old_kernel).unwrap_err();
        assert!(
            err.to_string().contains("CAP_BPF is not supported"),
            "{err}"
        );
        let restricted = HostCaps {
            last_cap: Some(40),
            bounding: Some(0xa80425fb),
        };
        let all = effective_set(&strings(&["ALL"]), &[], false, &restricted).unwrap();
        assert_eq!(capability_mask(&all), 0xa80425fb);
    }
}
