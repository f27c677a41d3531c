//! Validated identifiers for containers, exec processes and namespaces.
//!
//! containerd's rule (`identifiers.Validate`): one or more alphanumeric runs joined by single `.`, `_`
//! or `-`, at most 76 characters. Such an id is always one normal path component, so an [`Id`] can be
//! joined to a directory without any traversal risk; a plain `String` never reaches a path or an RPC.

use std::fmt;

use crate::error::{Error, Result};

/// The longest id containerd accepts.
pub const MAX_ID_LEN: usize = 76;

/// A container id, exec id or namespace that passed containerd's validation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    /// Validate `s` and wrap it. The error says what is wrong with it.
    pub fn new(s: impl Into<String>) -> Result<Id> {
        let s = s.into();
        validate(&s)?;
        Ok(Id(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid("invalid id \"\": an id must not be empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(Error::invalid(format!(
            "invalid id {s:?}: longer than {MAX_ID_LEN} characters"
        )));
    }
    let mut previous_was_separator = true; // so a leading separator is rejected
    for c in s.chars() {
        let separator = matches!(c, '.' | '_' | '-');
        if !separator && !c.is_ascii_alphanumeric() {
            return Err(Error::invalid(format!(
                "invalid id {s:?}: only letters, digits and single '.', '_' or '-' between them are allowed"
            )));
        }
        if separator && previous_was_separator {
            return Err(Error::invalid(format!(
                "invalid id {s:?}: must start with a letter or digit and not repeat '.', '_' or '-'"
            )));
        }
        previous_was_separator = separator;
    }
    if previous_was_separator {
        return Err(Error::invalid(format!(
            "invalid id {s:?}: must end with a letter or digit"
        )));
    }
    Ok(())
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Id {
    type Err = Error;
    fn from_str(s: &str) -> Result<Id> {
        Id::new(s)
    }
}

impl TryFrom<&str> for Id {
    type Error = Error;
    fn try_from(s: &str) -> Result<Id> {
        Id::new(s)
    }
}

impl TryFrom<String> for Id {
    type Error = Error;
    fn try_from(s: String) -> Result<Id> {
        Id::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn accepts_containerds_valid_vectors() {
        for ok in [
            "default",
            "Default",
            "moby",
            "ContainerD",
            "a",
            "a.b",
            "a-b",
            "a_b",
            "foo.boo",
            "swarmkit.docker.io",
            "0912341234",
            "task.0.0123456789",
            "container.system-75-f19a.00",
            "underscores_are_allowed",
            &"a".repeat(MAX_ID_LEN),
        ] {
            assert!(Id::new(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn rejects_containerds_invalid_vectors() {
        for bad in [
            "",
            ".",
            "..",
            "/",
            "foo/..",
            "../foo",
            "foo..foo",
            "-foo.boo",
            "foo.boo-",
            "but__only_tasteful_underscores",
            "zn--e9.org",
            "default--default",
            "a b",
            "a\0b",
            "é",
            &"a".repeat(MAX_ID_LEN + 1),
        ] {
            let err = Id::new(bad).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert!(err.to_string().starts_with("invalid id"), "{err}");
        }
    }

    #[test]
    fn a_valid_id_is_one_normal_path_component() {
        for ok in ["a", "a.b", "x-1_2.3"] {
            let id = Id::new(ok).unwrap();
            let joined = std::path::Path::new("/base").join(id.as_str());
            let comps: Vec<_> = joined.components().collect();
            assert_eq!(comps.len(), 3);
            assert!(matches!(comps[2], std::path::Component::Normal(_)));
        }
    }
}
