//! Docker's textual forms of sizes and users.

use crate::error::{Error, Result};

/// Parse a Docker-style byte size (`docker run --memory`): a decimal number with an optional
/// binary unit, `b`, `k`, `m`, `g`, `t` or `p` (any case, optionally followed by `b` or `ib`, and
/// optionally separated by one space). `"64m"` is 67108864; `"1.5g"` is 1610612736; fractions of a
/// byte are dropped.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let invalid = || {
        Error::invalid(format!(
            "invalid size {s:?}: expected a number with an optional unit b, k, m, g, t or p"
        ))
    };
    let too_large = || Error::invalid(format!("invalid size {s:?}: too large"));

    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int_part, rest) = s.split_at(int_end);
    if int_part.is_empty() {
        return Err(invalid());
    }
    let (frac_part, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            if end == 0 {
                return Err(invalid());
            }
            after_dot.split_at(end)
        }
        None => ("", rest),
    };
    let unit = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => return Err(invalid()),
    };
    let multiplier: u128 = 1 << shift;

    let int: u128 = int_part.parse().map_err(|_| too_large())?;
    let mut total = int.checked_mul(multiplier).ok_or_else(too_large)?;
    if !frac_part.is_empty() {
        // Digits past the 18th change the result by far less than a byte (2^50 / 10^18 < 1), and
        // capping keeps 10^digits * multiplier inside u128.
        let digits = &frac_part[..frac_part.len().min(18)];
        let frac: u128 = digits.parse().map_err(|_| invalid())?;
        let scale = 10u128.pow(digits.len() as u32);
        total = total
            .checked_add(frac * multiplier / scale)
            .ok_or_else(too_large)?;
    }
    i64::try_from(total).map_err(|_| too_large())
}

/// Parse `UID[:GID]` as given to `docker run --user`. Only numeric ids are supported (resolving
/// names needs the image's `/etc/passwd`); without a GID the group is 0, as Docker does for a uid
/// the image does not know.
pub fn parse_user(s: &str) -> Result<(u32, u32)> {
    let (uid, gid) = match s.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (s, None),
    };
    let uid = parse_id(s, "uid", uid)?;
    let gid = match gid {
        Some(gid) => parse_id(s, "gid", gid)?,
        None => 0,
    };
    Ok((uid, gid))
}

pub(super) fn parse_id(user: &str, what: &str, text: &str) -> Result<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(format!(
            "invalid user {user:?}: {what} {text:?} is not a number; user and group names are not supported, use numeric ids (UID[:GID])"
        )));
    }
    let id: u32 = text.parse().map_err(|_| {
        Error::invalid(format!(
            "invalid user {user:?}: {what} {text} is out of range"
        ))
    })?;
    // (uid_t)-1 means "leave unchanged" to setresuid(2) and friends, so it cannot name a user.
    if id == u32::MAX {
        return Err(Error::invalid(format!(
            "invalid user {user:?}: {what} {id} is reserved"
        )));
    }
    Ok(id)
}

/// Parse `docker run --ulimit NAME=SOFT[:HARD]` into the arguments of
/// [`SpecBuilder::ulimit`](super::SpecBuilder::ulimit): a missing hard limit is the soft one, and
/// `-1` or `infinity` is unlimited. The name and the order of the limits are checked by the builder.
pub fn parse_ulimit(s: &str) -> Result<(String, i64, i64)> {
    let invalid = |why: &str| Error::invalid(format!("invalid ulimit {s:?}: {why}"));
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| invalid("expected NAME=SOFT[:HARD], e.g. nofile=1024:2048"))?;
    let value = |v: &str| -> Result<i64> {
        if v == "infinity" || v == "unlimited" {
            return Ok(-1);
        }
        v.parse::<i64>()
            .map_err(|_| invalid(&format!("{v:?} is not a number (or -1, infinity)")))
    };
    let (soft, hard) = match limits.split(':').collect::<Vec<_>>()[..] {
        [soft] => (value(soft)?, value(soft)?),
        [soft, hard] => (value(soft)?, value(hard)?),
        _ => return Err(invalid("at most two limits, SOFT:HARD")),
    };
    Ok((name.to_string(), soft, hard))
}

/// Parse `docker run --device HOST[:CONTAINER][:PERMS]` into the arguments of
/// [`SpecBuilder::device`](super::SpecBuilder::device), as docker's CLI does: the container path
/// defaults to the host path, the permissions to `rwm`.
pub fn parse_device(s: &str) -> Result<(std::path::PathBuf, std::path::PathBuf, String)> {
    let is_perms = |p: &str| super::devices::validate_perms("device", p).is_ok();
    let parts: Vec<&str> = s.split(':').collect();
    let (host, container, perms) = match parts[..] {
        [host] => (host, host, "rwm"),
        [host, second] if is_perms(second) => (host, host, second),
        [host, container] => (host, container, "rwm"),
        [host, container, perms] => (host, container, perms),
        _ => {
            return Err(Error::invalid(format!(
                "invalid device {s:?}: expected HOST[:CONTAINER][:PERMS]"
            )))
        }
    };
    if host.is_empty() {
        return Err(Error::invalid(format!(
            "invalid device {s:?}: the host path is empty"
        )));
    }
    let container = if container.is_empty() {
        host
    } else {
        container
    };
    Ok((host.into(), container.into(), perms.to_string()))
}
