//! Flag values that several commands read the same way once clap has parsed them: `--format` and
//! `-e`.

use anyhow::{bail, Result};

/// `--format` takes `json` or the command's own default (`table` or `text`): true means JSON.
/// Commands check it before contacting containerd, so a typo fails at once.
pub fn parse_format(format: &str, default: &str) -> Result<bool> {
    match format {
        "json" => Ok(true),
        f if f == default => Ok(false),
        other => bail!("unknown format {other:?}: use {default} or json"),
    }
}

/// A `-e` argument as `K=V`: docker's `-e NAME` copies NAME from lcd's own environment, and is
/// skipped if unset.
pub fn env_entry(arg: &str) -> Option<String> {
    if arg.contains('=') {
        Some(arg.to_string())
    } else {
        std::env::var(arg)
            .ok()
            .map(|value| format!("{arg}={value}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_are_the_default_or_json() {
        assert!(!parse_format("table", "table").unwrap());
        assert!(parse_format("json", "text").unwrap());
        let err = parse_format("table", "text").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown format \"table\": use text or json"
        );
    }

    #[test]
    fn env_entries_copy_unset_names_as_nothing() {
        assert_eq!(env_entry("A=b").as_deref(), Some("A=b"));
        assert_eq!(env_entry("LCD_SURELY_UNSET_VARIABLE"), None);
    }
}
