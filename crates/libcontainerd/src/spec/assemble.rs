//! The parts of the spec `build` assembles: the process, the `linux` section, mount options.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Linux, LinuxCapabilities, LinuxNamespace, LinuxNamespaceType, LinuxResources,
    Mount, Process, User,
};

use super::caps;
use super::defaults::{masked_paths, strings, READONLY_PATHS};

/// Replace mount option `old` of the mount at `destination` with `new`.
pub(super) fn set_option(mounts: &mut [Mount], destination: &str, old: &str, new: &str) {
    for mount in mounts
        .iter_mut()
        .filter(|m| m.destination() == Path::new(destination))
    {
        let options: Vec<String> = mount
            .options()
            .iter()
            .flatten()
            .map(|o| if o == old { new.to_string() } else { o.clone() })
            .collect();
        mount.set_options(Some(options));
    }
}

/// Remove mount option `option` from the mount at `destination`.
pub(super) fn remove_option(mounts: &mut [Mount], destination: &str, option: &str) {
    for mount in mounts
        .iter_mut()
        .filter(|m| m.destination() == Path::new(destination))
    {
        let options: Vec<String> = mount
            .options()
            .iter()
            .flatten()
            .filter(|o| *o != option)
            .cloned()
            .collect();
        mount.set_options(Some(options));
    }
}

pub(super) fn build_process(
    terminal: bool,
    user: User,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    caps: &[String],
) -> Process {
    let caps: Capabilities = caps::to_oci(caps);
    let mut capabilities = LinuxCapabilities::default();
    // LinuxCapabilities::default() fills inheritable and ambient too; leaving them unset is what
    // keeps a non-root process from carrying capabilities across execve.
    capabilities
        .set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps))
        .set_inheritable(None)
        .set_ambient(None);

    let mut process = Process::default();
    process
        .set_terminal(Some(terminal))
        .set_console_size(None)
        .set_user(user)
        .set_args(Some(args))
        .set_command_line(None)
        .set_env(Some(env))
        .set_cwd(PathBuf::from(cwd))
        .set_capabilities(Some(capabilities))
        .set_rlimits(None)
        .set_no_new_privileges(None)
        .set_apparmor_profile(None)
        .set_oom_score_adj(None)
        .set_selinux_label(None)
        .set_io_priority(None)
        .set_scheduler(None)
        .set_exec_cpu_affinity(None);
    process
}

pub(super) fn build_linux(resources: LinuxResources) -> Linux {
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        // A new, empty network namespace (only loopback), like `ctr run` without --net-host.
        LinuxNamespaceType::Network,
    ]
    .into_iter()
    .map(|typ| {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ).set_path(None);
        ns
    })
    .collect();

    let mut linux = Linux::default();
    linux
        .set_net_devices(None)
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_sysctl(None)
        .set_resources(Some(resources))
        // Set per container by `for_container`.
        .set_cgroups_path(None)
        .set_namespaces(Some(namespaces))
        .set_devices(None)
        .set_seccomp(None)
        .set_rootfs_propagation(None)
        .set_masked_paths(Some(masked_paths()))
        .set_readonly_paths(Some(strings(READONLY_PATHS)))
        .set_mount_label(None)
        .set_intel_rdt(None)
        .set_memory_policy(None)
        .set_personality(None)
        .set_time_offsets(None);
    linux
}
