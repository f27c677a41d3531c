//! A user spec (`name`, `uid`, `name:group`, `uid:gid`) to numbers, from an image's /etc/passwd and
//! /etc/group, as runc's `GetExecUser` does for docker: runc needs numbers, and docker users expect
//! `-u 65534` in busybox to get gid 65534 and the user's supplementary groups.

use libcontainerd::{Error, Result};

/// The numeric identity a process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership; none when a group is given explicitly).
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd, if the user has an entry.
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

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.trim().split(':').collect();
        if f.len() < 4 || f[0].starts_with('#') {
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
        let f: Vec<&str> = line.trim().split(':').collect();
        if f.len() < 3 || f[0].starts_with('#') {
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

/// Resolve `spec` against the image's passwd and group files (`None` when the image has none).
/// An empty spec is root. A name that is not in the files is an error naming it; a number that is
/// not is taken as is (with gid 0 unless given).
pub fn resolve(passwd: Option<&str>, group: Option<&str>, spec: &str) -> Result<User> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid_arg = user_arg.parse::<u32>().ok();
    let mut user = User::default();
    let found = passwd_entries(passwd.unwrap_or_default()).find(|e| match uid_arg {
        Some(uid) => e.uid == uid,
        None => e.name == user_arg,
    });
    let matched_name = match found {
        Some(entry) => {
            user.uid = entry.uid;
            user.gid = entry.gid;
            user.home = Some(entry.home.to_string());
            Some(entry.name)
        }
        None if user_arg.is_empty() => None,
        None => match uid_arg {
            Some(uid) => {
                user.uid = uid;
                None
            }
            None => {
                return Err(Error::not_found(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file"
                )))
            }
        },
    };
    let groups = group_entries(group.unwrap_or_default());
    match group_arg.filter(|g| !g.is_empty()) {
        Some(group_arg) => {
            let gid_arg = group_arg.parse::<u32>().ok();
            let mut groups = groups;
            let found = groups.find(|g| match gid_arg {
                Some(gid) => g.gid == gid,
                None => g.name == group_arg,
            });
            user.gid = match (found, gid_arg) {
                (Some(g), _) => g.gid,
                (None, Some(gid)) => gid,
                (None, None) => {
                    return Err(Error::not_found(format!(
                        "unable to find group {group_arg}: no matching entries in group file"
                    )))
                }
            };
        }
        None => {
            if let Some(name) = matched_name {
                user.additional_gids = groups
                    .filter(|g| g.members.contains(&name))
                    .map(|g| g.gid)
                    .collect();
            }
        }
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/app:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\nextra:x:2000:nobody,app\n";

    fn r(spec: &str) -> Result<User> {
        resolve(Some(PASSWD), Some(GROUP), spec)
    }

    #[test]
    fn names_and_numbers() {
        let app = r("app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone()),
            (1000, 1000, vec![50, 2000])
        );
        assert_eq!(app.home.as_deref(), Some("/app"));
        // A numeric uid takes its passwd entry's primary group (docker: -u 65534 -> gid 65534).
        let nobody = r("65534").unwrap();
        assert_eq!(
            (nobody.uid, nobody.gid, nobody.additional_gids),
            (65534, 65534, vec![2000])
        );
        let unknown = r("4242").unwrap();
        assert_eq!((unknown.uid, unknown.gid), (4242, 0));
        let root = r("").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
    }

    #[test]
    fn explicit_groups() {
        let u = r("app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert!(u.additional_gids.is_empty());
        let u = r("1000:777").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 777));
        let u = r("4242:4343").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 4343));
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = r("ghost").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        let e = r("app:ghosts").unwrap_err();
        assert!(
            e.to_string().starts_with("unable to find group ghosts"),
            "{e}"
        );
        // No passwd file at all: numbers still work.
        assert_eq!(resolve(None, None, "5").unwrap().uid, 5);
        assert!(resolve(None, None, "app").is_err());
    }
}
