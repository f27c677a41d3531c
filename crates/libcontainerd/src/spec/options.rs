//! The builder's options beyond the command: resource limits and docker's security options
//! (seccomp, capabilities, privileged, devices, ulimits, sysctls, init). Each only records the
//! choice; `build` checks and applies it.

use std::path::PathBuf;

use super::devices::DeviceMapping;
use super::{Seccomp, SpecBuilder};

impl SpecBuilder {
    /// Hard memory limit in bytes (`docker run --memory`): at least 6 MiB; 0 is no limit.
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Memory plus swap in bytes (`--memory-swap`); -1 is unlimited swap, 0 the default. Needs a
    /// memory limit and is at least it. (Unlike docker, no limit means the runtime's default, not
    /// twice the memory limit.)
    pub fn memory_swap(mut self, bytes: i64) -> Self {
        self.memory_swap = Some(bytes);
        self
    }

    /// Memory soft limit in bytes (`--memory-reservation`): at least 6 MiB and at most the memory
    /// limit; 0 is none.
    pub fn memory_reservation(mut self, bytes: i64) -> Self {
        self.memory_reservation = Some(bytes);
        self
    }

    /// Disable the OOM killer for the container (`--oom-kill-disable`; cgroup v1 only).
    pub fn oom_kill_disable(mut self, yes: bool) -> Self {
        self.oom_kill_disable = Some(yes);
        self
    }

    /// CPU limit in CPUs (`docker run --cpus`): a CFS quota of `cpus * 100000` per 100000µs period.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Relative CPU weight (`--cpu-shares`; 2 to 262144, docker's default 1024; 0 is the default).
    pub fn cpu_shares(mut self, shares: u64) -> Self {
        self.cpu_shares = Some(shares);
        self
    }

    /// The CPUs the container may run on (`--cpuset-cpus`, e.g. `0-3` or `0,2`).
    pub fn cpuset_cpus(mut self, cpus: impl Into<String>) -> Self {
        self.cpuset_cpus = Some(cpus.into());
        self
    }

    /// Maximum number of processes/threads in the container (`docker run --pids-limit`); 0 or -1
    /// (any value up to 0) is unlimited, as in docker.
    pub fn pids_limit(mut self, n: i64) -> Self {
        self.pids_limit = Some(n);
        self
    }

    /// The seccomp filter (default: docker's default profile; see [`Seccomp`]).
    pub fn seccomp(mut self, seccomp: Seccomp) -> Self {
        self.seccomp = seccomp;
        self
    }

    /// Set `no_new_privs` (`--security-opt no-new-privileges`): setuid binaries and file
    /// capabilities give nothing. Default: off, as in docker.
    pub fn no_new_privileges(mut self, yes: bool) -> Self {
        self.no_new_privileges = yes;
        self
    }

    /// Add a capability (`--cap-add`): `NET_ADMIN`, `CAP_NET_ADMIN`, any case, or `ALL`. Docker's
    /// rules: `cap_add("ALL")` is every capability but the dropped ones; the default seccomp
    /// profile opens the syscalls of the capabilities the container ends up with.
    pub fn cap_add(mut self, name: impl Into<String>) -> Self {
        self.cap_add.push(name.into());
        self
    }

    /// Drop a capability (`--cap-drop`), or `ALL`: then exactly the added ones remain.
    pub fn cap_drop(mut self, name: impl Into<String>) -> Self {
        self.cap_drop.push(name.into());
        self
    }

    /// A privileged container (`--privileged`), as docker makes it: every capability, no seccomp
    /// filter (unless a profile of its own is given), every host device (the nodes under `/dev`,
    /// and a device cgroup that allows all), writable `/sys` and cgroup mounts, no masked or
    /// read-only paths. Dropping capabilities from it is refused (docker silently ignores the drop).
    pub fn privileged(mut self, yes: bool) -> Self {
        self.privileged = yes;
        self
    }

    /// Give the container the host device `host` at `container_path` (`--device`), with device
    /// cgroup permissions `perms` (some of `r`, `w`, `m`). The host node is read when the spec is
    /// built (type, major, minor, mode, owner); a directory gives every device under it.
    pub fn device(
        mut self,
        host: impl Into<PathBuf>,
        container_path: impl Into<PathBuf>,
        perms: impl Into<String>,
    ) -> Self {
        self.devices.push(DeviceMapping {
            host: host.into(),
            container: container_path.into(),
            perms: perms.into(),
        });
        self
    }

    /// A resource limit (`--ulimit name=soft:hard`) by docker's names: `nofile`, `nproc`, `core`,
    /// `memlock`, `stack`, `cpu`, ...; -1 is unlimited. A later one of the same name replaces an
    /// earlier one; `nofile` replaces the default 1024:1024.
    pub fn ulimit(mut self, name: impl Into<String>, soft: i64, hard: i64) -> Self {
        self.ulimits.push((name.into(), soft, hard));
        self
    }

    /// A namespaced kernel parameter (`--sysctl`): `net.*`, `fs.mqueue.*`, or the IPC ones
    /// (`kernel.shm*`, `kernel.msg*`, `kernel.sem`); others would change the host and are refused.
    pub fn sysctl(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.sysctls.push((key.into(), value.into()));
        self
    }

    /// The process's OOM score adjustment (`--oom-score-adj`, -1000 to 1000).
    pub fn oom_score_adj(mut self, adj: i32) -> Self {
        self.oom_score_adj = Some(adj);
        self
    }

    /// The size of `/dev/shm` in bytes (`--shm-size`; default 64 MiB).
    pub fn shm_size(mut self, bytes: i64) -> Self {
        self.shm_size = Some(bytes);
        self
    }

    /// Run an init as PID 1 (`docker run --init`): the host binary at `path` (statically linked,
    /// e.g. Debian's `/usr/bin/tini-static`) is bind-mounted read-only at
    /// [`INIT_PATH`](crate::spec::INIT_PATH) and the
    /// command becomes `/sbin/docker-init -- <args>`, so zombies are reaped and signals forwarded.
    pub fn init(mut self, path: impl Into<PathBuf>) -> Self {
        self.init = Some(path.into());
        self
    }
}
