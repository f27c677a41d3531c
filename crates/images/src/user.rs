//! A user spec (`name`, `uid`, `name:group`, `uid:gid`) to numbers, from an image's /etc/passwd and
//! /etc/group, as runc's `GetExecUser` does for docker: runc needs numbers, and docker users expect
//! `-u 65534` in busybox to get gid 65534 and the user's supplementary groups. The rules are the
//! library's (`libcontainerd::spec::resolve_user`, which rootfs directories use too), so an image
//! and a directory resolve a user the same way.

use libcontainerd::Result;

/// The numeric identity a process runs as.
pub use libcontainerd::spec::ExecUser as User;

/// Resolve `spec` against the text of /etc/passwd and /etc/group (`None` where a file is missing).
pub fn resolve(passwd: Option<&str>, group: Option<&str>, spec: &str) -> Result<User> {
    libcontainerd::spec::resolve_user(passwd, group, spec)
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
