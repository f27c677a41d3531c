//! Docker's image references: `busybox` means `docker.io/library/busybox:latest`.
//!
//! The grammar is distribution's (`reference/regexp.go`), written out by hand: a domain is the first
//! path component if it looks like a host (has a `.` or a `:`, is `localhost`, or has an upper-case
//! letter, which a repository path may not); otherwise the domain is `docker.io`, and a one-component
//! path there lives under `library/`. The tag defaults to `latest` unless a digest pins the image.
//! containerd stores images under the full, normalised name; users read the familiar (short) one.

use std::fmt;

use libcontainerd::{Error, Result};

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Older spellings of Docker Hub's domain that mean [`DEFAULT_DOMAIN`].
const LEGACY_DOMAINS: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];
/// Where official images live on Docker Hub.
const OFFICIAL_PREFIX: &str = "library/";
/// The tag of a reference that names none.
pub const DEFAULT_TAG: &str = "latest";
/// distribution's limit on the length of a name (domain and path).
const NAME_MAX: usize = 255;
/// distribution's limit on a tag's length.
const TAG_MAX: usize = 128;

/// A normalised image reference: domain, repository path, and a tag, a digest or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parse and normalise a reference as `docker pull` does: `busybox`, `user/app:1`,
    /// `127.0.0.1:5000/x:1`, `localhost/x`, `name@sha256:<hex>`, `name:tag@sha256:<hex>`.
    pub fn parse(input: &str) -> Result<Reference> {
        parse(input).map_err(|why| Error::invalid(format!("invalid reference {input:?}: {why}")))
    }

    /// The registry's domain, e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any (`latest` when the input named neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the input pinned one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The full repository name, `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as `docker images` shows it (REPOSITORY column): `busybox`, `user/x`,
    /// `127.0.0.1:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        // Only a one-component official path loses its `library/`: `library/a/b` stays as is.
        match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference in its familiar form: `busybox:latest`, `x@sha256:...`.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        check_tag(tag).map_err(|why| Error::invalid(format!("invalid tag {tag:?}: {why}")))?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    fn with_suffix(&self, mut out: String) -> String {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

/// The full, normalised form containerd stores: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

/// The familiar form of a stored name, or the name itself when it is no reference (containerd
/// accepts any string as an image name).
pub fn familiar(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string())
}

fn parse(input: &str) -> std::result::Result<Reference, String> {
    if input.is_empty() {
        return Err("it is empty".into());
    }
    if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a 64-character hexadecimal string is an image id, not a name".into());
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest)?;
            (rest, Some(digest.to_string()))
        }
        None => (input, None),
    };
    // A tag follows the last ':' only if no '/' comes after it (else the ':' is a port).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag).map_err(|why| format!("tag {tag:?}: {why}"))?;
    }
    if name.is_empty() {
        return Err("it has no repository name".into());
    }
    let (domain, path) = split_domain(name);
    check_domain(&domain)?;
    check_path(&path)?;
    if domain.len() + 1 + path.len() > NAME_MAX {
        return Err(format!("the name is longer than {NAME_MAX} characters"));
    }
    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_string()),
    };
    Ok(Reference {
        domain,
        path,
        tag,
        digest,
    })
}

/// Docker's rule for whether the first component is a registry host.
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if LEGACY_DOMAINS.contains(&domain.as_str()) {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        return (domain, format!("{OFFICIAL_PREFIX}{path}"));
    }
    (domain, path)
}

/// `host[:port]`: dot-separated labels of letters, digits and inner dashes, or `[ipv6]`.
fn check_domain(domain: &str) -> std::result::Result<(), String> {
    let bad = || format!("registry {domain:?} is not a valid host[:port]");
    let (host, port) = match domain.strip_prefix('[') {
        // `[ipv6]` or `[ipv6]:port`: the host is checked here, the port below.
        Some(v6) => {
            let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
            if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return Err(bad());
            }
            match after {
                "" => (None, None),
                _ => (None, Some(after.strip_prefix(':').ok_or_else(bad)?)),
            }
        }
        None => match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        },
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    Ok(())
}

/// Path components of lowercase letters and digits, joined by `.`, `_`, `__` or runs of `-`.
fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("repository name {path:?} must be lowercase"));
    }
    for component in path.split('/') {
        if !component_ok(component) {
            return Err(format!(
                "repository path component {component:?} may only have lowercase letters, digits and single separators (. _ __ -) between them"
            ));
        }
    }
    Ok(())
}

fn component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or any number of '-'.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match tag.as_bytes().first() {
        None => return Err("it is empty".into()),
        Some(&b) if !word(b) => return Err("it must start with a letter, digit or '_'".into()),
        _ => {}
    }
    if tag.len() > TAG_MAX {
        return Err(format!("it is longer than {TAG_MAX} characters"));
    }
    if !tag.bytes().all(|b| word(b) || b == b'.' || b == b'-') {
        return Err("it may only have letters, digits, '_', '.' and '-'".into());
    }
    Ok(())
}

/// `algorithm:hex`; sha256 and sha512 digests must have their exact lowercase length.
pub(crate) fn check_digest(digest: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| format!("digest {digest:?} {why}");
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| bad("is not algorithm:hex"))?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b));
    if !algorithm_ok {
        return Err(bad("has an invalid algorithm"));
    }
    let expected = match algorithm {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    let hex_ok = hex.len() >= 32
        && expected.is_none_or(|n| hex.len() == n)
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex_ok {
        return Err(bad("has an invalid hex part"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/x"), "docker.io/user/x:latest");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("index.docker.io/user/x:2"), "docker.io/user/x:2");
        assert_eq!(full("library/a/b"), "docker.io/library/a/b:latest");
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        let r = Reference::parse("127.0.0.1:5000/x:1").unwrap();
        assert_eq!(r.domain(), "127.0.0.1:5000");
        assert_eq!(r.path(), "x");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(full("localhost:5000/a/b"), "localhost:5000/a/b:latest");
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
        assert_eq!(
            full("registry.example.com/team/app"),
            "registry.example.com/team/app:latest"
        );
    }

    #[test]
    fn digests_and_tag_plus_digest() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        let r = Reference::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1@{D}"));
        assert_eq!(r.familiar(), format!("busybox:1@{D}"));
    }

    #[test]
    fn familiar_forms() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar_name();
        assert_eq!(f("docker.io/library/busybox:latest"), "busybox");
        assert_eq!(f("docker.io/user/x"), "user/x");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b");
        assert_eq!(f("127.0.0.1:5000/x:1"), "127.0.0.1:5000/x");
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("not a ref!"), "not a ref!");
    }

    #[test]
    fn errors_name_the_input() {
        for (input, why) in [
            ("", "empty"),
            ("Busybox", "lowercase"),
            ("user/App", "lowercase"),
            ("busybox:", "tag"),
            ("busybox:-x", "tag"),
            ("busy--box_", "component"),
            ("a__b/c..d", "component"),
            ("busybox@sha256:abc", "hex"),
            ("busybox@md5", "algorithm:hex"),
            (
                "6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
                "image id",
            ),
            ("exa_mple.com:5000/x", "registry"),
            ("example.com:50a0/x", "registry"),
            (":tag", "no repository"),
        ] {
            let e = Reference::parse(input).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(&format!("{input:?}")), "{text}");
            assert!(text.contains(why), "{input}: {text}");
            assert!(!text.contains('\n'));
            assert_eq!(e.kind(), libcontainerd::ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn uppercase_first_component_is_a_domain() {
        // As docker: an upper-case first component can only be a host.
        assert_eq!(full("Example/x"), "Example/x:latest");
        // A dotted first component is a host, and hosts have no underscores.
        assert!(Reference::parse("a-b__c.d/e").is_err());
    }

    #[test]
    fn separators() {
        assert!(Reference::parse("a__b").is_ok());
        assert!(Reference::parse("a---b").is_ok());
        assert!(Reference::parse("a.b_c").is_ok());
        assert!(Reference::parse("a._b").is_err());
        assert!(Reference::parse("a___b").is_err());
        assert!(Reference::parse("x/").is_err());
        let long = format!("x:{}", "a".repeat(129));
        assert!(Reference::parse(&long).is_err());
    }

    #[test]
    fn with_tag() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(
            r.with_tag("v2").unwrap().to_string(),
            "docker.io/library/busybox:v2"
        );
        assert!(r.with_tag("bad tag").is_err());
    }
}
