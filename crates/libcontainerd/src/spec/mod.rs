//! The OCI runtime spec a container runs with.
//!
//! [`SpecBuilder`] produces the default Linux spec that `runc spec` and containerd's
//! `populateDefaultUnixSpec` + `WithDefaultUnixDevices` produce, with Docker's default capability set,
//! plus the handful of knobs a docker-style `run` needs (command, env, user, limits, ...).
//!
//! Every field is set explicitly: `oci_spec`'s `Default` impls are a demo config (hostname "youki",
//! every capability set filled, a readonly `rootfs` relative path, a cgroup namespace) and must not
//! leak into what containerd receives.

mod defaults;
mod parse;
mod validate;

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Linux, LinuxCapabilities, LinuxCpu, LinuxMemory, LinuxNamespace,
    LinuxNamespaceType, LinuxPids, LinuxResources, PosixRlimitBuilder, PosixRlimitType, Process,
    Root, Spec, User,
};

use defaults::{
    default_capabilities, default_device_rules, default_mounts, strings, MASKED_PATHS,
    READONLY_PATHS,
};
pub use parse::{parse_bytes, parse_user};
pub(crate) use validate::{apply_env, MIN_MEMORY};
use validate::{
    cpu_quota, default_hostname, merge_env, validate_args, validate_cwd, validate_hostname,
    validate_memory, validate_rootfs, CPU_PERIOD,
};

use crate::error::{Error, Result};
use crate::id::Id;

/// Docker's default PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `type_url` containerd's `typeurl` registers the OCI runtime spec under.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Where the runtime mounts a snapshot root, relative to the bundle (containerd's convention).
pub const SNAPSHOT_ROOTFS: &str = "rootfs";

/// The runtime-spec version runc and containerd write into default specs.
const OCI_VERSION: &str = "1.0.2-dev";

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
    hostname: Option<String>,
    readonly_rootfs: bool,
    terminal: bool,
    memory_limit: Option<i64>,
    cpus: Option<f64>,
    pids_limit: Option<i64>,
}

impl SpecBuilder {
    /// Defaults for a container with its root at `rootfs` (an absolute path on the host): `sh` as
    /// root in `/`, no terminal, no resource limits. The spec names no container: the cgroups path
    /// and the default hostname come from the id when [`Client::new_container`] creates one (see
    /// [`for_container`]), so one spec can serve many containers.
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
            hostname: None,
            readonly_rootfs: false,
            terminal: false,
            memory_limit: None,
            cpus: None,
            pids_limit: None,
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

    /// The numeric user and group the process runs as (default `0:0`).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
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

    /// Give the process a terminal; also adds `TERM=xterm` unless `TERM` is set (default: no).
    pub fn terminal(mut self, yes: bool) -> Self {
        self.terminal = yes;
        self
    }

    /// Hard memory limit in bytes (`docker run --memory`); at least 6 MiB.
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// CPU limit in CPUs (`docker run --cpus`): a CFS quota of `cpus * 100000` per 100000µs period.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Maximum number of processes/threads in the container (`docker run --pids-limit`).
    pub fn pids_limit(mut self, n: i64) -> Self {
        self.pids_limit = Some(n);
        self
    }

    /// Validate the options and produce the spec. Every error is [`ErrorKind::InvalidArgument`]
    /// and names the offending option.
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

        let mut resources = LinuxResources::default();
        resources.set_devices(Some(default_device_rules()));
        if let Some(bytes) = self.memory_limit {
            validate_memory(bytes)?;
            let mut memory = LinuxMemory::default();
            memory.set_limit(Some(bytes));
            resources.set_memory(Some(memory));
        }
        if let Some(cpus) = self.cpus {
            let quota = cpu_quota(cpus)?;
            let mut cpu = LinuxCpu::default();
            cpu.set_quota(Some(quota)).set_period(Some(CPU_PERIOD));
            resources.set_cpu(Some(cpu));
        }
        if let Some(n) = self.pids_limit {
            if n <= 0 {
                return Err(Error::invalid(format!(
                    "pids limit must be positive, got {n}"
                )));
            }
            let mut pids = LinuxPids::default();
            pids.set_limit(n);
            resources.set_pids(Some(pids));
        }

        let mut root = Root::default();
        root.set_path(rootfs)
            // containerd omits `readonly` when false; Root::default() would say true.
            .set_readonly(self.readonly_rootfs.then_some(true));

        let process = build_process(self.terminal, self.uid, self.gid, self.args, env, self.cwd)?;
        let linux = build_linux(resources);

        let mut spec = Spec::default();
        spec.set_version(OCI_VERSION.to_string())
            .set_root(Some(root))
            .set_mounts(Some(default_mounts()))
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

fn build_process(
    terminal: bool,
    uid: u32,
    gid: u32,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
) -> Result<Process> {
    let mut user = User::default();
    user.set_uid(uid)
        .set_gid(gid)
        .set_umask(None)
        .set_additional_gids(None)
        .set_username(None);

    let caps: Capabilities = default_capabilities().into_iter().collect();
    let mut capabilities = LinuxCapabilities::default();
    // LinuxCapabilities::default() fills inheritable and ambient too; leaving them unset is what
    // keeps a non-root process from carrying capabilities across execve.
    capabilities
        .set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps))
        .set_inheritable(None)
        .set_ambient(None);

    // PosixRlimit has no setters; its builder cannot fail with every field given.
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .map_err(|e| Error::internal(format!("build rlimit: {e}")).with_source(e))?;

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
        .set_rlimits(Some(vec![nofile]))
        .set_no_new_privileges(Some(true))
        .set_apparmor_profile(None)
        .set_oom_score_adj(None)
        .set_selinux_label(None)
        .set_io_priority(None)
        .set_scheduler(None)
        .set_exec_cpu_affinity(None);
    Ok(process)
}

fn build_linux(resources: LinuxResources) -> Linux {
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
        .set_masked_paths(Some(strings(MASKED_PATHS)))
        .set_readonly_paths(Some(strings(READONLY_PATHS)))
        .set_mount_label(None)
        .set_intel_rdt(None)
        .set_memory_policy(None)
        .set_personality(None)
        .set_time_offsets(None);
    linux
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

    use super::validate::MIN_MEMORY;
    use super::*;
    use crate::error::ErrorKind;
    use oci_spec::runtime::LinuxDeviceType;

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
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!(env_of(&spec), vec![format!("PATH={DEFAULT_PATH}")]);
        let caps = process.capabilities().as_ref().unwrap();
        let want: Capabilities = default_capabilities().into_iter().collect();
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
                "noNewPrivileges",
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
                "resources"
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
        assert_invalid(builder().memory_limit(0).build(), "memory");
        assert_invalid(builder().memory_limit(-5).build(), "memory");
        assert_invalid(
            builder().memory_limit(MIN_MEMORY - 1).build(),
            "minimum memory limit allowed is 6MB",
        );
        assert!(builder().memory_limit(MIN_MEMORY).build().is_ok());
        assert_invalid(builder().pids_limit(0).build(), "pids");
        assert_invalid(builder().pids_limit(-1).build(), "pids");
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
