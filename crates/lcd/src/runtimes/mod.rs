//! `--runtime NAME` of `run` and `create`: which OCI runtime runs a container, with docker's names.
//!
//! - `runc` (the default, also spelled `io.containerd.runc.v2`): runc under containerd's runc v2
//!   shim, with runc's state under the exec root and lcd's criu (see [`Ctx::runtime`]).
//! - a runc-compatible binary, by name in `PATH` (Debian's `crun`) or by path: the same shim runs
//!   it instead of runc (the runc options' `BinaryName`), with a state root of its own under the
//!   exec root. Such a binary gets lcd's criu only if it takes runc's `--criu` (crun refuses it).
//! - another shim by its full runtime name, `io.containerd.NAME.vN`, as docker takes it (containerd
//!   runs `containerd-shim-NAME-vN`), without runc's options (other versions of the runc shim get
//!   them).
//!
//! Everything is checked before anything is created: an unknown name, a binary that does not
//! answer `--version`, or crun on a host it refuses (cgroup v1 with controllers on the cgroup v2
//! hierarchy too: "cgroups in hybrid mode not supported") is one line and 125. The name is
//! recorded on the container ([`LABEL_RUNTIME`], `inspect`'s `HostConfig.Runtime`); containerd
//! keeps the runtime itself in the container's record, so `start` and the agent's restarts use it.
//! What a binary is (crun or runc, whether it takes `--criu`) is [`probe`]'s to find out.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use libcontainerd::oci_spec::runtime::Spec;
use libcontainerd::runtime::{shim_binary_name, RUNC_V2};
use libcontainerd::Runtime;
use serde_json::{json, Value};

use crate::context::Ctx;
use probe::Probe;

mod probe;

/// The runtime name a container was created with, when not the default (docker's
/// `HostConfig.Runtime`).
pub const LABEL_RUNTIME: &str = "io.lcd.runtime";

/// docker's name of the default runtime.
pub const DEFAULT: &str = "runc";

/// runc-compatible runtimes `lcd info` looks for in `PATH`.
const KNOWN_BINARIES: [&str; 3] = ["runc", "crun", "youki"];

/// What a `--runtime` value names, by its form alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// runc under the runc v2 shim.
    Runc,
    /// A runc-compatible binary (a name to find in `PATH`, or a path) under the runc v2 shim.
    Binary(String),
    /// Another shim, by its containerd runtime name.
    Shim(String),
}

impl Kind {
    /// docker's reading: `runc` and the runc shim's name are the default; a name with a dot and
    /// no slash is a shim's runtime name (as docker passes it to containerd); anything else names
    /// an OCI runtime binary.
    pub fn of(name: &str) -> Kind {
        match name {
            "" | DEFAULT | RUNC_V2 => Kind::Runc,
            _ if name.contains('/') => Kind::Binary(name.to_string()),
            _ if name.contains('.') && shim_binary_name(name).is_some() => {
                Kind::Shim(name.to_string())
            }
            _ => Kind::Binary(name.to_string()),
        }
    }
}

/// A runtime checked and ready for a new container.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// What containerd records for the container.
    pub runtime: Runtime,
    /// The name to record ([`LABEL_RUNTIME`]); `None` for the default.
    pub label: Option<String>,
    /// A runc-compatible binary other than the default runc.
    other_binary: bool,
}

impl Chosen {
    /// The default: runc.
    pub fn default_runc(ctx: &Ctx) -> Chosen {
        Chosen {
            runtime: ctx.runtime(),
            label: None,
            other_binary: false,
        }
    }

    /// What the spec needs for this runtime. An unlimited pids limit is left out for binaries
    /// other than runc: crun 1.8 writes docker's `-1` to `pids.max` literally, which the kernel
    /// refuses ("writing file `pids.max`: Invalid argument"); a new cgroup has no limit anyway.
    pub fn adapt(&self, spec: &mut Spec) {
        if !self.other_binary {
            return;
        }
        let Some(resources) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.resources_mut().as_mut())
        else {
            return;
        };
        if resources.pids().as_ref().is_some_and(|p| p.limit() <= 0) {
            resources.set_pids(None);
        }
    }
}

/// Check `--runtime NAME` (absent: runc) and build what containerd gets for it.
pub async fn resolve(ctx: &Ctx, name: Option<&str>) -> Result<Chosen> {
    let name = name.unwrap_or(DEFAULT);
    match Kind::of(name) {
        Kind::Runc => Ok(Chosen::default_runc(ctx)),
        Kind::Shim(shim) => {
            check_shim(ctx, &shim)?;
            let runtime = if shim.starts_with("io.containerd.runc.") {
                // Another version of the runc shim takes the same options: runc's state stays
                // under the exec root, and lcd's criu is used.
                Runtime {
                    name: shim.clone(),
                    ..ctx.runtime()
                }
            } else {
                Runtime::shim(shim.clone())
            };
            Ok(Chosen {
                runtime,
                label: Some(shim),
                other_binary: false,
            })
        }
        Kind::Binary(given) => {
            let binary = find_binary(&given).ok_or_else(|| {
                if given.contains('/') {
                    anyhow::anyhow!("--runtime {name}: unknown or invalid runtime name: no executable file at {given}")
                } else {
                    unknown(name)
                }
            })?;
            let criu = libcontainerd::checkpoint::find_criu();
            let probe = Probe::of(&binary, criu.as_deref(), &ctx.exec_root)
                .await
                .with_context(|| {
                    format!(
                        "--runtime {name}: {} is not an OCI runtime",
                        binary.display()
                    )
                })?;
            if probe.is_crun() && is_elf(&binary) {
                if let Some(controllers) = hybrid_v2_controllers() {
                    bail!("--runtime {name}: crun cannot run containers on this host: its cgroups are v1 with controllers on the cgroup v2 hierarchy too ({controllers} in /sys/fs/cgroup/unified), which crun refuses (\"cgroups in hybrid mode not supported\"); use --runtime runc");
                }
            }
            let file_name = binary
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut runtime = Runtime::runc_binary(binary.to_string_lossy());
            if let Some(options) = runtime.options.as_mut() {
                // A state root of its own: runc's and crun's state files differ.
                options.root = ctx
                    .exec_root
                    .join(format!("runtime-{file_name}"))
                    .to_string_lossy()
                    .into_owned();
            }
            if let Some(criu) = criu.filter(|_| probe.takes_criu) {
                runtime = runtime.with_criu(criu.to_string_lossy());
            }
            let label = if given.contains('/') {
                binary.to_string_lossy().into_owned()
            } else {
                given
            };
            Ok(Chosen {
                runtime,
                label: Some(label),
                other_binary: true,
            })
        }
    }
}

/// docker's words, and what lcd takes instead.
fn unknown(name: &str) -> anyhow::Error {
    anyhow::anyhow!("--runtime {name}: unknown or invalid runtime name: give runc, a runc-compatible OCI runtime binary by name in PATH or by path (e.g. crun), or a shim's runtime name io.containerd.NAME.vN")
}

/// The shim binary containerd will look for must be there. containerd looks in its `PATH` (lcd's
/// own for the managed containerd) and beside its own binary; with `--address` that is another
/// process's `PATH`, so the check is left to containerd (the first start fails if it is missing).
fn check_shim(ctx: &Ctx, name: &str) -> Result<()> {
    let Some(binary) = shim_binary_name(name) else {
        return Err(unknown(name));
    };
    if ctx.address.is_some()
        || shim_dirs(ctx)
            .iter()
            .any(|d| is_executable(&d.join(&binary)))
    {
        return Ok(());
    }
    bail!("--runtime {name}: unknown or invalid runtime name: containerd runs shim {binary} for it, and there is none in PATH or beside containerd")
}

/// Where containerd finds shims: `PATH`, and the directory of its own binary.
fn shim_dirs(ctx: &Ctx) -> Vec<PathBuf> {
    let mut dirs = path_dirs();
    let containerd = if ctx.containerd.components().count() > 1 {
        Some(ctx.containerd.clone())
    } else {
        dirs.iter()
            .map(|d| d.join(&ctx.containerd))
            .find(|p| is_executable(p))
    };
    if let Some(dir) = containerd
        .and_then(|c| std::fs::canonicalize(c).ok())
        .and_then(|c| c.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    dirs
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .filter(|d| d.is_absolute())
                .collect()
        })
        .unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A runtime binary as an absolute path (the shim runs it from elsewhere): a path as given,
/// made absolute; a bare name from `PATH`.
fn find_binary(given: &str) -> Option<PathBuf> {
    if given.contains('/') {
        let path = std::fs::canonicalize(given).ok()?;
        return is_executable(&path).then_some(path);
    }
    path_dirs()
        .into_iter()
        .map(|d| d.join(given))
        .find(|p| is_executable(p))
}

/// Whether `path` is an ELF binary rather than a script: a script in front of crun may change
/// what crun sees (hide the cgroup v2 mount, say), so only crun itself is judged by the host's
/// layout; anything else meets crun's refusal when the task is created, which the library
/// recognises.
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// The controllers of a hybrid host's cgroup v2 hierarchy: `/sys/fs/cgroup` is a tmpfs of v1
/// hierarchies with a cgroup2 mount at `unified` that has controllers (crun accepts a hybrid
/// host whose v2 hierarchy has none). `None` on a pure v1 or v2 host.
fn hybrid_v2_controllers() -> Option<String> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
    let root = Path::new("/sys/fs/cgroup");
    if statfs(root).ok()?.filesystem_type() != TMPFS_MAGIC {
        return None;
    }
    let unified = root.join("unified");
    if statfs(&unified).ok()?.filesystem_type() != CGROUP2_SUPER_MAGIC {
        return None;
    }
    let controllers = std::fs::read_to_string(unified.join("cgroup.controllers")).ok()?;
    let controllers = controllers.split_whitespace().collect::<Vec<_>>().join(" ");
    (!controllers.is_empty()).then_some(controllers)
}

/// The runtime name a container runs with, as `inspect` shows it (docker's `HostConfig.Runtime`).
pub fn name_of(labels: &std::collections::HashMap<String, String>) -> String {
    labels
        .get(LABEL_RUNTIME)
        .cloned()
        .unwrap_or_else(|| DEFAULT.to_string())
}

/// The runtimes `--runtime` can name on this machine, as `docker info` lists them (`Runtimes`):
/// runc and its shim's name, the runc-compatible binaries lcd knows of in `PATH`, and every
/// shim in `PATH` or beside containerd by its runtime name. Also the warnings to print with
/// them: a crun this host's cgroups rule out.
pub fn available(ctx: &Ctx) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut runtimes = BTreeMap::new();
    let mut warnings = Vec::new();
    let runc = ctx.runtime().oci_binary().unwrap_or(DEFAULT).to_string();
    runtimes.insert(DEFAULT.to_string(), json!({ "path": runc }));
    runtimes.insert(RUNC_V2.to_string(), json!({ "path": runc }));
    for name in KNOWN_BINARIES.iter().filter(|n| **n != DEFAULT) {
        if let Some(path) = find_binary(name) {
            if *name == "crun" {
                if let Some(controllers) = hybrid_v2_controllers() {
                    warnings.push(format!("crun ({}) cannot run containers on this host: cgroup v2 has controllers ({controllers}) beside cgroup v1, which crun refuses", path.display()));
                }
            }
            runtimes.insert(name.to_string(), json!({ "path": path }));
        }
    }
    for dir in shim_dirs(ctx) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = shim_runtime_name(&file) {
                if is_executable(&entry.path()) && !runtimes.contains_key(&name) {
                    runtimes.insert(name.clone(), json!({ "runtimeType": name }));
                }
            }
        }
    }
    (runtimes, warnings)
}

/// `containerd-shim-runsc-v1` -> `io.containerd.runsc.v1`; `None` for other files (and the v1
/// shim API's `containerd-shim`, which containerd 1.6 no longer takes by name).
fn shim_runtime_name(file: &str) -> Option<String> {
    let rest = file.strip_prefix("containerd-shim-")?;
    let (kind, version) = rest.rsplit_once('-')?;
    let numbered = version.strip_prefix('v')?;
    if kind.is_empty() || kind.contains(['.', '/']) || numbered.parse::<u32>().is_err() {
        return None;
    }
    Some(format!("io.containerd.{kind}.{version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_as_docker_reads_them() {
        assert_eq!(Kind::of("runc"), Kind::Runc);
        assert_eq!(Kind::of(""), Kind::Runc);
        assert_eq!(Kind::of("io.containerd.runc.v2"), Kind::Runc);
        assert_eq!(Kind::of("crun"), Kind::Binary("crun".into()));
        assert_eq!(
            Kind::of("/usr/bin/crun"),
            Kind::Binary("/usr/bin/crun".into())
        );
        assert_eq!(Kind::of("./my.runc"), Kind::Binary("./my.runc".into()));
        assert_eq!(
            Kind::of("io.containerd.runsc.v1"),
            Kind::Shim("io.containerd.runsc.v1".into())
        );
        assert_eq!(
            Kind::of("io.containerd.runc.v1"),
            Kind::Shim("io.containerd.runc.v1".into())
        );
    }

    #[test]
    fn shim_files_are_listed_by_runtime_name() {
        assert_eq!(
            shim_runtime_name("containerd-shim-runc-v2").as_deref(),
            Some("io.containerd.runc.v2")
        );
        assert_eq!(
            shim_runtime_name("containerd-shim-runsc-v1").as_deref(),
            Some("io.containerd.runsc.v1")
        );
        for other in [
            "containerd-shim",
            "containerd-shim-runc",
            "containerd-shim--v1",
            "containerd-shim-x-vv",
            "containerd",
        ] {
            assert_eq!(shim_runtime_name(other), None, "{other}");
        }
    }

    #[test]
    fn an_unlimited_pids_limit_is_left_out_for_other_binaries_only() {
        let spec = || {
            libcontainerd::SpecBuilder::new("/r")
                .pids_limit(-1)
                .build()
                .expect("spec")
        };
        let pids = |spec: &Spec| {
            spec.linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| *r.pids())
                .map(|p| p.limit())
        };
        let runc = Chosen {
            runtime: Runtime::default(),
            label: None,
            other_binary: false,
        };
        let mut kept = spec();
        runc.adapt(&mut kept);
        assert_eq!(pids(&kept), Some(-1));
        let crun = Chosen {
            runtime: Runtime::runc_binary("/usr/bin/crun"),
            label: Some("crun".into()),
            other_binary: true,
        };
        let mut dropped = spec();
        crun.adapt(&mut dropped);
        assert_eq!(pids(&dropped), None);
        let mut limited = libcontainerd::SpecBuilder::new("/r")
            .pids_limit(50)
            .build()
            .expect("spec");
        crun.adapt(&mut limited);
        assert_eq!(pids(&limited), Some(50));
    }

    #[test]
    fn elf_binaries_are_told_from_scripts() {
        assert!(is_elf(Path::new("/proc/self/exe")));
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("crun");
        std::fs::write(&script, "#!/bin/sh\nexec crun \"$@\"\n").expect("write");
        assert!(!is_elf(&script));
        assert!(!is_elf(&dir.path().join("missing")));
    }
}
