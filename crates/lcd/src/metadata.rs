//! What `--env-file`, `--label` and `--label-file` add to a container, read as docker reads them:
//! one entry a line, blank lines and `#` comments skipped; in an env file `K` alone copies lcd's
//! own variable (skipped when unset). Files come first and the flags on the command line win, as
//! in docker. Unlike docker, a label needs a value: containerd drops a label whose value is empty
//! (an empty value is how its updates delete one), so `--label K` is refused rather than lost.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::cli::CreateArgs;
use crate::flags::env_entry;

/// lcd's own labels start with this; a user label may not, or it could fake a container's state.
const RESERVED_PREFIX: &str = "io.lcd.";

/// containerd refuses a label whose key and value together exceed this.
const MAX_LABEL_BYTES: usize = 4096;

/// `args` with the env files' entries put before its `-e` ones (so that `-e` wins), ready for the
/// code that reads `args.env`.
pub fn with_env_files(args: &CreateArgs) -> Result<CreateArgs> {
    let mut resolved = args.clone();
    if args.metadata.env_file.is_empty() {
        return Ok(resolved);
    }
    let mut env = Vec::new();
    for file in &args.metadata.env_file {
        env.extend(read_env_file(file)?);
    }
    env.extend(args.env.iter().cloned());
    resolved.env = env;
    Ok(resolved)
}

/// The user's labels: label files first, then `--label`s.
pub fn user_labels(args: &CreateArgs) -> Result<HashMap<String, String>> {
    let mut labels = HashMap::new();
    let mut entries = Vec::new();
    for file in &args.metadata.label_file {
        let text = read(file, "--label-file")?;
        entries.extend(lines(&text).map(str::to_string));
    }
    entries.extend(args.metadata.label.iter().cloned());
    for entry in entries {
        let (key, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        if key.is_empty() {
            bail!("invalid label {entry:?}: the key is empty");
        }
        if key.starts_with(RESERVED_PREFIX) {
            bail!("invalid label {key:?}: labels starting with {RESERVED_PREFIX} are lcd's own");
        }
        if value.is_empty() {
            bail!("invalid label {entry:?}: containerd keeps no label with an empty value; give it one (K=V)");
        }
        if key.len() + value.len() > MAX_LABEL_BYTES {
            bail!("label {key:?} is too long: containerd takes at most {MAX_LABEL_BYTES} bytes");
        }
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

/// An env file's entries as `K=V`.
fn read_env_file(file: &Path) -> Result<Vec<String>> {
    let text = read(file, "--env-file")?;
    let mut entries = Vec::new();
    for line in lines(&text) {
        let name = line.split_once('=').map_or(line, |(name, _)| name);
        if name.is_empty() {
            bail!(
                "--env-file {}: no variable name on line {line:?}",
                file.display()
            );
        }
        if name.contains(char::is_whitespace) {
            bail!(
                "--env-file {}: variable {name:?} contains whitespace",
                file.display()
            );
        }
        entries.extend(env_entry(line));
    }
    Ok(entries)
}

fn read(file: &Path, flag: &str) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("{flag} {}", file.display()))?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{flag} {}: not UTF-8 text", file.display()))
}

/// The entries of a file: lines without their leading whitespace, less blank ones and comments.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|line| line.trim_start().trim_end_matches('\r'))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    fn create_args(extra: &[&str]) -> CreateArgs {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            create: CreateArgs,
        }
        let argv = ["x"].iter().chain(extra).chain(&["./rootfs"]);
        Wrapper::try_parse_from(argv).unwrap().create
    }

    #[test]
    fn env_files_come_before_e_and_skip_comments() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        std::fs::write(
            &file,
            "# comment\n\n  A=1\nB=two words \nLCD_SURELY_UNSET_VARIABLE\n",
        )
        .unwrap();
        let args = create_args(&["--env-file", file.to_str().unwrap(), "-e", "A=2"]);
        let resolved = with_env_files(&args).unwrap();
        assert_eq!(resolved.env, ["A=1", "B=two words ", "A=2"]);
    }

    #[test]
    fn bad_env_files_are_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        std::fs::write(&file, "A B=1\n").unwrap();
        let args = create_args(&["--env-file", file.to_str().unwrap()]);
        let err = with_env_files(&args).unwrap_err().to_string();
        assert!(err.contains("contains whitespace"), "{err}");
        let args = create_args(&["--env-file", "/nonexistent/env"]);
        let err = format!("{:#}", with_env_files(&args).unwrap_err());
        assert!(err.starts_with("--env-file /nonexistent/env"), "{err}");
    }

    #[test]
    fn labels_from_files_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("labels");
        std::fs::write(&file, "a=1\n# c\nb=\n").unwrap();
        let args = create_args(&["--label-file", file.to_str().unwrap()]);
        let err = user_labels(&args).unwrap_err().to_string();
        assert!(err.contains("empty value"), "{err}");
        std::fs::write(&file, "a=1\n# c\n  b=2\n").unwrap();
        let args = create_args(&[
            "--label-file",
            file.to_str().unwrap(),
            "-l",
            "a=2",
            "--label",
            "c=x=y",
        ]);
        let labels = user_labels(&args).unwrap();
        assert_eq!(labels["a"], "2");
        assert_eq!(labels["b"], "2");
        assert_eq!(labels["c"], "x=y");
        let args = create_args(&["--label", "io.lcd.exit-code=0"]);
        assert!(user_labels(&args)
            .unwrap_err()
            .to_string()
            .contains("lcd's own"));
    }
}
