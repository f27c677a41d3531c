//! Registry credentials and authentication challenges, as docker does them.
//!
//! Credentials come from the options or from docker's `config.json` (`$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`): a credential helper named by `credHelpers.<registry>` or
//! `credsStore` (`docker-credential-<name> get`), else `auths.<registry>.auth`, base64
//! `user:password` (or `username` and `password` fields). Keys are matched as docker does: Docker
//! Hub is `https://index.docker.io/v1/`, other registries by host, with or without a scheme or
//! path. Identity tokens (OAuth refresh tokens) are not exchanged.
//!
//! A registry answers 401 with `WWW-Authenticate`: `Basic realm=...` (send the credentials) or
//! `Bearer realm=...,service=...,scope=...` (ask the realm for a token, with the credentials as
//! Basic auth if there are any, anonymously otherwise, and send the token).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use libcontainerd::{Error, ErrorKind, Result};
use serde::Deserialize;

use crate::reference::DEFAULT_DOMAIN;

/// Docker Hub's key in `config.json`, as `docker login` writes it.
pub(crate) const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// Hosts that all mean Docker Hub.
pub(crate) const DOCKER_HUB_HOSTS: [&str; 3] =
    [DEFAULT_DOMAIN, "index.docker.io", "registry-1.docker.io"];

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or personal access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    // The password never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub(crate) fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    /// The helper for every registry (`docker-credential-<name>`).
    #[serde(default)]
    creds_store: Option<String>,
    /// Helpers per registry, before `credsStore`.
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// docker's config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker"))
}

/// The credentials for registry `domain`: `explicit` ones if given, else docker's `config.json`
/// in `docker_config` (default: [`docker_config_dir`]). A credential helper is a process that may
/// take its time, so the file is read off the async threads.
pub(crate) async fn credentials_for(
    explicit: Option<&Credentials>,
    docker_config: Option<&Path>,
    domain: &str,
) -> Result<Option<Credentials>> {
    if let Some(credentials) = explicit {
        return Ok(Some(credentials.clone()));
    }
    let Some(dir) = docker_config
        .map(Path::to_path_buf)
        .or_else(docker_config_dir)
    else {
        return Ok(None);
    };
    let domain = domain.to_string();
    tokio::task::spawn_blocking(move || from_docker_config(&dir, &domain))
        .await
        .map_err(|e| Error::internal(format!("read credentials: {e}")))?
}

/// `https://host:5000/v1/` -> `host:5000` (docker's `ConvertToHostname`).
pub(crate) fn host_of_key(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The credentials for registry `domain` in `<dir>/config.json`, if any. A missing file is no
/// credentials; an unreadable or malformed one is an error naming it.
pub(crate) fn from_docker_config(dir: &Path, domain: &str) -> Result<Option<Credentials>> {
    let path = dir.join("config.json");
    let data = match std::fs::read(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    let what = path.display().to_string();
    let config: ConfigFile = crate::oci::parse(&what, &data)?;
    let hub = DOCKER_HUB_HOSTS.contains(&domain);
    let server = if hub { DOCKER_HUB_KEY } else { domain };
    // A helper takes precedence over `auths`, as in docker (which then keeps only a stub there).
    let helper = config
        .cred_helpers
        .get(server)
        .or(config.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        return from_helper(&format!("docker-credential-{helper}"), server);
    }
    let entry = if hub {
        config.auths.get(DOCKER_HUB_KEY).or_else(|| {
            config
                .auths
                .iter()
                .find(|(k, _)| DOCKER_HUB_HOSTS.contains(&host_of_key(k)))
                .map(|(_, v)| v)
        })
    } else {
        config.auths.get(domain).or_else(|| {
            config
                .auths
                .iter()
                .find(|(k, _)| host_of_key(k) == domain)
                .map(|(_, v)| v)
        })
    };
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = |why: String| {
            Error::invalid(format!(
                "read {what}: the auth of {domain} is not base64 user:password: {why}"
            ))
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| bad(e.to_string()))?;
        let decoded = String::from_utf8(decoded).map_err(|e| bad(e.to_string()))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("no colon".to_string()))?;
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        })),
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// Ask a docker credential helper (`<program> get`, the server on stdin, JSON on stdout). Its
/// "not found" answer (a failure mentioning "credentials not found") is no credentials.
pub(crate) fn from_helper(program: &str, server: &str) -> Result<Option<Credentials>> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let what = format!("get the credentials of {server} from {program}");
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(&what, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| Error::io(&what, e))?;
    }
    let output = child.wait_with_output().map_err(|e| Error::io(&what, e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = format!("{} {}", stdout.trim(), stderr.trim());
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(Error::new(
            ErrorKind::Unknown,
            format!("{what}: it failed ({}): {}", output.status, said.trim()),
        ));
    }
    let answer: HelperAnswer =
        crate::oci::parse(&format!("the answer of {program}"), &output.stdout)?;
    // "<token>" marks an identity token (an OAuth refresh token), which we do not exchange.
    if answer.username == "<token>" {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

/// What a 401 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` value: a scheme, then `key=value` or `key="quoted value"` pairs.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(mut rest: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            return params;
        };
        let key = key.trim().to_ascii_lowercase();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted string ends at the first unescaped quote.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = after;
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Ask a Bearer challenge's realm (with its `service`) for a token for `scope` (none for a login,
/// which only checks the credentials), with `credentials` as Basic auth if any.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    (realm, service): (&str, Option<&str>),
    scope: Option<&str>,
    credentials: Option<&Credentials>,
) -> Result<String> {
    let what = format!("get a token from {realm}");
    let mut query = vec![];
    if let Some(scope) = scope {
        query.push(("scope", scope));
    }
    if let Some(service) = service {
        query.push(("service", service));
    }
    let mut request = http.get(realm).query(&query);
    if let Some(credentials) = credentials {
        request = request.header(reqwest::header::AUTHORIZATION, credentials.basic());
    }
    let response = request
        .send()
        .await
        .map_err(|e| super::http::transport(&what, e))?;
    let status = response.status();
    if !status.is_success() {
        let kind = match status.as_u16() {
            401 | 403 => ErrorKind::PermissionDenied,
            _ => ErrorKind::Unknown,
        };
        let who = credentials.map_or("anonymously".to_string(), |c| format!("as {}", c.username));
        return Err(Error::new(
            kind,
            format!("{what} {who}: the token server answered {status}"),
        ));
    }
    let body = super::http::read_limited(response, 1 << 20, &what).await?;
    let token: TokenResponse = crate::oci::parse(&format!("the answer of {realm}"), &body)?;
    token
        .token
        .or(token.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::invalid(format!("{what}: the answer has no token")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://127.0.0.1:1/t, service="a \"b\"""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("a \"b\"".into()),
                scope: None,
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn docker_config_keys() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:secret")},
            "http://127.0.0.1:5000/v2/": {"auth": b64("local:pw:with:colons")},
            "reg.example:443": {"username": "u", "password": "p"},
        }});
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let get = |domain| from_docker_config(dir.path(), domain).unwrap();
        assert_eq!(get("docker.io").unwrap().username, "hub");
        let local = get("127.0.0.1:5000").unwrap();
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("local", "pw:with:colons")
        );
        assert_eq!(get("reg.example:443").unwrap().password, "p");
        assert_eq!(get("other.example"), None);
        assert!(!format!("{local:?}").contains("pw"));
        assert_eq!(
            local.basic(),
            format!("Basic {}", b64("local:pw:with:colons"))
        );
        // No file: no credentials; a broken one: an error naming it.
        assert_eq!(
            from_docker_config(&dir.path().join("none"), "x").unwrap(),
            None
        );
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        let e = from_docker_config(dir.path(), "x").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }

    #[test]
    fn credential_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-test");
        // Knows one server; says "not found" for the others, like docker's helpers.
        let script = r#"#!/bin/sh
read server
if [ "$server" = "reg.example:5000" ]; then
  echo '{"ServerURL":"reg.example:5000","Username":"bob","Secret":"pw"}'
else
  echo "credentials not found in native keychain"; exit 1
fi
"#;
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let program = helper.to_str().unwrap();
        let found = from_helper(program, "reg.example:5000").unwrap().unwrap();
        assert_eq!(
            (found.username.as_str(), found.password.as_str()),
            ("bob", "pw")
        );
        assert_eq!(from_helper(program, "other:1").unwrap(), None);
        let e = from_helper("/nonexistent/docker-credential-x", "a").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("get the credentials of a from /nonexistent"),
            "{e}"
        );
    }
}
