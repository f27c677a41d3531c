//! Seccomp: docker's default profile (kept as data in `seccomp_default.json`, in a form of this
//! library's own) and docker-format profile files, both turned into the spec's `LinuxSeccomp` for
//! one container's capabilities on this host's architecture and kernel.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The default profile's data, embedded in the library.
pub(super) const DEFAULT_PROFILE_DATA: &str = include_str!("seccomp_default.json");

/// Which seccomp filter a container runs under (`docker run --security-opt seccomp=...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile for the container's capabilities (none for a privileged container,
    /// as docker does).
    #[default]
    Default,
    /// No filter at all (`seccomp=unconfined`).
    Unconfined,
    /// A profile in docker's JSON format (`archMap`, `includes`/`excludes` by capability,
    /// architecture and kernel, or plain OCI fields), resolved for the container as docker does.
    /// Applied to privileged containers too.
    Json(String),
    /// A file holding a docker-format profile, read when the spec is built.
    File(PathBuf),
    /// A filter in the runtime spec's own form, used as is.
    Oci(Box<LinuxSeccomp>),
}

/// The host facts a profile's conditions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Host<'a> {
    /// The architecture as Rust names it (`std::env::consts::ARCH`).
    pub arch: &'a str,
    /// The running kernel's version, if known.
    pub kernel: Option<(u32, u32, u32)>,
}

impl Host<'static> {
    pub fn current() -> Host<'static> {
        Host {
            arch: std::env::consts::ARCH,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .and_then(|release| parse_kernel(&release)),
        }
    }
}

/// `6.18.44-fc` -> (6, 18, 44); missing parts are 0.
pub(super) fn parse_kernel(release: &str) -> Option<(u32, u32, u32)> {
    let mut parts = release.trim().split('.').map(|part| {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

fn kernel_at_least(host: &Host, min: &str) -> Result<bool> {
    let want = parse_kernel(min)
        .ok_or_else(|| Error::invalid(format!("minKernel {min:?} is not a kernel version")))?;
    // An unknown kernel meets no minimum: the rule stays out, which only ever denies more.
    Ok(host.kernel.is_some_and(|have| have >= want))
}

// ---------------------------------------------------------------------------------------------
// The default profile's data.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultData {
    #[allow(dead_code)]
    about: Vec<String>,
    pub default_errno: u32,
    pub architectures: BTreeMap<String, Vec<Arch>>,
    pub allow: Vec<String>,
    pub rules: Vec<DefaultRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultRule {
    #[allow(dead_code)]
    #[serde(default)]
    why: Option<String>,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub fail: Vec<String>,
    #[serde(default)]
    pub errno: Option<u32>,
    #[serde(default)]
    pub any_of: Vec<String>,
    #[serde(default)]
    pub with_cap: Option<String>,
    #[serde(default)]
    pub without_cap: Option<String>,
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// The embedded data, parsed and checked once.
pub(super) fn default_data() -> Result<&'static DefaultData> {
    static DATA: OnceLock<std::result::Result<DefaultData, String>> = OnceLock::new();
    DATA.get_or_init(|| parse_default_data(DEFAULT_PROFILE_DATA))
        .as_ref()
        .map_err(|e| Error::internal(format!("the built-in seccomp profile is broken: {e}")))
}

fn parse_default_data(text: &str) -> std::result::Result<DefaultData, String> {
    let data: DefaultData = serde_json::from_str(text).map_err(|e| e.to_string())?;
    for (i, rule) in data.rules.iter().enumerate() {
        match (rule.allow.is_empty(), rule.fail.is_empty(), rule.errno) {
            (false, true, None) | (true, false, Some(_)) => {}
            _ => {
                return Err(format!(
                    "rule {i}: give either `allow`, or `fail` with an `errno`"
                ))
            }
        }
        for cap in rule.with_cap.iter().chain(&rule.without_cap) {
            if super::caps::number(cap).is_none() {
                return Err(format!("rule {i}: unknown capability {cap}"));
            }
        }
        for condition in &rule.any_of {
            parse_condition(condition).map_err(|e| format!("rule {i}: {e}"))?;
        }
        if let Some(min) = &rule.min_kernel {
            parse_kernel(min).ok_or_else(|| format!("rule {i}: bad min_kernel {min:?}"))?;
        }
    }
    Ok(data)
}

/// `argN OP VALUE` (OP one of `==`, `!=`, `<`, `<=`, `>`, `>=`) or `argN & MASK == VALUE`; numbers
/// in decimal or `0x` hex.
pub(super) fn parse_condition(text: &str) -> std::result::Result<LinuxSeccompArg, String> {
    let bad = || format!("condition {text:?} is not `argN OP VALUE` or `argN & MASK == VALUE`");
    let words: Vec<&str> = text.split_whitespace().collect();
    let index: usize = words
        .first()
        .and_then(|w| w.strip_prefix("arg"))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n < 6)
        .ok_or_else(bad)?;
    let number = |w: &str| -> std::result::Result<u64, String> {
        match w.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => w.parse(),
        }
        .map_err(|_| bad())
    };
    let (op, value, value_two) = match words[1..] {
        ["&", mask, "==", value] => (
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            number(mask)?,
            Some(number(value)?),
        ),
        [op, value] => {
            let op = match op {
                "==" => LinuxSeccompOperator::ScmpCmpEq,
                "!=" => LinuxSeccompOperator::ScmpCmpNe,
                "<" => LinuxSeccompOperator::ScmpCmpLt,
                "<=" => LinuxSeccompOperator::ScmpCmpLe,
                ">" => LinuxSeccompOperator::ScmpCmpGt,
                ">=" => LinuxSeccompOperator::ScmpCmpGe,
                _ => return Err(bad()),
            };
            (op, number(value)?, None)
        }
        _ => return Err(bad()),
    };
    let arg = seccomp_arg(index, value, value_two, op).map_err(|e| e.to_string())?;
    Ok(arg)
}

fn seccomp_arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> Result<LinuxSeccompArg> {
    let mut builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    if let Some(two) = value_two {
        builder = builder.value_two(two);
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("build seccomp argument: {e}")))
}

fn syscall(
    names: &[String],
    action: LinuxSeccompAction,
    errno: Option<u32>,
    args: Option<Vec<LinuxSeccompArg>>,
) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.to_vec())
        .set_action(action)
        .set_errno_ret(errno)
        .set_args(args);
    s
}

/// Docker's default profile for a container whose bounding set is `caps` (canonical names), on
/// `host`. An architecture the data has no entry for is refused rather than guessed at (the
/// argument filters differ per architecture, e.g. clone's flags on s390).
pub(super) fn default_profile(caps: &[String], host: &Host) -> Result<LinuxSeccomp> {
    let data = default_data()?;
    let arches = data.architectures.get(host.arch).ok_or_else(|| {
        Error::invalid(format!(
            "seccomp: no default profile for architecture {}: use Seccomp::Unconfined or a profile of your own",
            host.arch
        ))
    })?;
    let has = |cap: &String| caps.contains(cap);
    let mut syscalls = vec![syscall(
        &data.allow,
        LinuxSeccompAction::ScmpActAllow,
        None,
        None,
    )];
    for rule in &data.rules {
        if rule.with_cap.as_ref().is_some_and(|c| !has(c))
            || rule.without_cap.as_ref().is_some_and(has)
            || (!rule.arches.is_empty() && !rule.arches.iter().any(|a| a == host.arch))
        {
            continue;
        }
        if let Some(min) = &rule.min_kernel {
            if !kernel_at_least(host, min)? {
                continue;
            }
        }
        let (names, action) = if rule.allow.is_empty() {
            (&rule.fail, LinuxSeccompAction::ScmpActErrno)
        } else {
            (&rule.allow, LinuxSeccompAction::ScmpActAllow)
        };
        if rule.any_of.is_empty() {
            syscalls.push(syscall(names, action, rule.errno, None));
        }
        for condition in &rule.any_of {
            let arg = parse_condition(condition).map_err(Error::internal)?;
            syscalls.push(syscall(names, action, rule.errno, Some(vec![arg])));
        }
    }
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(data.default_errno))
        .set_architectures(Some(arches.clone()))
        .set_flags(None)
        .set_listener_path(None)
        .set_listener_metadata(None)
        .set_syscalls(Some(syscalls));
    Ok(profile)
}

// ---------------------------------------------------------------------------------------------
// Docker-format profiles (`docker run --security-opt seccomp=profile.json`).

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<DockerArchMap>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<PathBuf>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<DockerSyscall>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<DockerArg>>,
    #[serde(default)]
    includes: Option<DockerFilter>,
    #[serde(default)]
    excludes: Option<DockerFilter>,
}

/// Go's decoder leaves a missing `value` at 0; so does this.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArg {
    index: usize,
    #[serde(default)]
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerFilter {
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Docker's name for the host architecture in `includes.arches` (libseccomp's, via Go's GOARCH).
fn docker_arch(rust_arch: &str) -> Option<&'static str> {
    Some(match rust_arch {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loongarch64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        _ => return None,
    })
}

/// The seccomp architecture `archMap` entries are matched against.
fn native_scmp_arch(rust_arch: &str) -> Option<Arch> {
    Some(match rust_arch {
        "x86_64" => Arch::ScmpArchX86_64,
        "x86" => Arch::ScmpArchX86,
        "aarch64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loongarch64" => Arch::ScmpArchLoongarch64,
        "powerpc64" if cfg!(target_endian = "little") => Arch::ScmpArchPpc64le,
        "powerpc64" => Arch::ScmpArchPpc64,
        _ => return None,
    })
}

/// Parse a docker-format profile and resolve it for a container with bounding set `caps` on
/// `host`, as moby's `seccomp.LoadProfile` does: `archMap` picks the native architecture and its
/// sub-architectures, `includes`/`excludes` keep or drop each entry by architecture, capability and
/// kernel version. `origin` names the profile in errors (a file path, or "profile").
pub(super) fn load_docker_profile(
    origin: &str,
    json: &str,
    caps: &[String],
    host: &Host,
) -> Result<LinuxSeccomp> {
    let invalid = |what: String| Error::invalid(format!("seccomp {origin}: {what}"));
    let profile: DockerProfile =
        serde_json::from_str(json).map_err(|e| invalid(format!("malformed profile: {e}")))?;
    let syscalls_in = profile.syscalls.unwrap_or_default();
    let Some(default_action) = profile.default_action else {
        return Err(invalid(if syscalls_in.is_empty() {
            "the profile is empty (no defaultAction, no syscalls); use Seccomp::Unconfined to run without a filter".to_string()
        } else {
            "the profile has no defaultAction".to_string()
        }));
    };
    let mut architectures = profile.architectures.unwrap_or_default();
    if let Some(arch_map) = &profile.arch_map {
        if !architectures.is_empty() && !arch_map.is_empty() {
            return Err(invalid(
                "both 'architectures' and 'archMap' are given; use one of them".to_string(),
            ));
        }
        if let Some(native) = native_scmp_arch(host.arch) {
            if let Some(entry) = arch_map.iter().find(|m| m.architecture == native) {
                architectures.push(entry.architecture);
                architectures.extend(entry.sub_architectures.iter().flatten().copied());
            }
        }
    }
    let arch = docker_arch(host.arch).unwrap_or(host.arch);
    let mut syscalls = Vec::new();
    for (i, call) in syscalls_in.into_iter().enumerate() {
        let names = match (call.name, call.names) {
            (Some(_), Some(names)) if !names.is_empty() => {
                return Err(invalid(format!(
                    "syscalls[{i}] gives both 'name' and 'names'; use one of them"
                )))
            }
            (Some(name), _) => vec![name],
            (None, Some(names)) => names,
            (None, None) => Vec::new(),
        };
        if names.is_empty() || names.iter().any(|n| n.is_empty()) {
            return Err(invalid(format!("syscalls[{i}] names no syscall")));
        }
        if let Some(ex) = &call.excludes {
            if ex
                .arches
                .as_ref()
                .is_some_and(|a| a.iter().any(|a| a == arch))
                || ex
                    .caps
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| caps.contains(c)))
            {
                continue;
            }
            if let Some(min) = &ex.min_kernel {
                if kernel_at_least(host, min).map_err(|e| invalid(format!("syscalls[{i}]: {e}")))? {
                    continue;
                }
            }
        }
        if let Some(inc) = &call.includes {
            if inc
                .arches
                .as_ref()
                .is_some_and(|a| !a.is_empty() && !a.iter().any(|a| a == arch))
                || inc
                    .caps
                    .as_ref()
                    .is_some_and(|c| !c.iter().all(|c| caps.contains(c)))
            {
                continue;
            }
            if let Some(min) = &inc.min_kernel {
                if !kernel_at_least(host, min)
                    .map_err(|e| invalid(format!("syscalls[{i}]: {e}")))?
                {
                    continue;
                }
            }
        }
        let args = match call.args {
            None => None,
            Some(args) => Some(
                args.into_iter()
                    .map(|a| seccomp_arg(a.index, a.value, a.value_two, a.op))
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        syscalls.push(syscall(&names, call.action, call.errno_ret, args));
    }
    let mut out = LinuxSeccomp::default();
    out.set_default_action(default_action)
        .set_default_errno_ret(profile.default_errno_ret)
        .set_architectures((!architectures.is_empty()).then_some(architectures))
        .set_flags(profile.flags)
        .set_listener_path(profile.listener_path)
        .set_listener_metadata(profile.listener_metadata)
        .set_syscalls((!syscalls.is_empty()).then_some(syscalls));
    Ok(out)
}

/// The filter a container gets, or `None` for none.
pub(super) fn resolve(
    seccomp: &Seccomp,
    privileged: bool,
    caps: &[String],
    host: &Host,
) -> Result<Option<LinuxSeccomp>> {
    Ok(match seccomp {
        Seccomp::Unconfined => None,
        // Docker: a privileged container runs unconfined unless given a profile of its own.
        Seccomp::Default if privileged => None,
        Seccomp::Default => Some(default_profile(caps, host)?),
        Seccomp::Json(json) => Some(load_docker_profile("profile", json, caps, host)?),
        Seccomp::File(path) => {
            let origin = path.display().to_string();
            let json = std::fs::read_to_string(path).map_err(|e| {
                Error::invalid(format!("seccomp: cannot read profile {origin}: {e}")).with_source(e)
            })?;
            Some(load_docker_profile(&origin, &json, caps, host)?)
        }
        Seccomp::Oci(profile) => Some((**profile).clone()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use super::*;
    use crate::error::ErrorKind;
    use crate::spec::caps::DEFAULT_CAPABILITIES;

    const X86_64: Host = Host {
        arch: "x86_64",
        kernel: Some((6, 1, 0)),
    };

    fn default_caps() -> Vec<String> {
        DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    }

    fn with(extra: &str) -> Vec<String> {
        let mut caps = default_caps();
        caps.push(extra.to_string());
        caps
    }

    /// Every (syscall, action, errno, args) the profile has, one per name.
    fn entries(profile: &LinuxSeccomp) -> Vec<(String, LinuxSeccompAction, Option<u32>, String)> {
        profile
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|s| {
                let args = serde_json::to_string(s.args()).unwrap();
                s.names()
                    .iter()
                    .map(move |n| (n.clone(), s.action(), s.errno_ret(), args.clone()))
            })
            .collect()
    }

    /// Names allowed without any argument condition.
    fn plainly_allowed(profile: &LinuxSeccomp) -> HashSet<String> {
        entries(profile)
            .into_iter()
            .filter(|(_, action, _, args)| {
                *action == LinuxSeccompAction::ScmpActAllow && args == "null"
            })
            .map(|(n, ..)| n)
            .collect()
    }

    #[test]
    fn the_data_file_parses_and_lists_dockers_allow_list() {
        let data = default_data().unwrap();
        assert_eq!(data.default_errno, libc::EPERM as u32);
        assert_eq!(data.allow.len(), 361);
        let allow: HashSet<&str> = data.allow.iter().map(String::as_str).collect();
        assert_eq!(allow.len(), data.allow.len(), "no duplicates");
        for name in [
            "read",
            "write",
            "openat",
            "openat2",
            "close",
            "execve",
            "exit_group",
            "futex",
            "rseq",
            "statx",
            "close_range",
            "pidfd_open",
            "landlock_create_ruleset",
            "mseal",
            "io_setup",
            "name_to_handle_at",
            "socketcall",
            "chown32",
            "_llseek",
        ] {
            assert!(allow.contains(name), "{name} must be allowed");
        }
        // Denied unless a capability or condition allows them: kernel keyrings, kexec, io_uring,
        // namespaces, mounts, modules, clock setting, userfaultfd, ...
        for name in [
            "kexec_load",
            "kexec_file_load",
            "keyctl",
            "add_key",
            "request_key",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "unshare",
            "setns",
            "mount",
            "umount2",
            "clone",
            "clone3",
            "socket",
            "personality",
            "ptrace",
            "init_module",
            "reboot",
            "swapon",
            "swapoff",
            "userfaultfd",
            "settimeofday",
            "chroot",
            "bpf",
            "perf_event_open",
            "open_by_handle_at",
            "nfsservctl",
            "uselib",
            "vm86",
            "pivot_root",
        ] {
            assert!(
                !allow.contains(name),
                "{name} must not be in the allow list"
            );
        }
    }

    #[test]
    fn the_clone_mask_is_every_namespace_flag() {
        let flags = libc::CLONE_NEWNS
            | libc::CLONE_NEWCGROUP
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET;
        assert_eq!(flags as u64, 0x7e02_0000);
        assert_eq!(flags as u64, 2_114_060_288);
        let profile = default_profile(&default_caps(), &X86_64).unwrap();
        let clone: Vec<_> = entries(&profile)
            .into_iter()
            .filter(|(n, ..)| n == "clone")
            .collect();
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0].3,
            r#"[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]"#
        );
    }

    #[test]
    fn default_profile_for_dockers_default_caps() {
        let profile = default_profile(&default_caps(), &X86_64).unwrap();
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(profile.default_errno_ret(), Some(1));
        assert_eq!(
            profile.architectures().clone().unwrap(),
            [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        let all = entries(&profile);
        // The allow list, then docker's rules in docker's order for amd64 with the default caps.
        let rules: Vec<(String, String)> = all[361..]
            .iter()
            .map(|(n, a, e, args)| (n.clone(), format!("{a:?} {e:?} {args}")))
            .collect();
        let names: Vec<&str> = rules.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "process_vm_readv",
                "process_vm_writev",
                "ptrace",
                "socket",
                "socket",
                "socket",
                "personality",
                "personality",
                "personality",
                "personality",
                "personality",
                "arch_prctl",
                "modify_ldt",
                "clone",
                "clone3",
                "chroot",
            ]
        );
        assert!(
            rules[3].1.contains(r#""value":38,"op":"SCMP_CMP_LT""#),
            "{rules:?}"
        );
        assert!(rules[4].1.contains(r#""value":39,"op":"SCMP_CMP_EQ""#));
        assert!(rules[5].1.contains(r#""value":40,"op":"SCMP_CMP_GT""#));
        let personas: Vec<&str> = rules[6..11].iter().map(|(_, r)| r.as_str()).collect();
        for (persona, value) in personas
            .iter()
            .zip([0u64, 8, 0x20000, 0x20008, 0xffff_ffff])
        {
            assert!(
                persona.contains(&format!(r#""value":{value},"op":"SCMP_CMP_EQ""#)),
                "{persona}"
            );
        }
        assert_eq!(rules[14].1, "ScmpActErrno Some(38) null");
        let allowed = plainly_allowed(&profile);
        assert!(allowed.contains("chroot") && !allowed.contains("unshare"));
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let admin = default_profile(&with("CAP_SYS_ADMIN"), &X86_64).unwrap();
        let allowed = plainly_allowed(&admin);
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "bpf",
            "sethostname",
        ] {
            assert!(allowed.contains(name), "{name}");
        }
        // With CAP_SYS_ADMIN clone is unconditional and clone3 no longer fails with ENOSYS.
        let all = entries(&admin);
        assert!(!all.iter().any(|(n, _, e, _)| n == "clone3" && e.is_some()));
        assert_eq!(all.iter().filter(|(n, ..)| n == "clone").count(), 1);

        for (cap, names) in [
            // ptrace itself is allowed from kernel 4.8 on, whatever the capabilities.
            (
                "CAP_SYS_PTRACE",
                &["kcmp", "pidfd_getfd", "process_madvise"][..],
            ),
            (
                "CAP_SYS_MODULE",
                &["init_module", "finit_module", "delete_module"],
            ),
            ("CAP_SYS_BOOT", &["reboot"]),
            ("CAP_SYS_TIME", &["settimeofday", "clock_settime", "stime"]),
            ("CAP_SYS_NICE", &["mbind", "set_mempolicy", "get_mempolicy"]),
            ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
            ("CAP_SYS_PACCT", &["acct"]),
            ("CAP_SYSLOG", &["syslog"]),
            ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
            ("CAP_BPF", &["bpf"]),
            ("CAP_PERFMON", &["perf_event_open"]),
            ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
        ] {
            let without = plainly_allowed(&default_profile(&default_caps(), &X86_64).unwrap());
            let with_cap = plainly_allowed(&default_profile(&with(cap), &X86_64).unwrap());
            for name in names {
                assert!(!without.contains(*name), "{name} without {cap}");
                assert!(with_cap.contains(*name), "{name} with {cap}");
            }
            assert!(!with_cap.contains("kexec_load"));
        }
        // Dropping CAP_SYS_CHROOT takes chroot away.
        let no_chroot: Vec<String> = default_caps()
            .into_iter()
            .filter(|c| c != "CAP_SYS_CHROOT")
            .collect();
        assert!(
            !plainly_allowed(&default_profile(&no_chroot, &X86_64).unwrap()).contains("chroot")
        );
    }

    #[test]
    fn architecture_and_kernel_conditions() {
        let arm = Host {
            arch: "aarch64",
            kernel: Some((6, 1, 0)),
        };
        let profile = default_profile(&default_caps(), &arm).unwrap();
        assert_eq!(
            profile.architectures().clone().unwrap(),
            [Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        let allowed = plainly_allowed(&profile);
        assert!(allowed.contains("set_tls") && !allowed.contains("arch_prctl"));
        assert!(!allowed.contains("modify_ldt"));

        let old = Host {
            arch: "x86_64",
            kernel: Some((4, 4, 0)),
        };
        assert!(
            !plainly_allowed(&default_profile(&default_caps(), &old).unwrap()).contains("ptrace")
        );
        assert!(
            plainly_allowed(&default_profile(&default_caps(), &X86_64).unwrap()).contains("ptrace")
        );

        let s390 = Host {
            arch: "s390x",
            kernel: None,
        };
        let err = default_profile(&default_caps(), &s390).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err
            .to_string()
            .contains("no default profile for architecture s390x"));

        assert_eq!(parse_kernel("6.18.44-fc-v857"), Some((6, 18, 44)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8, 0)));
        assert_eq!(parse_kernel("5"), Some((5, 0, 0)));
        assert_eq!(parse_kernel("x"), None);
    }

    #[test]
    fn conditions_parse() {
        let json = |s: &str| serde_json::to_string(&parse_condition(s).unwrap()).unwrap();
        assert_eq!(
            json("arg0 < 38"),
            r#"{"index":0,"value":38,"op":"SCMP_CMP_LT"}"#
        );
        assert_eq!(
            json("arg2 != 0x10"),
            r#"{"index":2,"value":16,"op":"SCMP_CMP_NE"}"#
        );
        assert_eq!(
            json("arg1 & 0xff == 3"),
            r#"{"index":1,"value":255,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"}"#
        );
        for bad in [
            "",
            "arg6 == 1",
            "argx == 1",
            "arg0 =< 1",
            "arg0 == x",
            "arg0 & 1 != 0",
            "arg0",
        ] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
        // A rule with neither or both actions is caught when the data is read.
        assert!(parse_default_data(
            r#"{"about":[],"default_errno":1,"architectures":{},"allow":[],"rules":[{"allow":["a"],"fail":["b"],"errno":1}]}"#
        )
        .is_err());
        assert!(parse_default_data(
            r#"{"about":[],"default_errno":1,"architectures":{},"allow":[],"rules":[{"allow":["a"],"with_cap":"CAP_NOPE"}]}"#
        )
        .is_err());
        assert!(parse_default_data(
            r#"{"about":[],"default_errno":1,"architectures":{},"allow":[],"typo":1,"rules":[]}"#
        )
        .is_err());
    }

    const DOCKER_STYLE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "comment": "x"}
        ]
    }"#;

    #[test]
    fn docker_format_profiles_resolve_like_docker() {
        let p = load_docker_profile("p", DOCKER_STYLE, &default_caps(), &X86_64).unwrap();
        assert_eq!(
            p.architectures().clone().unwrap(),
            [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        let names: Vec<String> = entries(&p).into_iter().map(|(n, ..)| n).collect();
        assert_eq!(
            names,
            [
                "read",
                "write",
                "exit_group",
                "arch_prctl",
                "clone",
                "ptrace",
                "getpid"
            ]
        );
        let admin =
            load_docker_profile("p", DOCKER_STYLE, &with("CAP_SYS_ADMIN"), &X86_64).unwrap();
        let names: Vec<String> = entries(&admin).into_iter().map(|(n, ..)| n).collect();
        assert!(names.contains(&"mount".to_string()) && !names.contains(&"clone".to_string()));
        let getpid = entries(&p).pop().unwrap();
        assert_eq!(
            (getpid.1, getpid.2),
            (LinuxSeccompAction::ScmpActErrno, Some(38))
        );

        // Plain OCI form (runc's): architectures and names, no conditions.
        let oci = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                      "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let p = load_docker_profile("p", oci, &[], &X86_64).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(p.syscalls().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn malformed_profiles_are_clear_errors() {
        for (json, needle) in [
            (
                "{not json",
                "seccomp f.json: malformed profile: key must be a string at line 1",
            ),
            ("42", "malformed profile: invalid type: integer `42`"),
            ("{}", "the profile is empty"),
            (
                r#"{"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
                "no defaultAction",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_NOPE"}"#,
                "unknown variant `SCMP_ACT_NOPE`",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
                "both 'architectures' and 'archMap'",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
                "syscalls[0] gives both 'name' and 'names'",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#,
                "syscalls[0] names no syscall",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#,
                "unknown variant `SCMP_CMP_ABOUT`",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"new"}}]}"#,
                "syscalls[0]: minKernel \"new\" is not a kernel version",
            ),
        ] {
            let err = load_docker_profile("f.json", json, &[], &X86_64).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{json}");
            assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
            assert!(err.to_string().starts_with("seccomp f.json: "), "{err}");
            assert!(!err.to_string().contains('\n'), "one line: {err}");
        }
    }

    /// The built-in profile against docker's own file, resolved by this module as moby does, for
    /// several capability sets, architectures and kernels. Docker's file is not part of this
    /// repository: point LCD_DOCKER_SECCOMP_PROFILE at moby's profiles/seccomp/default.json.
    #[test]
    fn same_effect_as_dockers_file() {
        let Some(path) = std::env::var_os("LCD_DOCKER_SECCOMP_PROFILE") else {
            eprintln!("skipped: set LCD_DOCKER_SECCOMP_PROFILE to moby's default.json");
            return;
        };
        let docker = std::fs::read_to_string(path).unwrap();
        let all: Vec<String> = crate::spec::caps::CAPABILITIES
            .iter()
            .map(|(_, n, _)| n.to_string())
            .collect();
        let cap_sets = [
            default_caps(),
            with("CAP_SYS_ADMIN"),
            with("CAP_SYS_PTRACE"),
            with("CAP_BPF"),
            all,
            Vec::new(),
        ];
        for arch in ["x86_64", "aarch64"] {
            for kernel in [Some((6, 18, 0)), Some((4, 4, 0))] {
                let host = Host { arch, kernel };
                for caps in &cap_sets {
                    let ours = default_profile(caps, &host).unwrap();
                    let theirs = load_docker_profile("docker", &docker, caps, &host).unwrap();
                    assert_eq!(ours.architectures(), theirs.architectures(), "{arch}");
                    assert_eq!(ours.default_action(), theirs.default_action());
                    assert_eq!(ours.default_errno_ret(), theirs.default_errno_ret());
                    // A missing valueTwo is 0 to the runtime.
                    let normal = |p: &LinuxSeccomp| {
                        let mut e: Vec<String> = entries(p)
                            .into_iter()
                            .map(|e| format!("{e:?}").replace(r#",\"valueTwo\":0"#, ""))
                            .collect();
                        e.sort();
                        e
                    };
                    let (a, b) = (normal(&ours), normal(&theirs));
                    let only_ours: Vec<_> = a.iter().filter(|e| !b.contains(e)).collect();
                    let only_theirs: Vec<_> = b.iter().filter(|e| !a.contains(e)).collect();
                    assert_eq!(a, b, "{arch} {kernel:?} {caps:?}: only ours {only_ours:?}, only docker's {only_theirs:?}");
                }
            }
        }
    }

    #[test]
    fn resolve_follows_dockers_privileged_rule() {
        let caps = default_caps();
        assert!(resolve(&Seccomp::Default, true, &caps, &X86_64)
            .unwrap()
            .is_none());
        assert!(resolve(&Seccomp::Unconfined, false, &caps, &X86_64)
            .unwrap()
            .is_none());
        assert!(resolve(&Seccomp::Default, false, &caps, &X86_64)
            .unwrap()
            .is_some());
        let json = Seccomp::Json(DOCKER_STYLE.to_string());
        assert!(resolve(&json, true, &caps, &X86_64).unwrap().is_some());
        let err = resolve(
            &Seccomp::File("/nonexistent/p.json".into()),
            false,
            &caps,
            &X86_64,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err
            .to_string()
            .starts_with("seccomp: cannot read profile /nonexistent/p.json"));
    }
}
