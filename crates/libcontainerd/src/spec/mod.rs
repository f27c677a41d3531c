//! The OCI runtime spec a container runs with.
//!
//! [`SpecBuilder`] produces the default Linux spec that `runc spec` and containerd's
//! `populateDefaultUnixSpec` + `WithDefaultUnixDevices` produce, with Docker's secure defaults
//! (its capability set and its default seccomp profile), plus the knobs of a docker-style `run`:
//! command, env, user and groups, capabilities, seccomp, privileged, devices, ulimits, sysctls,
//! resource limits, an init process, bind and tmpfs mounts (and parsers of docker's `-v`, `--mount`
//! and `--tmpfs` syntax, for an engine that takes docker's flags).
//!
//! Every field is set explicitly: `oci_spec`'s `Default` impls are a demo config (hostname "youki",
//! every capability set filled, a readonly `rootfs` relative path, a cgroup namespace) and must not
//! leak into what containerd receives.
//!
//! Every option is checked by [`SpecBuilder::build`], before anything is created: a bad one is an
//! [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) whose one-line message names it.

mod assemble;
mod caps;
mod defaults;
mod devices;
mod mount_syntax;
mod mounts;
mod options;
mod parse;
mod seccomp;
mod user;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxCpu, LinuxDevice, LinuxMemory, LinuxPids, LinuxResources, PosixRlimit, Root, Spec, User,
};

pub use caps::{capability_mask, normalize_capability};
use defaults::{default_device_rules, default_mounts};
use devices::DeviceMapping;
pub use mount_syntax::{
    check_mount_points, check_volume_name, is_volume_name, parse_mount, parse_tmpfs, parse_volume,
    MountRequest, MountType,
};
pub use mounts::{clean_mount_point, BindOptions, Propagation};
pub use parse::{parse_bytes, parse_device, parse_ulimit, parse_user};
pub use seccomp::Seccomp;
pub use user::{read_in_root, resolve_groups, resolve_in_root, resolve_user, ExecUser};
pub use validate::INIT_PATH;
pub(crate) use validate::{apply_env, MIN_MEMORY};
use validate::{
    cpu_quota, default_hostname, merge_env, validate_args, validate_cpu_shares, validate_cpuset,
    validate_cwd, validate_hostname, validate_init, validate_memory_set, validate_oom_score_adj,
    validate_rootfs, validate_sysctl, CPU_PERIOD,
};

use crate::error::{Error, Result};
use crate::id::Id;
use assemble::{build_linux, build_process, remove_option, set_option};

/// Docker's default PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `type_url` containerd's `typeurl` registers the OCI runtime spec under.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Where the runtime mounts a snapshot root, relative to the bundle (containerd's convention).
pub const SNAPSHOT_ROOTFS: &str = "rootfs";

/// Docker's default capability set, by name (`CAP_CHOWN`, ...), in docker's order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = caps::DEFAULT_CAPABILITIES;

/// The default seccomp profile's data (this library's own JSON form of docker's default profile).
pub const DEFAULT_SECCOMP_DATA: &str = seccomp::DEFAULT_PROFILE_DATA;

/// The runtime-spec version runc and containerd write into default specs.
const OCI_VERSION: &str = "1.0.2-dev";

/// Docker's default `/dev/shm` size, as containerd writes it.
const DEFAULT_SHM_SIZE: &str = "size=65536k";

/// Builds the OCI runtime spec for one container. Setters never fail; [`SpecBuilder::build`] validates.
#[derive(Debug, Clone)]
pub struct SpecBuilder {
    rootfs: PathBuf,
    /// The root is a snapshot the runtime mounts at `rootfs` in the bundle (a relative path).
    on_snapshot: bool,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    uid: u32,
    gid: u32,
    /// A user spec resolved against the passwd and group files of a root filesystem.
    user_lookup: Option<(String, PathBuf)>,
    /// The supplementary groups of a user given by [`resolved_user`](Self::resolved_user).
    resolved_groups: Option<Vec<u32>>,
    group_add: Vec<String>,
    hostname: Option<String>,
    readonly_rootfs: bool,
    terminal: bool,
    memory_limit: Option<i64>,
    memory_swap: Option<i64>,
    memory_reservation: Option<i64>,
    oom_kill_disable: Option<bool>,
    cpus: Option<f64>,
    cpu_shares: Option<u64>,
    cpuset_cpus: Option<String>,
    pids_limit: Option<i64>,
    seccomp: Seccomp,
    no_new_privileges: bool,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    privileged: bool,
    devices: Vec<DeviceMapping>,
    ulimits: Vec<(String, i64, i64)>,
    sysctls: Vec<(String, String)>,
    oom_score_adj: Option<i32>,
    shm_size: Option<i64>,
    init: Option<PathBuf>,
    extra_mounts: Vec<mounts::ExtraMount>,
}

impl SpecBuilder {
    /// Defaults for a container with its root at `rootfs` (an absolute path on the host): `sh` as
    /// root in `/`, no terminal, no resource limits, docker's default capabilities and seccomp
    /// profile. The spec names no container: the cgroups path and the default hostname come from
    /// the id when [`Client::new_container`] creates one (see [`for_container`]), so one spec can
    /// serve many containers.
    ///
    /// [`Client::new_container`]: crate::Client::new_container
    pub fn new(rootfs: impl Into<PathBuf>) -> Self {
        SpecBuilder {
            rootfs: rootfs.into(),
            on_snapshot: false,
            args: vec!["sh".to_string()],
            env: Vec::new(),
            cwd: "/".to_string(),
            uid: 0,
            gid: 0,
            user_lookup: None,
            resolved_groups: None,
            group_add: Vec::new(),
            hostname: None,
            readonly_rootfs: false,
            terminal: false,
            memory_limit: None,
            memory_swap: None,
            memory_reservation: None,
            oom_kill_disable: None,
            cpus: None,
            cpu_shares: None,
            cpuset_cpus: None,
            pids_limit: None,
            seccomp: Seccomp::Default,
            no_new_privileges: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            privileged: false,
            devices: Vec::new(),
            ulimits: Vec::new(),
            sysctls: Vec::new(),
            oom_score_adj: None,
            shm_size: None,
            init: None,
            extra_mounts: Vec::new(),
        }
    }

    /// Defaults for a container whose root is a snapshot
    /// ([`Client::new_container_on_snapshot`](crate::Client::new_container_on_snapshot)): the root
    /// path is `rootfs`, relative to the bundle, where the runtime mounts the snapshot.
    pub fn on_snapshot() -> Self {
        SpecBuilder {
            on_snapshot: true,
            ..SpecBuilder::new(SNAPSHOT_ROOTFS)
        }
    }

    /// The command and its arguments (default `["sh"]`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Add one `KEY=VALUE` variable. A later `KEY` replaces an earlier one in place, including the
    /// default `PATH` (and `TERM` with a terminal).
    pub fn env(mut self, key_value: impl Into<String>) -> Self {
        self.env.push(key_value.into());
        self
    }

    /// The working directory inside the container (default `/`); must be absolute.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = dir.into();
        self
    }

    /// The numeric user and group the process runs as (default `0:0`), taken as they are: no
    /// supplementary groups. Replaces an earlier [`user_from_rootfs`](Self::user_from_rootfs).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self.user_lookup = None;
        self.resolved_groups = None;
        self
    }

    /// Run as a user resolved elsewhere (against an image's own files, say, with
    /// [`resolve_user`]): `uid:gid`, with docker's groups: the primary gid first, then
    /// `groups` (the user's supplementary groups), then [`group_add`](Self::group_add)'s.
    pub fn resolved_user(mut self, uid: u32, gid: u32, groups: Vec<u32>) -> Self {
        self.uid = uid;
        self.gid = gid;
        self.user_lookup = None;
        self.resolved_groups = Some(groups);
        self
    }

    /// Run as `spec` (`docker run --user`: `name`, `uid`, `name:group`, `uid:gid`, `name:gid`,
    /// `uid:group`; empty is root) resolved against the `/etc/passwd` and `/etc/group` of the root
    /// filesystem at `rootfs` (a host directory; symlinks in it are resolved inside it), as docker
    /// does with runc's rules (see [`resolve_user`]): a user's primary group comes from passwd
    /// (`-u 65534` in busybox is `65534:65534`) and its supplementary groups from group. As docker,
    /// the process's groups are the primary gid, those, and [`group_add`](Self::group_add)'s.
    /// Resolved by [`build`](Self::build); an unknown name is an error there.
    pub fn user_from_rootfs(mut self, spec: impl Into<String>, rootfs: impl Into<PathBuf>) -> Self {
        self.user_lookup = Some((spec.into(), rootfs.into()));
        self.resolved_groups = None;
        self
    }

    /// An additional group (`docker run --group-add`): a gid (`.group_add(1234)`), or a group
    /// name looked up in the root filesystem's `/etc/group` (the one given to
    /// [`user_from_rootfs`](Self::user_from_rootfs), else this builder's rootfs directory).
    pub fn group_add(mut self, group: impl ToString) -> Self {
        self.group_add.push(group.to_string());
        self
    }

    /// The hostname inside the container (default: the container id, cut to 63 characters, set by
    /// [`for_container`]).
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = Some(name.into());
        self
    }

    /// Mount the root filesystem read-only (default: read-write).
    pub fn readonly_rootfs(mut self, yes: bool) -> Self {
        self.readonly_rootfs = yes;
        self
    }

    /// Bind-mount the host path `source` (absolute, existing: `build` creates nothing) at
    /// `destination`, as docker does: `rbind`, `ro` when read-only, the propagation (default
    /// `rprivate`); `shared`/`slave` need a source on a shared (or slave) mount and set the root's
    /// propagation. A mount at a default's mount point (`/dev/shm`) replaces it.
    pub fn bind_mount(
        mut self,
        source: impl Into<PathBuf>,
        destination: impl Into<String>,
        options: BindOptions,
    ) -> Self {
        self.extra_mounts.push(mounts::ExtraMount::Bind {
            source: source.into(),
            destination: destination.into(),
            options,
        });
        self
    }

    /// Mount a tmpfs at `destination` with docker's `noexec,nosuid,nodev` and `options`
    /// (`size=64m`, `mode=1777`; a later `exec` undoes `noexec`).
    pub fn tmpfs<I, S>(mut self, destination: impl Into<String>, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_mounts.push(mounts::ExtraMount::Tmpfs {
            destination: destination.into(),
            options: options.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Give the process a terminal; also adds `TERM=xterm` unless `TERM` is set (default: no).
    pub fn terminal(mut self, yes: bool) -> Self {
        self.terminal = yes;
        self
    }

    /// Validate the options and produce the spec. Every error is [`ErrorKind::InvalidArgument`]
    /// and names the offending option. Reads the host where options need it (devices, the init
    /// binary, a profile file, the rootfs's user files, this host's capabilities and kernel), and
    /// writes nothing.
    ///
    /// [`ErrorKind::InvalidArgument`]: crate::error::ErrorKind::InvalidArgument
    pub fn build(self) -> Result<Spec> {
        let rootfs = if self.on_snapshot {
            PathBuf::from(SNAPSHOT_ROOTFS)
        } else {
            validate_rootfs(&self.rootfs)?
        };
        validate_args(&self.args)?;
        validate_cwd(&self.cwd)?;
        if let Some(name) = &self.hostname {
            validate_hostname(name)?;
        }
        let env = merge_env(self.terminal, &self.env)?;

        // Capabilities, then the seccomp filter that follows them.
        let normalize = |option: &str, names: &[String]| -> Result<Vec<String>> {
            names
                .iter()
                .map(|n| normalize_capability(option, n))
                .collect()
        };
        let adds = normalize("cap_add", &self.cap_add)?;
        let drops = normalize("cap_drop", &self.cap_drop)?;
        if self.privileged && !drops.is_empty() {
            return Err(Error::invalid(format!(
                "privileged: cap_drop {} contradicts it: a privileged container has every capability (docker silently ignores the drop); drop privileged, or use cap_drop without it",
                drops.join(",")
            )));
        }
        let caps = caps::effective_set(&adds, &drops, self.privileged, &caps::HostCaps::read())?;
        let seccomp = seccomp::resolve(
            &self.seccomp,
            self.privileged,
            &caps,
            &seccomp::Host::current(),
        )?;

        let resources = self.resources()?;
        let (devices, device_rules) = self.devices()?;
        let mut resources = resources;
        resources.set_devices(Some(device_rules));

        let rlimits = self.rlimits()?;
        let mut sysctls = HashMap::new();
        for (key, value) in &self.sysctls {
            validate_sysctl(key, value)?;
            sysctls.insert(key.clone(), value.clone());
        }
        if let Some(adj) = self.oom_score_adj {
            validate_oom_score_adj(adj)?;
        }
        let user = self.process_user()?;

        let mut args = self.args.clone();
        let mut mounts = default_mounts();
        if let Some(init) = &self.init {
            validate_init(init)?;
            args = [INIT_PATH.to_string(), "--".to_string()]
                .into_iter()
                .chain(args)
                .collect();
            mounts.push(defaults::bind_mount(INIT_PATH, init, &["bind", "ro"]));
        }
        if let Some(bytes) = self.shm_size {
            if bytes <= 0 {
                return Err(Error::invalid(format!(
                    "shm_size must be positive, got {bytes}"
                )));
            }
            set_option(
                &mut mounts,
                "/dev/shm",
                DEFAULT_SHM_SIZE,
                &format!("size={bytes}"),
            );
        }
        let root_propagation = mounts::apply(&mut mounts, &self.extra_mounts)?;
        if self.privileged {
            // Docker: a writable /sys, and cgroups writable unless asked otherwise.
            remove_option(&mut mounts, "/sys", "ro");
            remove_option(&mut mounts, "/sys/fs/cgroup", "ro");
        }

        let mut root = Root::default();
        root.set_path(rootfs)
            // containerd omits `readonly` when false; Root::default() would say true.
            .set_readonly(self.readonly_rootfs.then_some(true));

        let mut process = build_process(self.terminal, user, args, env, self.cwd.clone(), &caps);
        process
            .set_rlimits(Some(rlimits))
            .set_oom_score_adj(self.oom_score_adj)
            // Docker writes noNewPrivileges only when set.
            .set_no_new_privileges(self.no_new_privileges.then_some(true));

        let mut linux = build_linux(resources);
        linux
            .set_seccomp(seccomp)
            .set_devices((!devices.is_empty()).then_some(devices))
            .set_sysctl((!sysctls.is_empty()).then_some(sysctls))
            .set_rootfs_propagation(root_propagation);
        if self.privileged {
            linux.set_masked_paths(None).set_readonly_paths(None);
        }

        let mut spec = Spec::default();
        spec.set_version(OCI_VERSION.to_string())
            .set_root(Some(root))
            .set_mounts(Some(mounts))
            .set_process(Some(process))
            .set_hostname(self.hostname)
            .set_domainname(None)
            .set_hooks(None)
            .set_annotations(None)
            .set_linux(Some(linux))
            .set_solaris(None)
            .set_windows(None)
            .set_vm(None)
            .set_zos(None);
        Ok(spec)
    }

    /// Memory, CPU and pids limits, checked as docker checks them.
    fn resources(&self) -> Result<LinuxResources> {
        let mut resources = LinuxResources::default();
        validate_memory_set(self.memory_limit, self.memory_swap, self.memory_reservation)?;
        let positive = |v: Option<i64>| v.filter(|&b| b != 0);
        let swap = self.memory_swap.filter(|&s| s != 0);
        if positive(self.memory_limit).is_some()
            || swap.is_some()
            || positive(self.memory_reservation).is_some()
            || self.oom_kill_disable.is_some()
        {
            let mut memory = LinuxMemory::default();
            memory
                .set_limit(positive(self.memory_limit))
                .set_swap(swap)
                .set_reservation(positive(self.memory_reservation))
                .set_disable_oom_killer(self.oom_kill_disable);
            resources.set_memory(Some(memory));
        }
        let mut cpu = LinuxCpu::default();
        let mut cpu_set = false;
        if let Some(cpus) = self.cpus {
            let quota = cpu_quota(cpus)?;
            cpu.set_quota(Some(quota)).set_period(Some(CPU_PERIOD));
            cpu_set = true;
        }
        if let Some(shares) = self.cpu_shares.filter(|&s| s != 0) {
            validate_cpu_shares(shares)?;
            cpu.set_shares(Some(shares));
            cpu_set = true;
        }
        if let Some(list) = &self.cpuset_cpus {
            let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok();
            validate_cpuset(list, online.as_deref())?;
            cpu.set_cpus(Some(list.trim().to_string()));
            cpu_set = true;
        }
        if cpu_set {
            resources.set_cpu(Some(cpu));
        }
        if let Some(n) = self.pids_limit {
            let mut pids = LinuxPids::default();
            // Docker: 0 and negative values mean unlimited, which runc spells -1.
            pids.set_limit(if n <= 0 { -1 } else { n });
            resources.set_pids(Some(pids));
        }
        Ok(resources)
    }

    /// The device nodes to create and the device cgroup rules, in order: deny all, the defaults,
    /// the mappings' (or, privileged, every host device and allow-all).
    fn devices(&self) -> Result<(Vec<LinuxDevice>, Vec<oci_spec::runtime::LinuxDeviceCgroup>)> {
        let mut devices = Vec::new();
        let mut rules = default_device_rules();
        if self.privileged {
            devices = devices::host_devices(Path::new("/dev"))?;
            rules = vec![devices::allow_all()];
        }
        for mapping in &self.devices {
            devices::validate_perms("device", &mapping.perms)?;
            for (what, path) in [("host", &mapping.host), ("container", &mapping.container)] {
                if !path.is_absolute() || path.to_str().is_none() {
                    return Err(Error::invalid(format!(
                        "device {}: the {what} path {} must be an absolute utf-8 path",
                        mapping.host.display(),
                        path.display()
                    )));
                }
            }
            // Docker: in a privileged container a device at its own path is already there.
            if self.privileged && mapping.host == mapping.container {
                continue;
            }
            let (mapped, mapped_rules) = devices::from_mapping(mapping)?;
            devices.extend(mapped);
            if !self.privileged {
                rules.extend(mapped_rules);
            }
        }
        Ok((devices, rules))
    }

    /// The default `nofile` 1024:1024, with the ulimits applied by name (a later one wins).
    fn rlimits(&self) -> Result<Vec<PosixRlimit>> {
        let mut rlimits = vec![validate::ulimit("nofile", 1024, 1024)?];
        for (name, soft, hard) in &self.ulimits {
            let rlimit = validate::ulimit(name, *soft, *hard)?;
            match rlimits.iter_mut().find(|r| r.typ() == rlimit.typ()) {
                Some(existing) => *existing = rlimit,
                None => rlimits.push(rlimit),
            }
        }
        Ok(rlimits)
    }

    /// The process's user: numeric, or looked up in a rootfs, with the added groups.
    fn process_user(&self) -> Result<User> {
        let (uid, gid, mut additional) = match &self.user_lookup {
            Some((spec, root)) => {
                let (passwd, group) = user::user_files(root).map_err(|e| e.context("user"))?;
                let found = resolve_user(passwd.as_deref(), group.as_deref(), spec)
                    .map_err(|e| e.context("user"))?;
                // Docker: the primary gid first, then the supplementary groups.
                let mut groups = vec![found.gid];
                groups.extend(found.additional_gids.iter().filter(|g| **g != found.gid));
                (found.uid, found.gid, groups)
            }
            None => match &self.resolved_groups {
                Some(found) => {
                    let mut groups = vec![self.gid];
                    groups.extend(found.iter().filter(|g| **g != self.gid));
                    (self.uid, self.gid, groups)
                }
                None => (self.uid, self.gid, Vec::new()),
            },
        };
        if !self.group_add.is_empty() {
            let names_need_files = self
                .group_add
                .iter()
                .any(|g| !g.bytes().all(|b| b.is_ascii_digit()));
            let root = match &self.user_lookup {
                Some((_, root)) => Some(root.clone()),
                None if !self.on_snapshot => Some(self.rootfs.clone()),
                None => None,
            };
            let group = match root {
                Some(root) if names_need_files => {
                    user::read_in_root(&root, "/etc/group").map_err(|e| e.context("group_add"))?
                }
                _ => None,
            };
            if additional.is_empty() {
                additional.push(gid);
            }
            for added in resolve_groups(group.as_deref(), &self.group_add)? {
                if !additional.contains(&added) {
                    additional.push(added);
                }
            }
        }
        let mut user = User::default();
        user.set_uid(uid)
            .set_gid(gid)
            .set_umask(None)
            .set_additional_gids((!additional.is_empty()).then_some(additional))
            .set_username(None);
        Ok(user)
    }
}

/// `spec` as container `id` in `namespace` runs it: what [`Client::new_container`] stores.
///
/// Fills in what only the container's identity decides: the cgroups path `/<namespace>/<id>` and,
/// unless the spec names one, the hostname (the id, cut to 63 characters). A spec may carry a
/// cgroups path of its own (a parent of the caller's choosing), but it must end in the container
/// id: one spec reused for two containers would otherwise put both in one cgroup.
///
/// [`Client::new_container`]: crate::Client::new_container
pub fn for_container(spec: &Spec, namespace: &Id, id: &Id) -> Result<Spec> {
    let mut spec = spec.clone();
    if spec.hostname().is_none() {
        spec.set_hostname(Some(default_hostname(id.as_str())));
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    match linux.cgroups_path() {
        None => {
            // containerd's identifier rule makes each a single normal path component.
            linux.set_cgroups_path(Some(PathBuf::from(format!("/{namespace}/{id}"))));
        }
        Some(path) if path.file_name() == Some(std::ffi::OsStr::new(id.as_str())) => {}
        Some(path) => {
            return Err(Error::invalid(format!(
                "the spec's cgroups path {} is not container {id}'s: leave it unset (it becomes /{namespace}/{id}) or end it in the container id",
                path.display()
            )))
        }
    }
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// Serialise `spec` to the JSON containerd stores, wrapped in an `Any` of type [`SPEC_TYPE_URL`].
pub(crate) fn to_any(spec: &Spec) -> Result<prost_types::Any> {
    let value = serde_json::to_vec(spec)
        .map_err(|e| Error::internal(format!("encode runtime spec as json: {e}")).with_source(e))?;
    Ok(prost_types::Any {
        type_url: SPEC_TYPE_URL.to_string(),
        value,
    })
}

/// Decode a spec stored in containerd (the `spec` field of a container record).
pub(crate) fn from_any(any: &prost_types::Any) -> Result<Spec> {
    if any.type_url != SPEC_TYPE_URL {
        return Err(Error::invalid(format!(
            "decode runtime spec: unexpected type url {:?}, want {SPEC_TYPE_URL:?}",
            any.type_url
        )));
    }
    serde_json::from_slice(&any.value)
        .map_err(|e| Error::invalid(format!("decode runtime spec: {e}")).with_source(e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::defaults::strings;
    use super::validate::MIN_MEMORY;
    use super::*;
    use crate::error::ErrorKind;
    use oci_spec::runtime::{Capabilities, LinuxDeviceType, LinuxNamespaceType, PosixRlimitType};

    fn builder() -> SpecBuilder {
        SpecBuilder::new("/var/lib/x/rootfs")
    }

    /// The spec as containerd stores it for container c1 in namespace default.
    fn stored(builder: SpecBuilder) -> Spec {
        let (ns, id) = (Id::new("default").unwrap(), Id::new("c1").unwrap());
        for_container(&builder.build().unwrap(), &ns, &id).unwrap()
    }

    fn env_of(spec: &Spec) -> Vec<String> {
        spec.process().as_ref().unwrap().env().clone().unwrap()
    }

    fn assert_invalid(result: Result<Spec>, needle: &str) {
        let err = result.expect_err(needle);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains(needle), "{err:?} lacks {needle:?}");
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn defaults_match_containerds_unix_spec() {
        let spec = stored(builder());
        assert_eq!(spec.version(), "1.0.2-dev");
        assert_eq!(spec.hostname().as_deref(), Some("c1"));
        assert!(spec.annotations().is_none());

        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), &PathBuf::from("/var/lib/x/rootfs"));
        assert_eq!(root.readonly(), None);

        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(process.cwd(), &PathBuf::from("/"));
        assert_eq!(process.terminal(), Some(false));
        assert_eq!((process.user().uid(), process.user().gid()), (0, 0));
        // Docker's default: no_new_privs only when asked for (containerd's own default sets it).
        assert_eq!(process.no_new_privileges(), None);
        assert_eq!(env_of(&spec), vec![format!("PATH={DEFAULT_PATH}")]);
        let caps = process.capabilities().as_ref().unwrap();
        let want: Capabilities = caps::to_oci(&strings(&DEFAULT_CAPABILITIES));
        assert_eq!(want.len(), 14);
        assert_eq!(caps.bounding().as_ref(), Some(&want));
        assert_eq!(caps.effective().as_ref(), Some(&want));
        assert_eq!(caps.permitted().as_ref(), Some(&want));
        assert!(caps.inheritable().as_ref().is_none_or(|c| c.is_empty()));
        assert!(caps.ambient().as_ref().is_none_or(|c| c.is_empty()));
        let rlimits = process.rlimits().as_ref().unwrap();
        assert_eq!(rlimits.len(), 1);
        assert_eq!(rlimits[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((rlimits[0].hard(), rlimits[0].soft()), (1024, 1024));

        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(std::path::Path::new("/default/c1"))
        );
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| (n.typ(), n.path().clone()))
            .collect();
        assert_eq!(
            ns,
            vec![
                (LinuxNamespaceType::Pid, None),
                (LinuxNamespaceType::Ipc, None),
                (LinuxNamespaceType::Uts, None),
                (LinuxNamespaceType::Mount, None),
                (LinuxNamespaceType::Network, None),
            ]
        );
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert!(!devices[0].allow());
        assert_eq!(devices[0].typ(), None);
        assert_eq!((devices[0].major(), devices[0].minor()), (None, None));
        assert_eq!(devices[0].access().as_deref(), Some("rwm"));
        assert!(devices[1..].iter().all(|d| d.allow()));
        let null = devices
            .iter()
            .find(|d| d.major() == Some(1) && d.minor() == Some(3))
            .unwrap();
        assert_eq!(null.typ(), Some(LinuxDeviceType::C));
        assert!(devices
            .iter()
            .any(|d| d.major() == Some(136) && d.minor().is_none()));
        let masked = linux.masked_paths().as_ref().unwrap();
        assert!(masked.contains(&"/proc/kcore".to_string()));
        assert!(masked.contains(&"/sys/firmware".to_string()));
        assert!(masked.contains(&"/proc/interrupts".to_string()));
        let readonly = linux.readonly_paths().as_ref().unwrap();
        assert!(readonly.contains(&"/proc/sys".to_string()));
        assert!(readonly.contains(&"/proc/sysrq-trigger".to_string()));

        let mounts: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            mounts,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
    }

    /// Catches anything oci_spec's Default impls would add that containerd never sets.
    #[test]
    fn json_has_only_the_expected_fields() {
        let spec = stored(builder());
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            keys(&json),
            [
                "hostname",
                "linux",
                "mounts",
                "ociVersion",
                "process",
                "root"
            ]
        );
        assert_eq!(
            keys(&json["process"]),
            [
                "args",
                "capabilities",
                "cwd",
                "env",
                "rlimits",
                "terminal",
                "user"
            ]
        );
        assert_eq!(keys(&json["process"]["user"]), ["gid", "uid"]);
        assert_eq!(
            keys(&json["process"]["capabilities"]),
            ["bounding", "effective", "permitted"]
        );
        assert_eq!(keys(&json["root"]), ["path"]);
        assert_eq!(
            keys(&json["linux"]),
            [
                "cgroupsPath",
                "maskedPaths",
                "namespaces",
                "readonlyPaths",
                "resources",
                "seccomp"
            ]
        );
        assert_eq!(
            keys(&json["linux"]["seccomp"]),
            [
                "architectures",
                "defaultAction",
                "defaultErrnoRet",
                "syscalls"
            ]
        );
        assert_eq!(keys(&json["linux"]["resources"]), ["devices"]);
        assert_eq!(
            json["linux"]["resources"]["devices"][0],
            serde_json::json!({"allow": false, "access": "rwm"})
        );
        assert_eq!(json["linux"]["namespaces"][3]["type"], "mount");
        assert_eq!(json["linux"]["namespaces"][4]["type"], "network");
        assert_eq!(json["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(
            json["mounts"][3],
            serde_json::json!({
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            })
        );
    }

    #[test]
    fn hostname_defaults_to_the_id_and_is_never_youki() {
        let ns = Id::new("default").unwrap();
        let spec = builder().build().unwrap();
        assert_eq!(spec.hostname().as_deref(), None);
        let long = Id::new("a".repeat(76)).unwrap();
        let spec = for_container(&spec, &ns, &long).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some(&long.as_str()[..63]));
        let spec = builder().hostname("web").build().unwrap();
        let spec = for_container(&spec, &ns, &long).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("web"));
    }

    #[test]
    fn the_cgroups_path_is_the_containers_own() {
        let cgroups = |spec: &Spec| spec.linux().as_ref().unwrap().cgroups_path().clone();
        let ns = Id::new("ns").unwrap();
        let (a, b) = (Id::new("a").unwrap(), Id::new("b").unwrap());
        let spec = builder().build().unwrap();
        assert_eq!(cgroups(&spec), None);
        // One spec, two containers: two cgroups.
        let for_a = for_container(&spec, &ns, &a).unwrap();
        assert_eq!(cgroups(&for_a), Some(PathBuf::from("/ns/a")));
        let for_b = for_container(&spec, &ns, &b).unwrap();
        assert_eq!(cgroups(&for_b), Some(PathBuf::from("/ns/b")));
        // A spec already bound to a is a's, whatever the namespace; it is not b's.
        assert_eq!(
            cgroups(&for_container(&for_a, &ns, &a).unwrap()),
            cgroups(&for_a)
        );
        assert_invalid(for_container(&for_a, &ns, &b), "not container b's");
        // A parent of the caller's choosing is kept when the path ends in the id.
        let mut parented = spec.clone();
        let mut linux = parented.linux().clone().unwrap();
        linux.set_cgroups_path(Some(PathBuf::from("/ci/a")));
        parented.set_linux(Some(linux));
        let kept = for_container(&parented, &ns, &a).unwrap();
        assert_eq!(cgroups(&kept), Some(PathBuf::from("/ci/a")));
    }

    #[test]
    fn options_land_in_the_spec() {
        let spec = builder()
            .args(["/bin/echo", "hi"])
            .cwd("/tmp")
            .user(1000, 100)
            .readonly_rootfs(true)
            .terminal(true)
            .memory_limit(64 << 20)
            .cpus(1.5)
            .pids_limit(100)
            .build()
            .unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(
            process.args().clone().unwrap(),
            vec!["/bin/echo".to_string(), "hi".to_string()]
        );
        assert_eq!(process.cwd(), &PathBuf::from("/tmp"));
        assert_eq!((process.user().uid(), process.user().gid()), (1000, 100));
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let resources = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(resources.memory().unwrap().limit(), Some(64 << 20));
        let cpu = resources.cpu().as_ref().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(150_000), Some(100_000)));
        assert_eq!(resources.pids().unwrap().limit(), 100);
        assert_eq!(cpu_quota(0.29).unwrap(), 29_000);
        assert_eq!(cpu_quota(0.01).unwrap(), 1_000);
    }

    #[test]
    fn env_later_keys_replace_earlier_ones_in_place() {
        let spec = builder()
            .env("A=1")
            .env("B=2")
            .env("A=3")
            .env("PATH=/bin")
            .env("AB=4")
            .env("E=")
            .env("X=a=b")
            .build()
            .unwrap();
        assert_eq!(
            env_of(&spec),
            ["PATH=/bin", "A=3", "B=2", "AB=4", "E=", "X=a=b"]
        );

        let spec = builder().terminal(true).build().unwrap();
        assert_eq!(
            env_of(&spec),
            [format!("PATH={DEFAULT_PATH}"), "TERM=xterm".to_string()]
        );
        let spec = builder().terminal(true).env("TERM=dumb").build().unwrap();
        assert_eq!(
            env_of(&spec),
            [format!("PATH={DEFAULT_PATH}"), "TERM=dumb".to_string()]
        );
    }

    #[test]
    fn build_rejects_bad_options() {
        assert_invalid(
            SpecBuilder::new("rootfs").build(),
            "must be an absolute path",
        );
        assert_invalid(SpecBuilder::new("rootfs").build(), "rootfs");
        assert_invalid(builder().args(Vec::<String>::new()).build(), "args");
        assert_invalid(builder().args([""]).build(), "args");
        assert_invalid(builder().args(["sh", "a\0b"]).build(), "args[1]");
        assert_invalid(builder().env("A=\0").build(), "env");
        assert_invalid(builder().env("NOVALUE").build(), "KEY=VALUE");
        assert_invalid(builder().env("=x").build(), "KEY=VALUE");
        assert_invalid(builder().cwd("tmp").build(), "cwd");
        assert_invalid(builder().cwd("/t\0").build(), "cwd");
        assert_invalid(builder().hostname("a\0b").build(), "hostname");
        assert_invalid(builder().hostname("").build(), "hostname");
        assert_invalid(builder().hostname("h".repeat(65)).build(), "hostname");
        assert_invalid(builder().cpus(0.0).build(), "cpus");
        assert_invalid(builder().cpus(-1.0).build(), "cpus");
        assert_invalid(builder().cpus(f64::NAN).build(), "cpus");
        assert_invalid(builder().cpus(f64::INFINITY).build(), "cpus");
        assert_invalid(builder().cpus(0.001).build(), "cpus");
        assert_invalid(builder().cpus(1e20).build(), "cpus");
        assert_invalid(builder().memory_limit(-5).build(), "memory");
        assert_invalid(
            builder().memory_limit(MIN_MEMORY - 1).build(),
            "minimum memory limit allowed is 6MB",
        );
        assert!(builder().memory_limit(MIN_MEMORY).build().is_ok());
        assert!(builder().hostname("h".repeat(64)).build().is_ok());
    }

    #[test]
    fn parse_bytes_accepts_docker_sizes() {
        for (input, want) in [
            ("0", 0),
            ("1024", 1024),
            ("10b", 10),
            ("10B", 10),
            ("512k", 512 * 1024),
            ("512KB", 512 * 1024),
            ("64m", 67_108_864),
            ("64M", 67_108_864),
            ("64MiB", 67_108_864),
            ("64 m", 67_108_864),
            ("1g", 1 << 30),
            ("1.5g", 1_610_612_736),
            ("0.5k", 512),
            ("1.0001", 1),
            ("2t", 2 << 40),
            ("3p", 3 << 50),
            ("8191p", 8191 << 50),
        ] {
            assert_eq!(parse_bytes(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn parse_bytes_rejects_garbage() {
        for bad in [
            "",
            "12q",
            "-1",
            "m",
            "1.g",
            ".5g",
            "1..5",
            "1e3",
            " 1",
            "1  m",
            "1m ",
            "1i",
            "1.5.5m",
            "8192p",
            "99999999999999999999999999999999999999999999",
        ] {
            let err = parse_bytes(bad).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(err.to_string().starts_with("invalid size"), "{err}");
        }
        assert!(parse_bytes("8192p")
            .unwrap_err()
            .to_string()
            .contains("too large"));
    }

    #[test]
    fn parse_user_takes_numeric_ids() {
        assert_eq!(parse_user("0").unwrap(), (0, 0));
        assert_eq!(parse_user("1000").unwrap(), (1000, 0));
        assert_eq!(parse_user("1000:1001").unwrap(), (1000, 1001));
        for bad in [
            "",
            "root",
            "1000:",
            ":1000",
            "1000:staff",
            "+1",
            "-1",
            "1:2:3",
            "4294967296",
            "4294967295",
            " 1",
        ] {
            let err = parse_user(bad).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        assert!(parse_user("root")
            .unwrap_err()
            .to_string()
            .contains("use numeric ids"));
    }

    fn caps_of(spec: &Spec) -> u64 {
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        let effective = caps.effective().clone().unwrap();
        assert_eq!(caps.bounding().clone().unwrap(), effective);
        assert_eq!(caps.permitted().clone().unwrap(), effective);
        let names: Vec<String> = effective
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        capability_mask(&names)
    }

    fn syscall_names(spec: &Spec) -> Vec<String> {
        let seccomp = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
        seccomp
            .syscalls()
            .clone()
            .unwrap()
            .iter()
            .filter(|s| s.args().is_none() && s.errno_ret().is_none())
            .flat_map(|s| s.names().clone())
            .collect()
    }

    fn mount_options(spec: &Spec, destination: &str) -> Vec<String> {
        spec.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new(destination))
            .unwrap()
            .options()
            .clone()
            .unwrap()
    }

    #[test]
    fn seccomp_and_capabilities_by_default_and_on_request() {
        let spec = builder().build().unwrap();
        assert_eq!(caps_of(&spec), 0xa80425fb);
        let names = syscall_names(&spec);
        assert!(names.contains(&"openat".to_string()) && !names.contains(&"mount".to_string()));

        let spec = builder().cap_add("sys_admin").build().unwrap();
        assert!(syscall_names(&spec).contains(&"mount".to_string()));
        assert_eq!(
            caps_of(&builder().cap_add("NET_ADMIN").build().unwrap()),
            0xa80435fb
        );
        let none = builder().cap_drop("ALL").build().unwrap();
        assert_eq!(caps_of(&none), 0);
        // Without CAP_SYS_CHROOT the profile no longer allows chroot.
        assert!(!syscall_names(&none).contains(&"chroot".to_string()));

        let unconfined = builder().seccomp(Seccomp::Unconfined).build().unwrap();
        assert!(unconfined.linux().as_ref().unwrap().seccomp().is_none());
        let nnp = builder().no_new_privileges(true).build().unwrap();
        assert_eq!(
            nnp.process().as_ref().unwrap().no_new_privileges(),
            Some(true)
        );

        let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let custom = builder()
            .seccomp(Seccomp::Json(profile.into()))
            .build()
            .unwrap();
        let seccomp = custom.linux().as_ref().unwrap().seccomp().clone().unwrap();
        assert_eq!(
            seccomp.syscalls().as_ref().unwrap()[0].names(),
            &["mkdir".to_string()]
        );
    }

    #[test]
    fn privileged_is_dockers_privileged() {
        let spec = builder().privileged(true).build().unwrap();
        let host = caps::HostCaps::read();
        let want = caps::effective_set(&[], &[], true, &host).unwrap();
        assert_eq!(caps_of(&spec), capability_mask(&want));
        assert!(caps_of(&spec) & (1 << 21) != 0, "CAP_SYS_ADMIN");
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules, vec![devices::allow_all()]);
        let nodes = linux.devices().clone().unwrap();
        assert!(nodes.iter().any(|d| d.path() == Path::new("/dev/null")));
        assert!(!mount_options(&spec, "/sys").contains(&"ro".to_string()));
        assert!(!mount_options(&spec, "/sys/fs/cgroup").contains(&"ro".to_string()));
        assert!(mount_options(&builder().build().unwrap(), "/sys").contains(&"ro".to_string()));
        // A profile of its own still applies.
        let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#;
        let spec = builder()
            .privileged(true)
            .seccomp(Seccomp::Json(profile.into()))
            .build()
            .unwrap();
        assert!(spec.linux().as_ref().unwrap().seccomp().is_some());
        assert!(builder()
            .privileged(true)
            .cap_add("NET_ADMIN")
            .build()
            .is_ok());
    }

    #[test]
    fn limits_groups_devices_and_init_land_in_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\naudio:x:29:nobody\nvideo:x:44:\n",
        )
        .unwrap();
        let spec = SpecBuilder::new(root)
            .user_from_rootfs("nobody", root)
            .group_add("video")
            .group_add(1234)
            .ulimit("nofile", 100, 200)
            .ulimit("nproc", -1, -1)
            .ulimit("nofile", 300, 400)
            .sysctl("net.ipv4.ip_forward", "1")
            .sysctl("kernel.shmmax", "65536")
            .oom_score_adj(-500)
            .shm_size(1 << 20)
            .memory_limit(64 << 20)
            .memory_swap(128 << 20)
            .memory_reservation(32 << 20)
            .oom_kill_disable(true)
            .cpu_shares(512)
            .cpuset_cpus("0")
            .pids_limit(-1)
            .device("/dev/null", "/dev/mynull", "rw")
            .build()
            .unwrap();
        let process = spec.process().as_ref().unwrap();
        let user = process.user();
        assert_eq!((user.uid(), user.gid()), (65534, 65534));
        assert_eq!(
            user.additional_gids().clone().unwrap(),
            [65534, 29, 44, 1234]
        );
        let rlimits: Vec<(PosixRlimitType, u64, u64)> = process
            .rlimits()
            .clone()
            .unwrap()
            .iter()
            .map(|r| (r.typ(), r.soft(), r.hard()))
            .collect();
        assert_eq!(
            rlimits,
            [
                (PosixRlimitType::RlimitNofile, 300, 400),
                (PosixRlimitType::RlimitNproc, u64::MAX, u64::MAX)
            ]
        );
        assert_eq!(process.oom_score_adj(), Some(-500));
        assert!(mount_options(&spec, "/dev/shm").contains(&"size=1048576".to_string()));
        assert!(!mount_options(&spec, "/dev/shm").contains(&DEFAULT_SHM_SIZE.to_string()));

        let linux = spec.linux().as_ref().unwrap();
        let sysctl = linux.sysctl().clone().unwrap();
        assert_eq!(
            sysctl.get("net.ipv4.ip_forward").map(String::as_str),
            Some("1")
        );
        assert_eq!(sysctl.len(), 2);
        let resources = linux.resources().as_ref().unwrap();
        let memory = resources.memory().unwrap();
        assert_eq!(memory.limit(), Some(64 << 20));
        assert_eq!(memory.swap(), Some(128 << 20));
        assert_eq!(memory.reservation(), Some(32 << 20));
        assert_eq!(memory.disable_oom_killer(), Some(true));
        let cpu = resources.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.cpus().as_deref()),
            (Some(512), Some("0"))
        );
        assert_eq!(resources.pids().unwrap().limit(), -1);
        let device = &linux.devices().clone().unwrap()[0];
        assert_eq!(device.path(), Path::new("/dev/mynull"));
        let rule = resources.devices().clone().unwrap().pop().unwrap();
        assert_eq!(
            (rule.major(), rule.minor(), rule.access().as_deref()),
            (Some(1), Some(3), Some("rw"))
        );

        // Unlimited, docker's way: memory 0 and pids 0 set no limit.
        let spec = builder().memory_limit(0).pids_limit(0).build().unwrap();
        let resources = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        assert!(resources.memory().is_none());
        assert_eq!(resources.pids().unwrap().limit(), -1);

        // A numeric user is taken as is; group_add then starts from its gid.
        let spec = builder().user(5, 6).group_add(7).build().unwrap();
        let user = spec.process().as_ref().unwrap().user().clone();
        assert_eq!(user.additional_gids().clone().unwrap(), [6, 7]);
        let spec = builder().user(5, 6).build().unwrap();
        assert!(spec
            .process()
            .as_ref()
            .unwrap()
            .user()
            .additional_gids()
            .is_none());

        // A user resolved elsewhere (an image's files) gets docker's groups: its primary gid
        // first, once, then its groups and the added ones.
        let spec = builder()
            .resolved_user(5, 6, vec![7, 6])
            .group_add(8)
            .build()
            .unwrap();
        let user = spec.process().as_ref().unwrap().user().clone();
        assert_eq!(user.additional_gids().clone().unwrap(), [6, 7, 8]);

        // An init is mounted and runs first.
        let init = Path::new(rootfs_busybox());
        let spec = builder().args(["sleep", "1"]).init(init).build().unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(
            process.args().clone().unwrap(),
            ["/sbin/docker-init", "--", "sleep", "1"]
        );
        let mount = spec.mounts().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(mount.destination(), Path::new(INIT_PATH));
        assert_eq!(mount.source().as_deref(), Some(init));
        assert_eq!(mount.typ().as_deref(), Some("bind"));
        assert_eq!(mount.options().clone().unwrap(), ["bind", "ro"]);
    }

    fn rootfs_busybox() -> &'static str {
        crate::rootfs::DEFAULT_BUSYBOX
    }

    #[test]
    fn bad_security_options_are_refused_naming_the_option() {
        assert_invalid(
            builder().cap_add("SYS_EVERYTHING").build(),
            "cap_add: unknown capability \"SYS_EVERYTHING\"",
        );
        assert_invalid(
            builder().cap_drop("").build(),
            "cap_drop: unknown capability",
        );
        assert_invalid(
            builder().privileged(true).cap_drop("ALL").build(),
            "privileged: cap_drop ALL contradicts it",
        );
        assert_invalid(
            builder().seccomp(Seccomp::Json("{oops".into())).build(),
            "seccomp profile: malformed profile",
        );
        assert_invalid(
            builder()
                .seccomp(Seccomp::File("/nonexistent/profile.json".into()))
                .build(),
            "seccomp: cannot read profile /nonexistent/profile.json",
        );
        assert_invalid(
            builder()
                .device("/dev/nonexistent-xyz", "/dev/x", "rwm")
                .build(),
            "device /dev/nonexistent-xyz",
        );
        assert_invalid(
            builder().device("/dev/null", "/dev/x", "rwx").build(),
            "device: invalid permissions \"rwx\"",
        );
        assert_invalid(
            builder().device("/dev/null", "dev/x", "rwm").build(),
            "must be an absolute utf-8 path",
        );
        assert_invalid(
            builder().ulimit("nofile", 200, 100).build(),
            "ulimit nofile: soft limit must be less than or equal to hard limit: 200 > 100",
        );
        assert_invalid(
            builder().ulimit("nofile", -1, 100).build(),
            "-1 (unlimited) > 100",
        );
        assert_invalid(
            builder().ulimit("as", 1, 1).build(),
            "ulimit: unknown limit \"as\"",
        );
        assert_invalid(
            builder().ulimit("nproc", -2, 5).build(),
            "ulimit nproc: soft limit -2 is negative",
        );
        assert_invalid(
            builder().sysctl("kernel.hostname", "x").build(),
            "sysctl kernel.hostname is not allowed",
        );
        assert_invalid(
            builder().sysctl("vm.swappiness", "1").build(),
            "not namespaced",
        );
        assert_invalid(
            builder().sysctl("kernel.shm_next_id", "1").build(),
            "not allowed",
        );
        assert_invalid(builder().sysctl("net.a=b", "1").build(), "malformed");
        assert!(builder().sysctl("fs.mqueue.msg_max", "5").build().is_ok());
        assert!(builder().sysctl("kernel.sem", "1 2 3 4").build().is_ok());
        assert_invalid(
            builder().oom_score_adj(1001).build(),
            "oom_score_adj 1001 is out of range",
        );
        assert_invalid(builder().shm_size(0).build(), "shm_size must be positive");
        assert_invalid(
            builder().memory_swap(1 << 30).build(),
            "memory_swap needs a memory limit",
        );
        assert_invalid(
            builder()
                .memory_limit(64 << 20)
                .memory_swap(32 << 20)
                .build(),
            "memory_swap 33554432 is less than the memory limit",
        );
        assert_invalid(
            builder().memory_limit(64 << 20).memory_swap(-2).build(),
            "memory_swap -2 is invalid",
        );
        assert!(builder()
            .memory_limit(64 << 20)
            .memory_swap(-1)
            .build()
            .is_ok());
        assert_invalid(
            builder().memory_reservation(1024).build(),
            "minimum memory reservation allowed is 6MB",
        );
        assert_invalid(
            builder()
                .memory_limit(16 << 20)
                .memory_reservation(32 << 20)
                .build(),
            "memory_reservation 33554432 is above the memory limit",
        );
        assert_invalid(
            builder().cpu_shares(1).build(),
            "cpu_shares 1 is out of range",
        );
        assert_invalid(builder().cpu_shares(262_145).build(), "cpu_shares");
        assert_invalid(
            builder().cpuset_cpus("0-").build(),
            "cpuset_cpus \"0-\" is not a CPU list",
        );
        assert_invalid(
            builder().cpuset_cpus("99999").build(),
            "CPU 99999 is not available",
        );
        assert_invalid(
            builder().init("/nonexistent/tini").build(),
            "init /nonexistent/tini: cannot use it",
        );
        assert_invalid(
            builder().init("tini").build(),
            "init tini must be an absolute path",
        );
        let plain = tempfile::NamedTempFile::new().unwrap();
        assert_invalid(builder().init(plain.path()).build(), "is not executable");
        assert_invalid(
            builder().init("/usr/bin").build(),
            "init /usr/bin is not a regular file",
        );
        assert_invalid(
            builder()
                .user_from_rootfs("ghost", "/nonexistent-root")
                .build(),
            "user: unable to find user ghost",
        );
        assert_invalid(
            builder().group_add("ghosts").build(),
            "group_add: unable to find group ghosts",
        );
        assert_invalid(builder().group_add("").build(), "group_add");
        // Each message is one line.
        let err = builder()
            .seccomp(Seccomp::Json("{\n\n oops".into()))
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn a_dynamic_init_is_refused() {
        // The test binary itself is dynamically linked; busybox-static is not.
        let me = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&me).unwrap();
        assert!(validate::elf_interpreter(&bytes));
        assert!(!validate::elf_interpreter(
            &std::fs::read(rootfs_busybox()).unwrap()
        ));
        assert!(!validate::elf_interpreter(b"#!/bin/sh\n"));
        assert!(!validate::elf_interpreter(b"\x7fELF\x02\x01"));
        assert_invalid(builder().init(&me).build(), "is dynamically linked");
    }

    #[test]
    fn parse_ulimit_and_device_take_dockers_forms() {
        assert_eq!(
            parse_ulimit("nofile=100:200").unwrap(),
            ("nofile".into(), 100, 200)
        );
        assert_eq!(parse_ulimit("nproc=50").unwrap(), ("nproc".into(), 50, 50));
        assert_eq!(parse_ulimit("core=-1").unwrap(), ("core".into(), -1, -1));
        assert_eq!(
            parse_ulimit("memlock=infinity:infinity").unwrap(),
            ("memlock".into(), -1, -1)
        );
        for bad in [
            "nofile",
            "nofile=",
            "nofile=a",
            "nofile=1:2:3",
            "nofile=1:x",
        ] {
            let err = parse_ulimit(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(err.to_string().starts_with("invalid ulimit"), "{err}");
        }
        let d = |s: &str| {
            let (h, c, p) = parse_device(s).unwrap();
            (h.display().to_string(), c.display().to_string(), p)
        };
        assert_eq!(
            d("/dev/fuse"),
            ("/dev/fuse".into(), "/dev/fuse".into(), "rwm".into())
        );
        assert_eq!(
            d("/dev/fuse:r"),
            ("/dev/fuse".into(), "/dev/fuse".into(), "r".into())
        );
        assert_eq!(
            d("/dev/null:/dev/mynull"),
            ("/dev/null".into(), "/dev/mynull".into(), "rwm".into())
        );
        assert_eq!(
            d("/dev/null:/dev/mynull:rw"),
            ("/dev/null".into(), "/dev/mynull".into(), "rw".into())
        );
        assert!(parse_device("a:b:c:d").is_err());
        assert!(parse_device(":/dev/x").is_err());
    }

    #[test]
    fn any_round_trip() {
        let spec = builder()
            .args(["top"])
            .env("A=1")
            .memory_limit(1 << 30)
            .cpus(0.5);
        let spec = stored(spec);
        let any = to_any(&spec).unwrap();
        assert_eq!(any.type_url, SPEC_TYPE_URL);
        let json: serde_json::Value = serde_json::from_slice(&any.value).unwrap();
        assert_eq!(json["linux"]["cgroupsPath"], "/default/c1");
        assert_eq!(from_any(&any).unwrap(), spec);

        let wrong_type = prost_types::Any {
            type_url: "types.containerd.io/other".to_string(),
            value: any.value.clone(),
        };
        assert_eq!(
            from_any(&wrong_type).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        let garbage = prost_types::Any {
            type_url: SPEC_TYPE_URL.to_string(),
            value: b"{not json".to_vec(),
        };
        let err = from_any(&garbage).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().starts_with("decode runtime spec"));
    }
}
