//! Bind and tmpfs mounts a container gets besides the defaults, with docker's options: a bind is
//! `rbind` (plus `ro`) with `rprivate` propagation unless asked otherwise, and a `shared` or
//! `slave` propagation also sets the root's (`linux.rootfsPropagation`), as docker does; a tmpfs
//! is `noexec,nosuid,nodev,rprivate` merged with the caller's options (`exec` undoes `noexec`).

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use super::defaults::strings;
use crate::error::{Error, Result};

/// The propagation of a bind mount (`docker run -v SRC:DST:PROPAGATION`, `bind-propagation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// `private`.
    Private,
    /// `rprivate`: docker's default.
    #[default]
    RPrivate,
    /// `shared`: the source must be on a shared mount; sets the root's propagation to `shared`.
    Shared,
    /// `rshared`: as `shared`, recursively.
    RShared,
    /// `slave`: the source must be on a shared or slave mount; the root becomes `rslave`.
    Slave,
    /// `rslave`: as `slave`, recursively.
    RSlave,
}

impl Propagation {
    /// Every mode, for parsers.
    pub const ALL: [Propagation; 6] = [
        Propagation::Private,
        Propagation::RPrivate,
        Propagation::Shared,
        Propagation::RShared,
        Propagation::Slave,
        Propagation::RSlave,
    ];

    /// The mount option runc takes (`rprivate`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::RPrivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::RShared => "rshared",
            Propagation::Slave => "slave",
            Propagation::RSlave => "rslave",
        }
    }

    /// The mode a mount option names, if it names one.
    pub fn from_option(option: &str) -> Option<Propagation> {
        Propagation::ALL.into_iter().find(|p| p.as_str() == option)
    }

    fn is_shared(self) -> bool {
        matches!(self, Propagation::Shared | Propagation::RShared)
    }

    fn is_slave(self) -> bool {
        matches!(self, Propagation::Slave | Propagation::RSlave)
    }
}

/// How a host path is bind-mounted ([`SpecBuilder::bind_mount`](super::SpecBuilder::bind_mount)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BindOptions {
    /// Mount it read-only (`ro`).
    pub readonly: bool,
    /// Its propagation (default `rprivate`).
    pub propagation: Propagation,
}

impl BindOptions {
    /// Read-only, `rprivate`.
    pub fn read_only() -> Self {
        BindOptions {
            readonly: true,
            ..BindOptions::default()
        }
    }
}

/// A mount added to the builder, checked by `build`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ExtraMount {
    Bind {
        source: PathBuf,
        destination: String,
        options: BindOptions,
    },
    Tmpfs {
        destination: String,
        options: Vec<String>,
    },
}

impl ExtraMount {
    fn destination(&self) -> &str {
        match self {
            ExtraMount::Bind { destination, .. } | ExtraMount::Tmpfs { destination, .. } => {
                destination
            }
        }
    }
}

/// The options docker gives every tmpfs before the caller's.
const TMPFS_DEFAULTS: [&str; 4] = ["noexec", "nosuid", "nodev", "rprivate"];

/// Flag options whose opposite a later option may name (`exec` after `noexec`).
const OPPOSITES: [(&str, &str); 8] = [
    ("exec", "noexec"),
    ("suid", "nosuid"),
    ("dev", "nodev"),
    ("rw", "ro"),
    ("atime", "noatime"),
    ("diratime", "nodiratime"),
    ("sync", "async"),
    ("relatime", "norelatime"),
];

/// A mount point as docker takes it: absolute, cleaned (`/a/./b/` is `/a/b`, `..` resolved
/// lexically), never `/`.
pub fn clean_mount_point(path: &str) -> Result<String> {
    if path.contains('\0') {
        return Err(Error::invalid(format!(
            "invalid mount path: {path:?} contains a NUL byte"
        )));
    }
    if !path.starts_with('/') {
        return Err(Error::invalid(format!(
            "invalid mount path: '{path}' mount path must be absolute"
        )));
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid(
            "invalid specification: destination can't be '/'",
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The tmpfs options: docker's defaults, then `extra`, a later flag replacing its opposite and a
/// later `key=value` an earlier one of the same key.
fn merge_tmpfs_options(extra: &[String]) -> Result<Vec<String>> {
    let mut merged: Vec<String> = strings(&TMPFS_DEFAULTS);
    for option in extra {
        if option.is_empty() || option.contains(',') {
            return Err(Error::invalid(format!(
                "tmpfs: invalid option {option:?}: give options one at a time, e.g. size=64m"
            )));
        }
        if let Some((key, _)) = option.split_once('=') {
            merged.retain(|o| o.split_once('=').map(|(k, _)| k) != Some(key));
        } else if let Some(p) = Propagation::from_option(option) {
            merged.retain(|o| Propagation::from_option(o).is_none() || o == p.as_str());
        } else {
            for (a, b) in OPPOSITES {
                if option == a || option == b {
                    merged.retain(|o| o != a && o != b);
                }
            }
        }
        if !merged.contains(option) {
            merged.push(option.clone());
        }
    }
    Ok(merged)
}

/// The propagation of the mount `path` is on, from `/proc/self/mountinfo`: `(shared, slave)`.
fn host_propagation(path: &Path) -> (bool, bool) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best: Option<(usize, bool, bool)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4) else { continue };
        let point = point.replace("\\040", " ");
        if !path.starts_with(&point) {
            continue;
        }
        let optional = fields.iter().skip(6).take_while(|f| **f != "-");
        let (mut shared, mut slave) = (false, false);
        for field in optional {
            shared |= field.starts_with("shared:");
            slave |= field.starts_with("master:");
        }
        // The last, longest match is the mount on top.
        if best.is_none_or(|(len, _, _)| point.len() >= len) {
            best = Some((point.len(), shared, slave));
        }
    }
    best.map(|(_, shared, slave)| (shared, slave))
        .unwrap_or((false, false))
}

/// The mount point of `path` (for docker's message on a propagation it cannot have).
fn mount_point_of(path: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4).map(|p| p.replace("\\040", " ")))
        .filter(|p| path.starts_with(p))
        .max_by_key(String::len)
        .unwrap_or_else(|| "/".to_string())
}

/// Check `extra` and append it to `mounts` (the defaults): a user mount at a default's mount point
/// replaces it (`--tmpfs /dev/shm`), parents come before children. Returns the root's propagation
/// when a bind asks for `shared` or `slave`.
pub(super) fn apply(mounts: &mut Vec<Mount>, extra: &[ExtraMount]) -> Result<Option<String>> {
    let mut seen: Vec<String> = Vec::new();
    let mut built: Vec<(String, Mount)> = Vec::new();
    let mut root_propagation: Option<&str> = None;
    for mount in extra {
        let destination = clean_mount_point(mount.destination())?;
        if seen.contains(&destination) {
            return Err(Error::invalid(format!(
                "duplicate mount point: {destination}"
            )));
        }
        seen.push(destination.clone());
        let (typ, source, options) = match mount {
            ExtraMount::Bind {
                source, options, ..
            } => {
                if !source.is_absolute() {
                    return Err(Error::invalid(format!(
                        "invalid mount config for type \"bind\": bind source path must be absolute: {}",
                        source.display()
                    )));
                }
                if !source.exists() {
                    return Err(Error::invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        source.display()
                    )));
                }
                let propagation = options.propagation;
                if propagation.is_shared() || propagation.is_slave() {
                    let (shared, slave) = host_propagation(source);
                    let ok = shared || (propagation.is_slave() && slave);
                    if !ok {
                        let kind = if propagation.is_shared() {
                            "a shared mount"
                        } else {
                            "a shared or slave mount"
                        };
                        return Err(Error::invalid(format!(
                            "path {} is mounted on {} but it is not {kind}",
                            source.display(),
                            mount_point_of(source)
                        )));
                    }
                    if propagation.is_shared() {
                        root_propagation = Some("shared");
                    } else if root_propagation.is_none() {
                        root_propagation = Some("rslave");
                    }
                }
                let mut opts = vec!["rbind".to_string()];
                if options.readonly {
                    opts.push("ro".to_string());
                }
                opts.push(propagation.as_str().to_string());
                ("bind", source.clone(), opts)
            }
            ExtraMount::Tmpfs { options, .. } => (
                "tmpfs",
                PathBuf::from("tmpfs"),
                merge_tmpfs_options(options)?,
            ),
        };
        let mut m = Mount::default();
        m.set_destination(PathBuf::from(&destination))
            .set_typ(Some(typ.to_string()))
            .set_source(Some(source))
            .set_options(Some(options))
            .set_uid_mappings(None)
            .set_gid_mappings(None);
        built.push((destination, m));
    }
    mounts.retain(|m| {
        !built
            .iter()
            .any(|(destination, _)| m.destination() == Path::new(destination))
    });
    // Parents before children: a bind at /a/b must not be hidden by a later one at /a.
    built.sort_by_key(|(destination, _)| destination.matches('/').count());
    mounts.extend(built.into_iter().map(|(_, m)| m));
    Ok(root_propagation.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_cleaned_and_checked() {
        assert_eq!(clean_mount_point("/a/./b/").unwrap(), "/a/b");
        assert_eq!(clean_mount_point("/a/../b").unwrap(), "/b");
        assert_eq!(clean_mount_point("//data").unwrap(), "/data");
        let e = clean_mount_point("c").unwrap_err().to_string();
        assert!(e.contains("'c' mount path must be absolute"), "{e}");
        let e = clean_mount_point("/").unwrap_err().to_string();
        assert!(e.contains("destination can't be '/'"), "{e}");
        assert!(clean_mount_point("/a/..").is_err());
        assert!(clean_mount_point("/a\0").is_err());
    }

    #[test]
    fn tmpfs_options_merge_as_dockers() {
        let merged = merge_tmpfs_options(&["size=1m".into(), "exec".into()]).unwrap();
        assert_eq!(merged, ["nosuid", "nodev", "rprivate", "size=1m", "exec"]);
        let merged = merge_tmpfs_options(&["size=1m".into(), "size=2m".into()]).unwrap();
        assert_eq!(merged, ["noexec", "nosuid", "nodev", "rprivate", "size=2m"]);
        let merged = merge_tmpfs_options(&["shared".into()]).unwrap();
        assert_eq!(merged, ["noexec", "nosuid", "nodev", "shared"]);
        assert!(merge_tmpfs_options(&["".into()]).is_err());
        assert!(merge_tmpfs_options(&["a,b".into()]).is_err());
    }

    fn mount_at<'a>(spec: &'a oci_spec::runtime::Spec, destination: &str) -> &'a Mount {
        let mounts = spec.mounts().as_ref().unwrap();
        let found: Vec<_> = mounts
            .iter()
            .filter(|m| m.destination() == Path::new(destination))
            .collect();
        assert_eq!(found.len(), 1, "{destination} in {mounts:?}");
        found[0]
    }

    #[test]
    fn binds_and_tmpfs_land_in_the_spec_as_dockers() {
        let host = std::env::temp_dir();
        let spec = crate::spec::SpecBuilder::on_snapshot()
            .bind_mount(&host, "/data/", BindOptions::default())
            .bind_mount(&host, "/data/ro", BindOptions::read_only())
            .tmpfs("/run", ["size=1m", "exec"])
            .tmpfs("/dev/shm", ["size=2m"])
            .build()
            .unwrap();
        let data = mount_at(&spec, "/data");
        assert_eq!(data.typ().as_deref(), Some("bind"));
        assert_eq!(data.source().as_deref(), Some(host.as_path()));
        assert_eq!(data.options().clone().unwrap(), ["rbind", "rprivate"]);
        let ro = mount_at(&spec, "/data/ro");
        assert_eq!(ro.options().clone().unwrap(), ["rbind", "ro", "rprivate"]);
        let run = mount_at(&spec, "/run");
        assert_eq!(run.typ().as_deref(), Some("tmpfs"));
        assert_eq!(
            run.options().clone().unwrap(),
            ["nosuid", "nodev", "rprivate", "size=1m", "exec"]
        );
        // The user's /dev/shm replaces the default one.
        let shm = mount_at(&spec, "/dev/shm");
        assert_eq!(shm.source().as_deref(), Some(Path::new("tmpfs")));
        // The parent is mounted before the child.
        let order: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().clone())
            .collect();
        let pos = |p: &str| order.iter().position(|d| d == Path::new(p)).unwrap();
        assert!(pos("/data") < pos("/data/ro"));
        assert_eq!(spec.linux().as_ref().unwrap().rootfs_propagation(), &None);
    }

    #[test]
    fn bad_mounts_are_refused() {
        let host = std::env::temp_dir();
        let build = |b: crate::spec::SpecBuilder| b.build().unwrap_err().message().to_string();
        let b = crate::spec::SpecBuilder::on_snapshot()
            .bind_mount(&host, "/d", BindOptions::default())
            .tmpfs("/d/", ["size=1m"]);
        assert_eq!(build(b), "duplicate mount point: /d");
        let b = crate::spec::SpecBuilder::on_snapshot().bind_mount(
            "/nonexistent/lcd-test",
            "/d",
            BindOptions::default(),
        );
        assert!(build(b).contains("bind source path does not exist: /nonexistent/lcd-test"));
        let b =
            crate::spec::SpecBuilder::on_snapshot().bind_mount("rel", "/d", BindOptions::default());
        assert!(build(b).contains("must be absolute"));
        let b = crate::spec::SpecBuilder::on_snapshot().tmpfs("d", Vec::<String>::new());
        assert!(build(b).contains("mount path must be absolute"));
    }

    #[test]
    fn shared_propagation_sets_the_roots_when_the_host_allows_it() {
        let host = std::env::temp_dir();
        let (shared, _) = host_propagation(&host);
        let result = crate::spec::SpecBuilder::on_snapshot()
            .bind_mount(
                &host,
                "/d",
                BindOptions {
                    readonly: false,
                    propagation: Propagation::RShared,
                },
            )
            .build();
        if shared {
            let spec = result.unwrap();
            assert_eq!(
                spec.linux()
                    .as_ref()
                    .unwrap()
                    .rootfs_propagation()
                    .as_deref(),
                Some("shared")
            );
            assert_eq!(
                mount_at(&spec, "/d").options().clone().unwrap(),
                ["rbind", "rshared"]
            );
        } else {
            let e = result.unwrap_err().message().to_string();
            assert!(e.contains("but it is not a shared mount"), "{e}");
        }
    }
}
