//! The defaults runc, containerd and docker put in every Linux spec: the masked and read-only
//! paths, the mounts and the device cgroup rules. (Docker's capability set is in `caps`, its
//! seccomp profile in `seccomp`.)

use std::path::PathBuf;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, Mount};

/// Paths runc hides from the container (bind-mounts /dev/null or an empty tmpfs over them) because
/// they leak host information or allow host-wide side effects. `/sys/devices/virtual/powercap` is
/// masked by Docker and containerd too (CVE-2020-8694, energy readings as a side channel).
pub(super) const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
    // Interrupt counts per CPU leak host activity (docker, GHSA-6fw5-f8r9-fgfm).
    "/proc/interrupts",
];

/// [`MASKED_PATHS`] and, as docker does, each CPU's `thermal_throttle` directory the host has
/// (its counters are a side channel too, GHSA-6fw5-f8r9-fgfm).
pub(super) fn masked_paths() -> Vec<String> {
    let mut paths = strings(MASKED_PATHS);
    let mut throttles: Vec<(u32, String)> = std::fs::read_dir("/sys/devices/system/cpu")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let n: u32 = name.to_str()?.strip_prefix("cpu")?.parse().ok()?;
            let path = entry.path().join("thermal_throttle");
            path.exists().then(|| (n, path.display().to_string()))
        })
        .collect();
    throttles.sort();
    paths.extend(throttles.into_iter().map(|(_, path)| path));
    paths
}

/// Paths that stay visible but read-only: writing to them would change the host kernel.
pub(super) const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(super) fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination))
        .set_typ(Some(typ.to_string()))
        .set_source(Some(PathBuf::from(source)))
        .set_options(Some(strings(options)))
        .set_uid_mappings(None)
        .set_gid_mappings(None);
    m
}

/// A read-only-or-not bind mount of the host path `source` at `destination`.
pub(super) fn bind_mount(destination: &str, source: &std::path::Path, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination))
        .set_typ(Some("bind".to_string()))
        .set_source(Some(source.to_path_buf()))
        .set_options(Some(strings(options)))
        .set_uid_mappings(None)
        .set_gid_mappings(None);
    m
}

/// runc's default mounts, with Docker's and containerd's hardening of `/proc`.
pub(super) fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// Deny every device, then allow the character devices every container needs, as containerd's
/// `WithDefaultUnixDevices` does (minus tun/tap, which Docker does not grant by default). Order
/// matters: the device cgroup applies rules in sequence, so deny-all must come first.
pub(super) fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let mut deny_all = LinuxDeviceCgroup::default();
    // No type and no major/minor means "all devices", as runc's `{"allow": false, "access": "rwm"}`.
    deny_all
        .set_allow(false)
        .set_typ(None)
        .set_major(None)
        .set_minor(None)
        .set_access(Some("rwm".to_string()));

    let allow_char = |major: i64, minor: Option<i64>| {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true)
            .set_typ(Some(LinuxDeviceType::C))
            .set_major(Some(major))
            .set_minor(minor)
            .set_access(Some("rwm".to_string()));
        rule
    };

    vec![
        deny_all,
        allow_char(1, Some(3)), // /dev/null
        allow_char(1, Some(8)), // /dev/random
        allow_char(1, Some(7)), // /dev/full
        allow_char(5, Some(0)), // /dev/tty
        allow_char(1, Some(5)), // /dev/zero
        allow_char(1, Some(9)), // /dev/urandom
        allow_char(5, Some(1)), // /dev/console
        allow_char(136, None),  // /dev/pts/*
        allow_char(5, Some(2)), // /dev/ptmx
    ]
}
