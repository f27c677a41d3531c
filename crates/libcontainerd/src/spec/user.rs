//! A user spec (`name`, `uid`, `name:group`, `uid:gid`, ...) to numbers, from a root filesystem's
//! own `/etc/passwd` and `/etc/group`, as runc's user package (`GetExecUser`,
//! `GetAdditionalGroups`) does for docker: `-u 65534` in busybox runs with gid 65534, a named user
//! gets the groups `/etc/group` lists it in.
//!
//! [`resolve_user`] and [`resolve_groups`] are pure (file text in, ids out); [`read_in_root`] reads
//! a file of a root filesystem without ever leaving it.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The largest id runc accepts (2^31 - 1, for 32-bit systems).
pub const MAX_ID: u32 = i32::MAX as u32;

/// The most of a passwd or group file that is read (runc's cap).
pub const MAX_USER_FILE: u64 = 10 << 20;

/// Symlinks followed while resolving one path (the kernel's `MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;

/// The numeric identity a user spec names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups from `/etc/group` membership: only when the user was found by name or
    /// uid and no group was given.
    pub additional_gids: Vec<u32>,
    /// Home directory from `/etc/passwd`, if the user has an entry.
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// Lines that are blank, comments or malformed (too few fields, a non-numeric id) are skipped:
/// runc would read a malformed id as 0, which could make a typo root.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or_default(),
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

/// A user or group argument: a number (all digits) is an id, anything else a name.
enum Arg<'a> {
    Id(u32),
    Name(&'a str),
}

fn parse_arg<'a>(spec: &str, what: &str, text: &'a str) -> Result<Option<Arg<'a>>> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.contains('\0') {
        return Err(Error::invalid(format!(
            "user {spec:?}: the {what} must not contain a NUL byte"
        )));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Some(Arg::Name(text)));
    }
    match text.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Ok(Some(Arg::Id(id))),
        _ => Err(Error::invalid(format!(
            "user {spec:?}: {what} {text} is out of range: uids and gids must be in range 0-{MAX_ID}"
        ))),
    }
}

/// Resolve `spec` (`user`, `uid`, `user:group`, `uid:gid`, `user:gid`, `uid:group`, or empty for
/// root) against a root filesystem's passwd and group files (`None` when it has none), as runc's
/// `GetExecUser` does:
///
/// - a user is matched by uid if numeric, else by name; the first entry wins and gives the uid,
///   the primary gid and the home directory. A numeric uid without an entry is taken as is, with
///   gid 0; a name without one is an error.
/// - a group, if given, replaces the primary gid the same way (by gid or by name; an unknown
///   number is taken as is, an unknown name is an error), and no supplementary groups are added.
/// - without a group, a user found in passwd gets every group whose member list names it.
pub fn resolve_user(passwd: Option<&str>, group: Option<&str>, spec: &str) -> Result<ExecUser> {
    let (user_text, group_text) = spec.split_once(':').unwrap_or((spec, ""));
    let user_arg = parse_arg(spec, "uid", user_text)?;
    let group_arg = parse_arg(spec, "gid", group_text)?;

    let mut user = ExecUser::default();
    let found = passwd_entries(passwd.unwrap_or_default()).find(|e| match &user_arg {
        None => e.uid == 0,
        Some(Arg::Id(uid)) => e.uid == *uid,
        Some(Arg::Name(name)) => e.name == *name,
    });
    let matched_name = match (found, &user_arg) {
        (Some(entry), _) => {
            user.uid = entry.uid;
            user.gid = entry.gid;
            user.home = Some(entry.home.to_string());
            Some(entry.name)
        }
        (None, None) => None,
        (None, Some(Arg::Id(uid))) => {
            user.uid = *uid;
            None
        }
        (None, Some(Arg::Name(name))) => {
            return Err(Error::invalid(format!(
                "unable to find user {name}: no matching entries in passwd file"
            )))
        }
    };

    let mut groups = group_entries(group.unwrap_or_default());
    match (&group_arg, matched_name) {
        (Some(arg), _) => {
            let found = groups.find(|g| match arg {
                Arg::Id(gid) => g.gid == *gid,
                Arg::Name(name) => g.name == *name,
            });
            user.gid = match (found, arg) {
                (Some(g), _) => g.gid,
                (None, Arg::Id(gid)) => *gid,
                (None, Arg::Name(name)) => {
                    return Err(Error::invalid(format!(
                        "unable to find group {name}: no matching entries in group file"
                    )))
                }
            };
        }
        (None, Some(name)) => {
            user.additional_gids = groups
                .filter(|g| g.members.contains(&name))
                .map(|g| g.gid)
                .collect();
        }
        (None, None) => {}
    }
    Ok(user)
}

/// Resolve `docker run --group-add` values: a number is a gid (taken as is when the group file
/// does not list it), a name must be in the group file. Duplicates are dropped; the order is the
/// arguments'.
pub fn resolve_groups<S: AsRef<str>>(group: Option<&str>, names: &[S]) -> Result<Vec<u32>> {
    let mut gids = Vec::new();
    for name in names {
        let name = name.as_ref();
        let gid = match parse_arg(name, "gid", name)? {
            None => {
                return Err(Error::invalid(
                    "group_add: a group must be a name or a gid, not empty",
                ))
            }
            Some(Arg::Id(gid)) => gid,
            Some(Arg::Name(wanted)) => group_entries(group.unwrap_or_default())
                .find(|g| g.name == wanted)
                .map(|g| g.gid)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "group_add: unable to find group {wanted}: no matching entries in group file"
                    ))
                })?,
        };
        if !gids.contains(&gid) {
            gids.push(gid);
        }
    }
    Ok(gids)
}

/// The host path of `path` inside the root filesystem at `root`, with every symlink resolved as if
/// `root` were `/` (an absolute target restarts at `root`, `..` never climbs above it). `None` if
/// a component does not exist or is not a directory.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<Option<PathBuf>> {
    let mut pending: Vec<PathBuf> = vec![PathBuf::from(path)];
    let mut current = PathBuf::new();
    let mut links = 0;
    // `pending` is a stack of paths still to walk, the front of the path last.
    while let Some(next) = pending.pop() {
        let mut components = next.components();
        let Some(first) = components.next() else {
            continue;
        };
        let rest = components.as_path().to_path_buf();
        if !rest.as_os_str().is_empty() {
            pending.push(rest);
        }
        match first {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                current.pop();
            }
            Component::Normal(name) => {
                let candidate = root.join(&current).join(name);
                let meta = match std::fs::symlink_metadata(&candidate) {
                    Ok(meta) => meta,
                    Err(e)
                        if e.kind() == std::io::ErrorKind::NotFound
                            || e.raw_os_error() == Some(libc::ENOTDIR) =>
                    {
                        return Ok(None)
                    }
                    Err(e) => return Err(Error::io(format!("stat {}", candidate.display()), e)),
                };
                if meta.file_type().is_symlink() {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Error::invalid(format!(
                            "{path} in {}: too many levels of symbolic links",
                            root.display()
                        )));
                    }
                    let target = std::fs::read_link(&candidate)
                        .map_err(|e| Error::io(format!("readlink {}", candidate.display()), e))?;
                    if target.is_absolute() {
                        current = PathBuf::new();
                    }
                    pending.push(target);
                } else {
                    current.push(name);
                }
            }
        }
    }
    Ok(Some(root.join(current)))
}

/// Read the regular file `path` of the root filesystem at `root` (symlinks resolved inside the
/// root, see [`resolve_in_root`]); `None` if it does not exist. At most 10 MiB (`MAX_USER_FILE`).
pub fn read_in_root(root: &Path, path: &str) -> Result<Option<String>> {
    let Some(host_path) = resolve_in_root(root, path)? else {
        return Ok(None);
    };
    let shown = || format!("{path} in {}", root.display());
    // The last component was resolved and is no symlink; O_NOFOLLOW keeps it so.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&host_path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("open {}", shown()), e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("stat {}", shown()), e))?;
    if !meta.file_type().is_file() || meta.file_type().is_fifo() {
        return Err(Error::invalid(format!("{} is not a regular file", shown())));
    }
    let mut bytes = Vec::new();
    file.take(MAX_USER_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("read {}", shown()), e))?;
    if bytes.len() as u64 > MAX_USER_FILE {
        return Err(Error::invalid(format!(
            "{} is larger than {MAX_USER_FILE} bytes",
            shown()
        )));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::invalid(format!("{} is not valid utf-8", shown())))
}

/// The passwd and group files of the root filesystem at `root`.
pub(super) fn user_files(root: &Path) -> Result<(Option<String>, Option<String>)> {
    Ok((
        read_in_root(root, "/etc/passwd")?,
        read_in_root(root, "/etc/group")?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::symlink;

    use super::*;
    use crate::error::ErrorKind;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        app:x:1000:1000:app:/app:/bin/sh\n\
        broken:x:notanumber:0::/:/bin/sh\n\
        short:x\n\
        app2:x:1000:1001:second entry for uid 1000:/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\napp:x:1000:\n\
        staff:x:50:app\nextra:x:2000:nobody,app\n#comment:x:3:app\n1234:x:4321:\n";

    fn r(spec: &str) -> Result<ExecUser> {
        resolve_user(Some(PASSWD), Some(GROUP), spec)
    }

    fn ids(u: &ExecUser) -> (u32, u32, Vec<u32>) {
        (u.uid, u.gid, u.additional_gids.clone())
    }

    #[test]
    fn names_and_numbers() {
        let app = r("app").unwrap();
        assert_eq!(ids(&app), (1000, 1000, vec![50, 2000]));
        assert_eq!(app.home.as_deref(), Some("/app"));
        // A numeric uid takes its entry's primary group (docker: -u 65534 -> gid 65534), and the
        // first entry wins.
        assert_eq!(ids(&r("65534").unwrap()), (65534, 65534, vec![2000]));
        assert_eq!(ids(&r("nobody").unwrap()), (65534, 65534, vec![2000]));
        assert_eq!(ids(&r("1000").unwrap()), (1000, 1000, vec![50, 2000]));
        // Unknown numbers are taken as is, with gid 0.
        let unknown = r("4242").unwrap();
        assert_eq!(ids(&unknown), (4242, 0, vec![]));
        assert_eq!(unknown.home, None);
        // Empty is root, with root's groups.
        assert_eq!(ids(&r("").unwrap()), (0, 0, vec![10]));
        assert_eq!(ids(&r("root").unwrap()), (0, 0, vec![10]));
        // A malformed line is never a match (runc would read its uid as 0).
        assert!(r("broken").is_err());
    }

    #[test]
    fn explicit_groups() {
        assert_eq!(ids(&r("app:staff").unwrap()), (1000, 50, vec![]));
        assert_eq!(ids(&r("app:50").unwrap()), (1000, 50, vec![]));
        assert_eq!(ids(&r("1000:777").unwrap()), (1000, 777, vec![]));
        assert_eq!(ids(&r("4242:4343").unwrap()), (4242, 4343, vec![]));
        assert_eq!(ids(&r("4242:nogroup").unwrap()), (4242, 65534, vec![]));
        // A trailing colon is no group.
        assert_eq!(ids(&r("app:").unwrap()), (1000, 1000, vec![50, 2000]));
        // ":gid" is root with that group.
        assert_eq!(ids(&r(":staff").unwrap()), (0, 50, vec![]));
        // A numeric group matches by gid, never by a group named like a number.
        assert_eq!(ids(&r("app:1234").unwrap()), (1000, 1234, vec![]));
    }

    #[test]
    fn unknown_names_and_bad_numbers_are_errors() {
        let e = r("ghost").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            e.to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        let e = r("app:ghosts").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group ghosts: no matching entries in group file"
        );
        let e = r("2147483648").unwrap_err();
        assert!(
            e.to_string().contains("must be in range 0-2147483647"),
            "{e}"
        );
        assert!(r("1:99999999999").is_err());
        assert!(r("a\0b").is_err());
        // Without files, numbers still work and names do not.
        assert_eq!(
            ids(&resolve_user(None, None, "5:6").unwrap()),
            (5, 6, vec![])
        );
        assert_eq!(ids(&resolve_user(None, None, "").unwrap()), (0, 0, vec![]));
        assert!(resolve_user(None, None, "app").is_err());
        assert_eq!(r("2147483647").unwrap().uid, MAX_ID);
    }

    #[test]
    fn additional_groups() {
        assert_eq!(
            resolve_groups(Some(GROUP), &["staff", "2000", "777", "staff"]).unwrap(),
            [50, 2000, 777]
        );
        let e = resolve_groups(Some(GROUP), &["ghosts"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("unable to find group ghosts"), "{e}");
        assert!(resolve_groups(None, &["staff"]).is_err());
        assert_eq!(resolve_groups(None, &["12"]).unwrap(), [12]);
        assert!(resolve_groups(Some(GROUP), &[""]).is_err());
        assert!(resolve_groups(Some(GROUP), &["4294967295"]).is_err());
    }

    #[test]
    fn files_are_read_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::write(root.join("data/passwd"), "inside:x:7:7::/:/bin/sh\n").unwrap();

        // Missing: None.
        assert_eq!(read_in_root(&root, "/etc/passwd").unwrap(), None);
        assert_eq!(read_in_root(&root, "/nodir/passwd").unwrap(), None);

        // An absolute symlink resolves inside the root, not on the host.
        symlink(outside.join("passwd"), root.join("etc/passwd")).unwrap();
        assert_eq!(read_in_root(&root, "/etc/passwd").unwrap(), None);
        std::fs::create_dir_all(root.join(outside.strip_prefix("/").unwrap())).unwrap();
        std::fs::write(
            root.join(outside.strip_prefix("/").unwrap()).join("passwd"),
            "mirrored:x:8:8::/:/bin/sh\n",
        )
        .unwrap();
        assert!(read_in_root(&root, "/etc/passwd")
            .unwrap()
            .unwrap()
            .starts_with("mirrored:"));

        // `..` cannot climb out: ../../../outside/passwd from /etc is /outside/passwd in the root.
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        symlink("../../../../../../outside/passwd", root.join("etc/passwd")).unwrap();
        assert_eq!(read_in_root(&root, "/etc/passwd").unwrap(), None);
        // A relative link inside the root, through a linked directory.
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        symlink("../data/passwd", root.join("etc/passwd")).unwrap();
        assert!(read_in_root(&root, "/etc/passwd")
            .unwrap()
            .unwrap()
            .starts_with("inside:"));
        symlink("/data", root.join("d")).unwrap();
        assert!(read_in_root(&root, "/d/passwd").unwrap().is_some());

        // A loop is an error, a directory is not a regular file.
        symlink("loop", root.join("loop")).unwrap();
        let e = read_in_root(&root, "/loop").unwrap_err();
        assert!(e.to_string().contains("too many levels"), "{e}");
        let e = read_in_root(&root, "/etc").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        // A path through a file is not found.
        assert_eq!(read_in_root(&root, "/data/passwd/x").unwrap(), None);
    }
}
