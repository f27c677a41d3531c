//! `docker login` and `docker logout`: check credentials against a registry, then keep them in
//! docker's `config.json` as docker does, so that docker, containerd's tools and lcd's pull and
//! push all find them.
//!
//! The entry is `auths.<key>.auth`, base64 `user:password`, under docker's key for the server:
//! `https://index.docker.io/v1/` for Docker Hub, `host[:port]` for the others (a scheme or path the
//! user typed is dropped, as docker's `ConvertToHostname`). Every other key of the file stays as it
//! was (the JSON is edited as a whole document, not through a struct that would drop what it does
//! not know); the file is written to a temporary file beside it with mode 0600, synced, then renamed
//! over the old one, so a crash leaves the old file or the new one, never half of one.
//!
//! Credential helpers (`credsStore`, `credHelpers`) are read by pull and push, but a login that
//! would have to store a secret through one is refused: writing it in plain text behind the
//! user's back, when they chose a helper, would be worse than saying so.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use libcontainerd::{Error, ErrorKind, Result};
use reqwest::StatusCode;
use serde_json::{Map, Value};

use super::auth::{docker_config_dir, host_of_key, Credentials, DOCKER_HUB_HOSTS, DOCKER_HUB_KEY};
use super::http::{Access, Registry};
use crate::reference::DEFAULT_DOMAIN;

/// How to log in or out.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    /// Speak plain HTTP to the registry (loopback registries fall back to it anyway).
    pub plain_http: bool,
    /// The directory of docker's `config.json` (default: `$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
}

/// What a logout found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logout {
    /// The server's credentials were removed.
    Removed,
    /// There were none.
    NotLoggedIn,
}

/// docker's key in `config.json` for the server a user names (none: Docker Hub).
pub fn registry_key(server: Option<&str>) -> String {
    let server = server.map(str::trim).filter(|s| !s.is_empty());
    let Some(server) = server else {
        return DOCKER_HUB_KEY.to_string();
    };
    let host = host_of_key(server);
    if server == DOCKER_HUB_KEY || DOCKER_HUB_HOSTS.contains(&host) {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

/// The registry's domain for a key of [`registry_key`].
fn domain_of_key(key: &str) -> &str {
    if key == DOCKER_HUB_KEY {
        DEFAULT_DOMAIN
    } else {
        key
    }
}

/// Whether `key` (an `auths` key as docker or a user wrote it) means the same registry as `ours`.
fn same_registry(key: &str, ours: &str) -> bool {
    if key == ours {
        return true;
    }
    let host = host_of_key(key);
    if ours == DOCKER_HUB_KEY {
        DOCKER_HUB_HOSTS.contains(&host)
    } else {
        host == ours
    }
}

/// Check `credentials` against `server`'s registry (none: Docker Hub), then store them in
/// `config.json`. Returns the key they are stored under. A refusal by the registry is a
/// `PermissionDenied` error and writes nothing.
pub async fn login(
    server: Option<&str>,
    credentials: &Credentials,
    options: &LoginOptions,
) -> Result<String> {
    let key = registry_key(server);
    let context = format!("login to {}", domain_of_key(&key));
    if credentials.username.is_empty() {
        return Err(Error::invalid(format!("{context}: the user name is empty")));
    }
    let path = config_path(options.docker_config.as_deref())?;
    // Refused before the registry is asked, so that nothing happens at all.
    let document = read_document(&path)?;
    refuse_helpers(&document, &key, &path)?;
    verify(&key, credentials, options.plain_http)
        .await
        .map_err(|e| e.context(&context))?;
    // Read again: another login may have written the file while the registry answered.
    let mut document = read_document(&path)?;
    refuse_helpers(&document, &key, &path)?;
    let auths = auths_of(&mut document, &path)?;
    auths.retain(|k, _| k == &key || !same_registry(k, &key));
    let pair = format!("{}:{}", credentials.username, credentials.password);
    let mut entry = Map::new();
    entry.insert(
        "auth".to_string(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(pair)),
    );
    auths.insert(key.clone(), Value::Object(entry));
    write_document(&path, &document)?;
    Ok(key)
}

/// Remove `server`'s credentials (none: Docker Hub) from `config.json`, under any key that means
/// that registry (`host`, `https://host`, `http://host/v2/`). Returns the key and what it found.
pub fn logout(server: Option<&str>, docker_config: Option<&Path>) -> Result<(String, Logout)> {
    let key = registry_key(server);
    let path = config_path(docker_config)?;
    let mut document = read_document(&path)?;
    refuse_helpers(&document, &key, &path)?;
    let auths = auths_of(&mut document, &path)?;
    let before = auths.len();
    auths.retain(|k, _| !same_registry(k, &key));
    if auths.len() == before {
        return Ok((key, Logout::NotLoggedIn));
    }
    write_document(&path, &document)?;
    Ok((key, Logout::Removed))
}

/// Ask the registry's `/v2/` with the credentials, as the registry's challenge wants them (Basic,
/// or a Bearer token from its realm).
async fn verify(key: &str, credentials: &Credentials, plain_http: bool) -> Result<()> {
    let domain = domain_of_key(key);
    let registry = Registry::connect_to(domain, "", plain_http, Some(credentials.clone()))
        .await?
        .with_access(Access::Login);
    let url = registry.absolute("/v2/");
    let refused = || {
        Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "unauthorized: {domain} refused the user name or password of {}",
                credentials.username
            ),
        )
    };
    let response = match registry
        .send("ask /v2/", || registry.http().get(&url))
        .await
    {
        Ok(response) => response,
        // The token server refused the credentials.
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(refused().with_source(e));
        }
        Err(e) => return Err(e),
    };
    match response.status() {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(refused()),
        _ => Err(registry.refused(response, "ask /v2/").await),
    }
}

fn config_path(dir: Option<&Path>) -> Result<PathBuf> {
    let dir = dir.map(Path::to_path_buf).or_else(docker_config_dir);
    let dir = dir.ok_or_else(|| {
        Error::invalid("no docker config directory: set HOME or DOCKER_CONFIG".to_string())
    })?;
    Ok(dir.join("config.json"))
}

/// The whole `config.json` as JSON (an empty object when there is no file).
fn read_document(path: &Path) -> Result<Value> {
    match std::fs::read(path) {
        Ok(data) if data.iter().all(u8::is_ascii_whitespace) => Ok(Value::Object(Map::new())),
        Ok(data) => {
            let document: Value = crate::oci::parse(&path.display().to_string(), &data)?;
            if !document.is_object() {
                return Err(Error::invalid(format!(
                    "{}: not a JSON object",
                    path.display()
                )));
            }
            Ok(document)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Object(Map::new())),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// A helper configured for `key` means the secret belongs in it, which we cannot write to.
fn refuse_helpers(document: &Value, key: &str, path: &Path) -> Result<()> {
    let named = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    };
    let per_registry = document
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|helpers| {
            helpers
                .iter()
                .find(|(k, _)| same_registry(k, key))
                .and_then(|(_, v)| named(Some(v)))
        });
    let helper = per_registry
        .map(|h| format!("credHelpers names docker-credential-{h} for {key}"))
        .or_else(|| {
            named(document.get("credsStore"))
                .map(|h| format!("credsStore names docker-credential-{h}"))
        });
    match helper {
        Some(helper) => Err(Error::new(
            ErrorKind::NotImplemented,
            format!(
                "credential helpers are not supported: {} in {}; use docker login, or remove it to keep credentials in the file",
                helper,
                path.display()
            ),
        )),
        None => Ok(()),
    }
}

/// The `auths` object, made if missing.
fn auths_of<'a>(document: &'a mut Value, path: &Path) -> Result<&'a mut Map<String, Value>> {
    let bad = || Error::invalid(format!("{}: auths is not a JSON object", path.display()));
    let object = document.as_object_mut().ok_or_else(bad)?;
    object
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(bad)
}

/// Write `document` over `path` atomically, mode 0600, tab-indented as docker writes it.
fn write_document(path: &Path, document: &Value) -> Result<()> {
    let what = format!("write {}", path.display());
    let dir = path
        .parent()
        .ok_or_else(|| Error::invalid(format!("{what}: no directory")))?;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(&what, e))?;
    }
    let mut data = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut data, formatter);
    serde::Serialize::serialize(document, &mut serializer)
        .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    data.push(b'\n');
    let temporary = dir.join(format!(".config.json.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        // The mode of an existing temporary file is not changed by open.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(&data)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename itself is durable only once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(Error::io(what, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_docker_writes_them() {
        assert_eq!(registry_key(None), DOCKER_HUB_KEY);
        for hub in [
            "docker.io",
            "index.docker.io",
            DOCKER_HUB_KEY,
            "registry-1.docker.io",
        ] {
            assert_eq!(registry_key(Some(hub)), DOCKER_HUB_KEY, "{hub}");
        }
        assert_eq!(registry_key(Some("127.0.0.1:5000")), "127.0.0.1:5000");
        assert_eq!(
            registry_key(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_key(Some("https://reg.example")), "reg.example");
        assert!(same_registry("https://reg.example/v1/", "reg.example"));
        assert!(same_registry("index.docker.io", DOCKER_HUB_KEY));
        assert!(!same_registry("reg.example:5000", "reg.example"));
    }

    #[test]
    fn logout_keeps_other_keys_and_refuses_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let config = serde_json::json!({
            "auths": {"http://127.0.0.1:5000": {"auth": "YTpi"}, "other:1": {"auth": "YzpkCg=="}},
            "psFormat": "table {{.ID}}",
            "proxies": {"default": {"httpProxy": "http://p:3128"}},
        });
        std::fs::write(&path, config.to_string()).unwrap();
        let (key, outcome) = logout(Some("127.0.0.1:5000"), Some(dir.path())).unwrap();
        assert_eq!((key.as_str(), outcome), ("127.0.0.1:5000", Logout::Removed));
        let after: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(after["psFormat"], config["psFormat"]);
        assert_eq!(after["proxies"], config["proxies"]);
        assert_eq!(after["auths"]["other:1"], config["auths"]["other:1"]);
        assert!(after["auths"].get("http://127.0.0.1:5000").is_none());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (_, outcome) = logout(Some("127.0.0.1:5000"), Some(dir.path())).unwrap();
        assert_eq!(outcome, Logout::NotLoggedIn);
        // No file at all: not logged in, and nothing is made.
        let empty = dir.path().join("empty");
        let (_, outcome) = logout(None, Some(&empty)).unwrap();
        assert_eq!(outcome, Logout::NotLoggedIn);
        assert!(!empty.exists());

        std::fs::write(&path, r#"{"credsStore":"desktop","auths":{"other:1":{}}}"#).unwrap();
        let e = logout(Some("other:1"), Some(dir.path())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("credential helpers are not supported: credsStore names"),
            "{e}"
        );
        std::fs::write(&path, r#"{"credHelpers":{"other:1":"pass"}}"#).unwrap();
        let e = logout(Some("https://other:1"), Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("docker-credential-pass"), "{e}");
        // A helper for another registry does not matter.
        let (_, outcome) = logout(Some("third:1"), Some(dir.path())).unwrap();
        assert_eq!(outcome, Logout::NotLoggedIn);
    }
}
