//! docker's three ways of asking for a mount, parsed into one [`MountRequest`]: `-v`
//! (`SRC:DST[:MODES]`, `NAME:DST`, `DST`), `--mount` (`type=bind,source=,target=,readonly,...`) and
//! `--tmpfs DST[:OPTIONS]`. Each error is one line in docker's words, before anything exists. What
//! happens next (creating a missing `-v` source, making and filling a named volume) is the
//! engine's; the builder takes the result through
//! [`SpecBuilder::bind_mount`](super::SpecBuilder::bind_mount) and
//! [`SpecBuilder::tmpfs`](super::SpecBuilder::tmpfs).

use super::mounts::{clean_mount_point, Propagation};
use super::parse::parse_bytes;
use crate::error::{Error, Result};

/// What a mount is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// A host path.
    Bind,
    /// A named or anonymous volume the engine keeps.
    Volume,
    /// A tmpfs.
    Tmpfs,
}

impl MountType {
    /// docker's name for it (`bind`, `volume`, `tmpfs`).
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

/// One mount a user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct MountRequest {
    /// Bind, volume or tmpfs.
    pub kind: MountType,
    /// A bind's host path (absolute) or a volume's name; `None` for an anonymous volume and a tmpfs.
    pub source: Option<String>,
    /// The mount point in the container, cleaned (absolute, never `/`).
    pub target: String,
    /// Read-only.
    pub readonly: bool,
    /// A bind's propagation, when given.
    pub propagation: Option<Propagation>,
    /// A tmpfs's options (`size=...`, `mode=...`, `exec`...), beyond docker's defaults.
    pub tmpfs_options: Vec<String>,
    /// A missing bind source is created (`-v`), not refused (`--mount`), as docker does.
    pub create_source: bool,
    /// Do not fill a new volume with the image's files at the mount point (`nocopy`).
    pub no_copy: bool,
    /// The SELinux relabel asked for (`z` or `Z`); it has no effect without SELinux.
    pub selinux_label: Option<String>,
}

impl MountRequest {
    fn new(kind: MountType, target: String) -> Self {
        MountRequest {
            kind,
            source: None,
            target,
            readonly: false,
            propagation: None,
            tmpfs_options: Vec::new(),
            create_source: false,
            no_copy: false,
            selinux_label: None,
        }
    }
}

/// Whether `name` is a valid local volume name (docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// docker's error for a source that is neither an absolute path nor a volume name.
pub fn check_volume_name(name: &str) -> Result<()> {
    if is_volume_name(name) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

/// `docker run -v`: `DST` (an anonymous volume), `SRC:DST[:MODES]` where SRC is an absolute host
/// path (a bind) or a volume name, MODES comma-separated of `rw`/`ro`, `z`/`Z`, a propagation
/// (binds only), `nocopy` (volumes only).
pub fn parse_volume(spec: &str) -> Result<MountRequest> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() > 3 {
        return Err(Error::invalid(format!(
            "invalid spec: {spec}: too many colons"
        )));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::invalid(format!(
            "invalid spec: {spec}: empty section between colons"
        )));
    }
    let invalid = |e: Error| {
        Error::invalid(format!(
            "invalid volume specification: '{spec}': {}",
            e.message()
        ))
    };
    let (source, target, modes) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, modes] => (Some(*source), *target, Some(*modes)),
        _ => unreachable!("split gives at least one part"),
    };
    let kind = match source {
        Some(s) if s.starts_with('/') => MountType::Bind,
        _ => MountType::Volume,
    };
    let target = clean_mount_point(target).map_err(|e| {
        invalid(Error::invalid(format!(
            "invalid mount config for type \"{}\": {}",
            kind.as_str(),
            e.message()
        )))
    })?;
    let mut request = MountRequest::new(kind, target);
    if let Some(source) = source {
        if kind == MountType::Volume {
            check_volume_name(source)?;
        }
        request.source = Some(source.to_string());
    }
    request.create_source = kind == MountType::Bind;
    if let Some(modes) = modes {
        apply_modes(&mut request, modes)
            .map_err(|_| Error::invalid(format!("invalid mode: {modes}")))?;
    }
    Ok(request)
}

/// The `-v` modes, each kind at most once.
fn apply_modes(request: &mut MountRequest, modes: &str) -> std::result::Result<(), ()> {
    let (mut access, mut label, mut copy) = (false, false, false);
    for mode in modes.split(',') {
        let once = |seen: &mut bool| {
            if std::mem::replace(seen, true) {
                Err(())
            } else {
                Ok(())
            }
        };
        match mode {
            "rw" | "ro" => {
                once(&mut access)?;
                request.readonly = mode == "ro";
            }
            "z" | "Z" => {
                once(&mut label)?;
                request.selinux_label = Some(mode.to_string());
            }
            "nocopy" | "copy" if request.kind == MountType::Volume => {
                once(&mut copy)?;
                request.no_copy = mode == "nocopy";
            }
            other => match Propagation::from_option(other) {
                Some(p) if request.kind == MountType::Bind && request.propagation.is_none() => {
                    request.propagation = Some(p);
                }
                _ => return Err(()),
            },
        }
    }
    Ok(())
}

/// docker's `--mount` keys.
const MOUNT_KEYS: &str = "type, source (src), target (destination, dst), readonly (ro), bind-propagation, volume-nocopy, tmpfs-size, tmpfs-mode";

/// `docker run --mount`: comma-separated `key=value` fields (`type=bind|volume|tmpfs`, default
/// volume; `source`/`src`, `target`/`destination`/`dst`, `readonly`/`ro[=BOOL]`,
/// `bind-propagation=`, `volume-nocopy[=BOOL]`, `tmpfs-size=`, `tmpfs-mode=` octal). A missing
/// bind source is an error later (see [`MountRequest::create_source`]).
pub fn parse_mount(spec: &str) -> Result<MountRequest> {
    let bad = |why: String| {
        Error::invalid(format!(
            "invalid argument {spec:?} for \"--mount\" flag: {why}"
        ))
    };
    let mut kind = "volume".to_string();
    let (mut source, mut target) = (None, None);
    let (mut readonly, mut no_copy) = (false, false);
    let mut propagation = None;
    let (mut size, mut mode) = (None, None);
    let mut prefixed: Vec<&str> = Vec::new();
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let boolean = |value: Option<&str>| match value {
            None => Ok(true),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                _ => Err(bad(format!("invalid value for {key}: {v}"))),
            },
        };
        match (key.as_str(), value) {
            ("readonly" | "ro", v) => readonly = boolean(v)?,
            ("volume-nocopy", v) => {
                no_copy = boolean(v)?;
                prefixed.push("volume-");
            }
            (_, None) => {
                return Err(bad(format!(
                    "invalid field '{field}' must be a key=value pair"
                )))
            }
            ("type", Some(v)) => kind = v.to_string(),
            ("source" | "src", Some(v)) => source = Some(v.to_string()),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v.to_string()),
            ("bind-propagation", Some(v)) => {
                propagation = Some(
                    Propagation::from_option(v)
                        .ok_or_else(|| bad(format!("invalid value for {key}: {v}")))?,
                );
                prefixed.push("bind-");
            }
            ("tmpfs-size", Some(v)) => {
                let bytes = parse_bytes(v)
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| bad(format!("invalid value for {key}: {v}")))?;
                size = Some(format!("size={bytes}"));
                prefixed.push("tmpfs-");
            }
            ("tmpfs-mode", Some(v)) => {
                let bits = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("invalid value for {key}: {v}")))?;
                mode = Some(format!("mode={bits:o}"));
                prefixed.push("tmpfs-");
            }
            ("consistency", Some(_)) => {} // macOS only; docker ignores it on Linux
            (_, Some(_)) => {
                return Err(bad(format!(
                    "unexpected key '{key}' in '{field}' (known: {MOUNT_KEYS})"
                )))
            }
        }
    }
    let Some(target) = target else {
        return Err(bad("target is required".to_string()));
    };
    let kind = match kind.as_str() {
        "bind" => MountType::Bind,
        "volume" => MountType::Volume,
        "tmpfs" => MountType::Tmpfs,
        other => {
            return Err(Error::invalid(format!(
            "invalid mount config for type \"{other}\": mount type unknown (bind, volume or tmpfs)"
        )))
        }
    };
    let own = format!("{}-", kind.as_str());
    if let Some(other) = prefixed.iter().find(|p| **p != own) {
        return Err(bad(format!(
            "cannot mix '{other}*' options with mount type '{}'",
            kind.as_str()
        )));
    }
    let config = |why: String| {
        Error::invalid(format!(
            "invalid mount config for type \"{}\": {why}",
            kind.as_str()
        ))
    };
    let target = clean_mount_point(&target).map_err(|e| config(e.message().to_string()))?;
    let mut request = MountRequest::new(kind, target);
    request.readonly = readonly;
    request.propagation = propagation;
    request.no_copy = no_copy;
    match kind {
        MountType::Bind => match source {
            None => return Err(config("field Source must not be empty".to_string())),
            Some(s) if !s.starts_with('/') => {
                return Err(config(format!(
                    "invalid mount path: '{s}' bind source path must be absolute"
                )))
            }
            Some(s) => request.source = Some(s),
        },
        MountType::Volume => {
            if let Some(name) = &source {
                check_volume_name(name)?;
            }
            request.source = source;
        }
        MountType::Tmpfs => {
            if source.is_some() {
                return Err(config("field Source must not be specified".to_string()));
            }
            request.tmpfs_options = mode.into_iter().chain(size).collect();
        }
    }
    Ok(request)
}

/// `docker run --tmpfs DST[:OPTIONS]`: OPTIONS comma-separated mount options (`size=64m`,
/// `mode=1777`, `exec`...).
pub fn parse_tmpfs(spec: &str) -> Result<MountRequest> {
    let (target, options) = match spec.split_once(':') {
        Some((t, o)) => (t, Some(o)),
        None => (spec, None),
    };
    let target = clean_mount_point(target)?;
    let mut request = MountRequest::new(MountType::Tmpfs, target);
    if let Some(options) = options {
        for option in options.split(',') {
            if option.is_empty() {
                return Err(Error::invalid(format!(
                    "invalid tmpfs options {options:?} for {}: empty option",
                    request.target
                )));
            }
            request.tmpfs_options.push(option.to_string());
        }
    }
    Ok(request)
}

/// docker's check that no two mounts share a mount point.
pub fn check_mount_points(requests: &[MountRequest]) -> Result<()> {
    for (i, request) in requests.iter().enumerate() {
        if requests[..i].iter().any(|r| r.target == request.target) {
            return Err(Error::invalid(format!(
                "duplicate mount point: {}",
                request.target
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<MountRequest>) -> String {
        result.unwrap_err().message().to_string()
    }

    #[test]
    fn dash_v_forms() {
        let r = parse_volume("/srv/data:/data:ro").unwrap();
        assert_eq!(r.kind, MountType::Bind);
        assert_eq!(r.source.as_deref(), Some("/srv/data"));
        assert_eq!(r.target, "/data");
        assert!(r.readonly && r.create_source);
        let r = parse_volume("/srv:/data:rw,z,rshared").unwrap();
        assert!(!r.readonly);
        assert_eq!(r.propagation, Some(Propagation::RShared));
        assert_eq!(r.selinux_label.as_deref(), Some("z"));
        let r = parse_volume("cache:/var/cache:nocopy").unwrap();
        assert_eq!(r.kind, MountType::Volume);
        assert_eq!(r.source.as_deref(), Some("cache"));
        assert!(r.no_copy);
        let r = parse_volume("/anon/").unwrap();
        assert_eq!(
            (r.kind, r.source, r.target.as_str()),
            (MountType::Volume, None, "/anon")
        );
    }

    #[test]
    fn dash_v_errors_are_dockers() {
        assert!(message(parse_volume("/a:/b:/c:/d")).contains("too many colons"));
        assert!(message(parse_volume(":/c")).contains("empty section between colons"));
        assert!(message(parse_volume("/h:")).contains("empty section between colons"));
        let e = message(parse_volume("rel/x:/c"));
        assert!(e.contains("use absolute path"), "{e}");
        assert!(message(parse_volume("./rel:/c")).contains("use absolute path"));
        let e = message(parse_volume("/h:c"));
        assert!(e.contains("'c' mount path must be absolute"), "{e}");
        assert!(message(parse_volume("/h:/")).contains("destination can't be '/'"));
        assert_eq!(message(parse_volume("/h:/c:bogus")), "invalid mode: bogus");
        assert_eq!(message(parse_volume("/h:/c:ro,rw")), "invalid mode: ro,rw");
        assert_eq!(
            message(parse_volume("v1:/c:shared")),
            "invalid mode: shared"
        );
        assert_eq!(
            message(parse_volume("/h:/c:nocopy")),
            "invalid mode: nocopy"
        );
        assert!(parse_volume("relative").is_err());
    }

    #[test]
    fn dash_dash_mount_forms() {
        let r = parse_mount("type=bind,src=/srv,dst=/data,readonly").unwrap();
        assert_eq!(r.kind, MountType::Bind);
        assert!(r.readonly && !r.create_source);
        let r = parse_mount("type=bind,source=/srv,target=/d,ro=false,bind-propagation=rslave")
            .unwrap();
        assert!(!r.readonly);
        assert_eq!(r.propagation, Some(Propagation::RSlave));
        let r = parse_mount("target=/data").unwrap();
        assert_eq!((r.kind, r.source), (MountType::Volume, None));
        let r = parse_mount("type=volume,source=v1,target=/d,volume-nocopy").unwrap();
        assert!(r.no_copy);
        let r = parse_mount("type=tmpfs,target=/t,tmpfs-size=2m,tmpfs-mode=1770").unwrap();
        assert_eq!(r.tmpfs_options, ["mode=1770", "size=2097152"]);
    }

    #[test]
    fn dash_dash_mount_errors_are_dockers() {
        let e = message(parse_mount("type=bind,src=/tmp,dst=/c,bogus=1"));
        assert!(e.contains("unexpected key 'bogus' in 'bogus=1'"), "{e}");
        assert!(message(parse_mount("type=foo,target=/c")).contains("mount type unknown"));
        assert!(
            message(parse_mount("type=bind,target=/c")).contains("field Source must not be empty")
        );
        assert!(message(parse_mount("type=bind,source=rel,target=/c")).contains("must be absolute"));
        assert!(
            message(parse_mount("type=volume,source=/abs,target=/c")).contains("use absolute path")
        );
        assert!(message(parse_mount("type=tmpfs,source=x,target=/c"))
            .contains("field Source must not be specified"));
        assert!(message(parse_mount("type=tmpfs,target=/c,tmpfs-size=abc"))
            .contains("invalid value for tmpfs-size: abc"));
        assert!(message(parse_mount("type=tmpfs,target=/c,tmpfs-mode=9"))
            .contains("invalid value for tmpfs-mode: 9"));
        assert!(
            message(parse_mount("type=bind,source=/t,target=/c,readonly=maybe"))
                .contains("invalid value for readonly: maybe")
        );
        assert!(message(parse_mount("type=bind,source=/tmp")).contains("target is required"));
        assert!(message(parse_mount("type=volume,target=/c,tmpfs-size=1m"))
            .contains("cannot mix 'tmpfs-*' options with mount type 'volume'"));
        assert!(message(parse_mount("type=bind,source=/t,target=rel"))
            .contains("'rel' mount path must be absolute"));
        assert!(message(parse_mount("source=/tmp,target=/c,type"))
            .contains("invalid field 'type' must be a key=value pair"));
    }

    #[test]
    fn tmpfs_and_duplicates() {
        let r = parse_tmpfs("/run:size=1m,exec").unwrap();
        assert_eq!(r.tmpfs_options, ["size=1m", "exec"]);
        assert!(parse_tmpfs("run").is_err());
        assert!(parse_tmpfs("/run:size=1m,,exec").is_err());
        let a = parse_volume("/tmp:/c").unwrap();
        let b = parse_tmpfs("/c/").unwrap();
        let e = check_mount_points(&[a.clone(), b]).unwrap_err();
        assert_eq!(e.message(), "duplicate mount point: /c");
        assert!(check_mount_points(&[a, parse_tmpfs("/d").unwrap()]).is_ok());
    }

    #[test]
    fn volume_names() {
        assert!(is_volume_name("data") && is_volume_name("a.b_c-1"));
        assert!(!is_volume_name("a") && !is_volume_name("-a") && !is_volume_name("a b"));
        assert!(!is_volume_name("a/b") && !is_volume_name(""));
    }
}
