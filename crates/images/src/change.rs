//! `docker commit --change`: the Dockerfile instructions that set an image's container defaults
//! (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL), parsed once up front
//! so that a bad one is refused before anything is made, then applied to a container config in
//! order with the Dockerfile's rules: JSON or shell form for CMD and ENTRYPOINT, an ENTRYPOINT
//! clears the Cmd unless a CMD comes with it, a relative WORKDIR goes under the previous one, ENV
//! replaces a variable in place or appends it. Variables in values are not expanded.

use std::collections::BTreeMap;

use libcontainerd::{Error, Result};

use crate::oci::ContainerConfig;

/// The instructions `--change` takes.
pub const INSTRUCTIONS: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL";

/// One `--change` instruction, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `CMD ["x","y"]` or `CMD x y` (run by `/bin/sh -c`).
    Cmd(Vec<String>),
    /// `ENTRYPOINT ...`, same forms.
    Entrypoint(Vec<String>),
    /// `ENV K=V [K2=V2...]` or `ENV K V`.
    Env(Vec<(String, String)>),
    /// `EXPOSE 80 53/udp`: `port/proto` keys.
    Expose(Vec<String>),
    /// `LABEL k=v [k2=v2...]`.
    Label(Vec<(String, String)>),
    /// `USER name[:group]`.
    User(String),
    /// `WORKDIR /path` (relative: under the current one).
    Workdir(String),
    /// `VOLUME ["/a"]` or `VOLUME /a /b`.
    Volume(Vec<String>),
    /// `STOPSIGNAL SIGQUIT`.
    StopSignal(String),
}

impl Change {
    /// Parse one instruction; the error names it and what is wrong, in one line.
    pub fn parse(text: &str) -> Result<Change> {
        let bad = |why: &str| Error::invalid(format!("invalid change {text:?}: {why}"));
        let trimmed = text.trim();
        let (word, rest) = match trimmed.split_once(char::is_whitespace) {
            Some((word, rest)) => (word, rest.trim()),
            None => (trimmed, ""),
        };
        if word.is_empty() {
            return Err(bad("it is empty"));
        }
        let instruction = word.to_ascii_uppercase();
        let known = INSTRUCTIONS.split(", ").any(|i| i == instruction);
        if !known {
            return Err(bad(&format!(
                "{instruction} is not a valid change command (use {INSTRUCTIONS})"
            )));
        }
        if rest.is_empty() {
            return Err(bad(&format!("{instruction} needs an argument")));
        }
        let change = match instruction.as_str() {
            "CMD" => Change::Cmd(command(rest).map_err(|e| bad(&e))?),
            "ENTRYPOINT" => Change::Entrypoint(command(rest).map_err(|e| bad(&e))?),
            "ENV" => Change::Env(pairs(rest, true).map_err(|e| bad(&e))?),
            "LABEL" => Change::Label(pairs(rest, false).map_err(|e| bad(&e))?),
            "EXPOSE" => Change::Expose(
                words(rest)
                    .map_err(|e| bad(&e))?
                    .iter()
                    .map(|p| port(p))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| bad(&e))?,
            ),
            "USER" => Change::User(single(rest).map_err(|e| bad(&e))?),
            "WORKDIR" => Change::Workdir(single(rest).map_err(|e| bad(&e))?),
            "VOLUME" => {
                let paths = match json_array(rest) {
                    Some(paths) => paths.map_err(|e| bad(&e))?,
                    None => words(rest).map_err(|e| bad(&e))?,
                };
                if paths.iter().any(|p| p.is_empty()) {
                    return Err(bad("VOLUME paths cannot be empty"));
                }
                Change::Volume(paths)
            }
            _ => {
                let signal = single(rest).map_err(|e| bad(&e))?;
                signal
                    .parse::<libcontainerd::Signal>()
                    .map_err(|e| bad(&format!("STOPSIGNAL: {}", e.message())))?;
                Change::StopSignal(signal)
            }
        };
        Ok(change)
    }
}

/// Parse every `--change`; the first bad one is the error.
pub fn parse_all(changes: &[String]) -> Result<Vec<Change>> {
    changes.iter().map(|c| Change::parse(c)).collect()
}

/// Apply `changes` in order to `config`, as a Dockerfile's instructions would.
pub fn apply(config: &mut ContainerConfig, changes: &[Change]) {
    let mut cmd_set = false;
    for change in changes {
        match change {
            Change::Cmd(cmd) => {
                config.cmd = Some(cmd.clone());
                cmd_set = true;
            }
            Change::Entrypoint(entrypoint) => {
                config.entrypoint = Some(entrypoint.clone());
                if !cmd_set {
                    config.cmd = None;
                }
            }
            Change::Env(pairs) => {
                let env = config.env.get_or_insert_with(Vec::new);
                for (key, value) in pairs {
                    let entry = format!("{key}={value}");
                    let same_key = |e: &String| e.split('=').next() == Some(key.as_str());
                    match env.iter_mut().find(|e| same_key(e)) {
                        Some(existing) => *existing = entry,
                        None => env.push(entry),
                    }
                }
            }
            Change::Label(pairs) => {
                let labels = config.labels.get_or_insert_with(BTreeMap::new);
                for (key, value) in pairs {
                    labels.insert(key.clone(), value.clone());
                }
            }
            Change::Expose(ports) => {
                let exposed = config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for port in ports {
                    exposed.insert(port.clone(), serde_json::json!({}));
                }
            }
            Change::User(user) => config.user = Some(user.clone()),
            Change::Workdir(dir) => {
                let current = config.working_dir.clone().unwrap_or_default();
                config.working_dir = Some(join_workdir(&current, dir));
            }
            Change::Volume(paths) => {
                let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
                for path in paths {
                    volumes.insert(path.clone(), serde_json::json!({}));
                }
            }
            Change::StopSignal(signal) => config.stop_signal = Some(signal.clone()),
        }
    }
}

/// A relative WORKDIR is taken under the current one (`/` when unset).
fn join_workdir(current: &str, dir: &str) -> String {
    if dir.starts_with('/') {
        return dir.to_string();
    }
    let base = if current.is_empty() { "/" } else { current };
    format!("{}/{dir}", base.trim_end_matches('/'))
}

/// CMD and ENTRYPOINT: a JSON array of strings (exec form), or a shell command run by
/// `/bin/sh -c` (shell form).
fn command(rest: &str) -> std::result::Result<Vec<String>, String> {
    match json_array(rest) {
        Some(parsed) => parsed,
        None => Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()]),
    }
}

/// `Some` when `rest` looks like a JSON array: its strings, or why it is not one.
fn json_array(rest: &str) -> Option<std::result::Result<Vec<String>, String>> {
    if !rest.starts_with('[') {
        return None;
    }
    Some(
        serde_json::from_str::<Vec<String>>(rest)
            .map_err(|e| format!("not a JSON array of strings: {e}")),
    )
}

/// Exactly one word (USER, WORKDIR, STOPSIGNAL).
fn single(rest: &str) -> std::result::Result<String, String> {
    match words(rest)?.as_slice() {
        [one] if !one.is_empty() => Ok(one.clone()),
        _ => Err(format!("expected one argument, got {rest:?}")),
    }
}

/// `80`, `80/tcp`, `53/udp` (a port range too) as docker's `port/proto` key.
fn port(text: &str) -> std::result::Result<String, String> {
    let (ports, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("EXPOSE {text}: unknown protocol {proto:?}"));
    }
    let valid = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    let ok = match ports.split_once('-') {
        Some((low, high)) => valid(low) && valid(high),
        None => valid(ports),
    };
    if !ok {
        return Err(format!("EXPOSE {text}: invalid port"));
    }
    Ok(format!("{ports}/{proto}"))
}

/// ENV and LABEL: `k=v` pairs (quotes and backslashes as a shell reads them); ENV also takes the
/// old `K V...` form, the rest of the line being the value.
fn pairs(rest: &str, legacy_form: bool) -> std::result::Result<Vec<(String, String)>, String> {
    let first = words(rest)?;
    let legacy = first.first().is_some_and(|w| !w.contains('='));
    if legacy {
        if !legacy_form {
            return Err(format!("expected key=value, got {rest:?}"));
        }
        let (key, value) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("ENV {rest}: needs a value (ENV K=V or ENV K V)"))?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    first
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some(("", _)) => Err(format!("{word:?}: the key is empty")),
            Some((key, value)) => Ok((key.to_string(), value.to_string())),
            None => Err(format!("expected key=value, got {word:?}")),
        })
        .collect()
}

/// Split on whitespace outside quotes; quotes removed, a backslash escapes the next character
/// (inside single quotes it is kept, as a shell does).
fn words(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => match chars.next() {
                Some(next) => {
                    word.push(next);
                    in_word = true;
                }
                None => return Err("a backslash ends the text".into()),
            },
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn forms_of_each_instruction() {
        assert_eq!(
            Change::parse(r#"CMD ["echo","x"]"#).unwrap(),
            Change::Cmd(v(&["echo", "x"]))
        );
        assert_eq!(
            Change::parse("cmd echo $HOME").unwrap(),
            Change::Cmd(v(&["/bin/sh", "-c", "echo $HOME"]))
        );
        assert_eq!(
            Change::parse(r#"ENV A=1 B="two words" C=a\ b"#).unwrap(),
            Change::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "a b".into())
            ])
        );
        assert_eq!(
            Change::parse("ENV PATH /usr/bin:/bin").unwrap(),
            Change::Env(vec![("PATH".into(), "/usr/bin:/bin".into())])
        );
        assert_eq!(
            Change::parse("EXPOSE 80 53/UDP 8000-8010").unwrap(),
            Change::Expose(v(&["80/tcp", "53/udp", "8000-8010/tcp"]))
        );
        assert_eq!(
            Change::parse("LABEL team='db ops' v=1").unwrap(),
            Change::Label(vec![
                ("team".into(), "db ops".into()),
                ("v".into(), "1".into())
            ])
        );
        assert_eq!(
            Change::parse(r#"VOLUME ["/data", "/logs"]"#).unwrap(),
            Change::Volume(v(&["/data", "/logs"]))
        );
        assert_eq!(
            Change::parse("VOLUME /data /logs").unwrap(),
            Change::Volume(v(&["/data", "/logs"]))
        );
        assert_eq!(
            Change::parse("STOPSIGNAL SIGQUIT").unwrap(),
            Change::StopSignal("SIGQUIT".into())
        );
        assert_eq!(
            Change::parse("USER app:staff").unwrap(),
            Change::User("app:staff".into())
        );
    }

    #[test]
    fn bad_changes_are_one_line_naming_them() {
        for (text, why) in [
            ("RUN apt-get update", "RUN is not a valid change command"),
            ("COPY . /", "COPY is not a valid change command"),
            ("", "it is empty"),
            ("CMD", "CMD needs an argument"),
            (r#"CMD ["unterminated"#, "not a JSON array"),
            ("ENV =x", "the key is empty"),
            ("ENV A", "needs a value"),
            ("LABEL novalue", "expected key=value"),
            ("EXPOSE 99999", "invalid port"),
            ("EXPOSE 80/icmp", "unknown protocol"),
            ("STOPSIGNAL SIGNOPE", "STOPSIGNAL"),
            ("USER a b", "expected one argument"),
            ("ENV A=\"x", "unterminated quote"),
        ] {
            let e = Change::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn applied_with_the_dockerfile_rules() {
        let mut config = ContainerConfig {
            env: Some(v(&["PATH=/bin", "A=0"])),
            entrypoint: None,
            cmd: Some(v(&["sh"])),
            working_dir: Some("/app".into()),
            ..Default::default()
        };
        let changes = parse_all(&v(&[
            "ENV A=1 B=2",
            "WORKDIR sub",
            "LABEL k=v",
            "EXPOSE 80",
            "ENTRYPOINT [\"/entry\"]",
        ]))
        .unwrap();
        apply(&mut config, &changes);
        assert_eq!(config.env, Some(v(&["PATH=/bin", "A=1", "B=2"])));
        assert_eq!(config.working_dir.as_deref(), Some("/app/sub"));
        assert_eq!(config.entrypoint, Some(v(&["/entry"])));
        // An ENTRYPOINT without a CMD among the changes clears the Cmd, as in a Dockerfile.
        assert_eq!(config.cmd, None);
        assert!(config.labels.unwrap().contains_key("k"));
        assert!(config.exposed_ports.unwrap().contains_key("80/tcp"));

        let mut config = ContainerConfig::default();
        let changes = parse_all(&v(&["CMD [\"x\"]", "ENTRYPOINT [\"e\"]"])).unwrap();
        apply(&mut config, &changes);
        assert_eq!(config.cmd, Some(v(&["x"])));
        assert_eq!(join_workdir("", "w"), "/w");
        assert_eq!(join_workdir("/a/", "/b"), "/b");
    }
}
