//! Platforms (`linux/amd64`, `linux/arm64/v8`) and choosing an index's manifest for one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An image platform as OCI descriptors and configs spell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    /// CPU architecture in Go's terms (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v7`, `v8`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform this process runs on, in Go's names (what containerd would pick).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new(std::env::consts::OS, architecture, None)
    }

    /// Whether an image built for `other` runs here. A missing variant matches any, and arm64's
    /// `v8` is its default.
    pub fn matches(&self, other: &Platform) -> bool {
        let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", Some("v8")) | (_, Some("")) => None,
            (_, v) => v.map(str::to_string),
        };
        self.os == other.os
            && self.architecture == other.architecture
            && match (variant(self), variant(other)) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let amd64 = Platform::new("linux", "amd64", None);
        assert!(amd64.matches(&Platform::new("linux", "amd64", None)));
        assert!(!amd64.matches(&Platform::new("linux", "arm64", None)));
        assert!(!amd64.matches(&Platform::new("windows", "amd64", None)));
        let arm64 = Platform::new("linux", "arm64", None);
        assert!(arm64.matches(&Platform::new("linux", "arm64", Some("v8"))));
        let v7 = Platform::new("linux", "arm", Some("v7"));
        assert!(!v7.matches(&Platform::new("linux", "arm", Some("v6"))));
        assert_eq!(v7.to_string(), "linux/arm/v7");
        assert_eq!(amd64.to_string(), "linux/amd64");
    }
}
