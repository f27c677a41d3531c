//! A registry's HTTP API (OCI distribution v2) for pull, push and login: manifests and blobs of one
//! repository, with docker's rules for the scheme and its authentication. Pulling reads here;
//! uploads (blob sessions, manifest PUTs) are in [`crate::push`] on top of [`Registry::send`].
//!
//! Why our own small client on `reqwest` rather than the `oci-client` crate: a pull here must
//! stream every blob into containerd's `Content.Write` (not into memory or a file), resume a cut
//! blob with a `Range` request from the offset the content writer reached, report per-layer
//! progress, keep manifests as the exact bytes the registry sent, read docker's `config.json` and
//! treat loopback registries as docker does; `oci-client` would give the HTTP calls and token
//! exchange but little of the rest, and brings chrono, jwt, regex and others along. The few calls
//! (`/v2/`, manifests, blobs, a token realm) fit in this module.
//!
//! TLS: `reqwest` with rustls on the `ring` provider and the system's root certificates
//! (`rustls-tls-native-roots`, no default features). reqwest 0.12's default is native-tls
//! (OpenSSL headers at build time, a shared library at run time) and rustls' own default provider
//! is aws-lc-rs (C code built with cmake); ring builds with a plain C compiler and is what rustls
//! shipped with for years. System roots, like docker, so a private CA in the host's store works.
//! reqwest 0.12 and its rustls stack build with the workspace's Rust 1.85 (hyper-rustls' MSRV is
//! 1.85; reqwest 0.13 would bring aws-lc by default).
//!
//! Scheme (docker's rule): HTTPS, except plain HTTP when asked (`plain_http`); registries on
//! loopback (`localhost`, 127.0.0.0/8, ::1) are "insecure" by default in docker, which tries HTTPS
//! without certificate checks first and falls back to HTTP when that fails. Like Go's proxy rules,
//! a loopback registry is never reached through a proxy.

use std::net::IpAddr;
use std::time::Duration;

use libcontainerd::{Error, ErrorKind, Result};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, RANGE, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::auth::{fetch_token, parse_challenge, Challenge, Credentials};
use crate::content::MAX_METADATA;
use crate::digest::sha256;
use crate::media;
use crate::oci::Descriptor;
use crate::reference::{Reference, DEFAULT_DOMAIN};

/// Where Docker Hub's API lives.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A stalled transfer fails after this long without a byte (a retry may resume it).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// What a pull accepts as a manifest, index first (docker's and containerd's list).
const MANIFEST_TYPES: [&str; 4] = [
    media::OCI_INDEX,
    media::DOCKER_MANIFEST_LIST,
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST,
];

/// What a registry client does, which decides the token scope it asks a Bearer realm for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read the repository: the scope the challenge names, else `repository:<name>:pull`.
    Pull,
    /// Write it too: `repository:<name>:pull,push` from the start, as docker asks, so that the
    /// first upload does not need a second token.
    Push,
    /// Only check the credentials (`docker login`): a token without a scope.
    Login,
}

/// One repository of one registry, with the authorization that worked last.
pub(crate) struct Registry {
    http: reqwest::Client,
    /// `https://host:port`, the scheme chosen.
    base: String,
    /// The registry as the reference names it (for messages and credentials).
    pub domain: String,
    repository: String,
    credentials: Option<Credentials>,
    access: Access,
    /// The `Authorization` header every request carries, set after a 401 (shared by the
    /// concurrent layer downloads so that one token serves them all).
    authorization: Mutex<Option<HeaderValue>>,
}

/// Whether `host` (`name`, `name:port`, `[v6]:port`) is on loopback.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A transport error as one line: what failed, and the deepest cause (e.g. "connection refused").
pub(crate) fn transport(what: &str, e: reqwest::Error) -> Error {
    let mut cause: &dyn std::error::Error = &e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else {
        cause.to_string()
    };
    Error::new(ErrorKind::Unavailable, format!("{what}: {why}")).with_source(e)
}

/// Read a small body whole, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    mut response: Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(Error::invalid(format!("{what}: more than {limit} bytes")));
    }
    let mut data = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(what, e))? {
        data.extend_from_slice(&chunk);
        if data.len() as u64 > limit {
            return Err(Error::invalid(format!("{what}: more than {limit} bytes")));
        }
    }
    Ok(data)
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Registry {
    /// Pick the scheme for `reference`'s registry by pinging `/v2/`, as docker does.
    pub(crate) async fn connect(
        reference: &Reference,
        plain_http: bool,
        credentials: Option<Credentials>,
    ) -> Result<Registry> {
        let repository = reference.path();
        Registry::connect_to(reference.domain(), repository, plain_http, credentials).await
    }

    /// [`Registry::connect`] by the registry's domain (`docker.io`, `host:port`) and a
    /// repository path (empty for a login).
    pub(crate) async fn connect_to(
        domain: &str,
        repository: &str,
        plain_http: bool,
        credentials: Option<Credentials>,
    ) -> Result<Registry> {
        let domain = domain.to_string();
        let host = if domain == DEFAULT_DOMAIN {
            DOCKER_HUB_API
        } else {
            domain.as_str()
        };
        let loopback = is_loopback(host);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("libcontainerd-images/", env!("CARGO_PKG_VERSION")));
        if loopback {
            builder = builder.no_proxy().danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| transport("set up the HTTP client", e))?;
        let schemes: &[&str] = match (plain_http, loopback) {
            (true, _) => &["http"],
            (false, true) => &["https", "http"],
            (false, false) => &["https"],
        };
        let mut failure = None;
        for scheme in schemes {
            let base = format!("{scheme}://{host}");
            match http.get(format!("{base}/v2/")).send().await {
                Ok(_) => {
                    return Ok(Registry {
                        http,
                        base,
                        domain,
                        repository: repository.to_string(),
                        credentials,
                        access: Access::Pull,
                        authorization: Mutex::new(None),
                    })
                }
                Err(e) => failure = Some(e),
            }
        }
        let what = format!(
            "cannot reach registry {domain} over {}",
            schemes.join(" or ")
        );
        Err(match failure {
            Some(e) => transport(&what, e),
            None => Error::internal(what),
        })
    }

    /// The same client for another kind of work (see [`Access`]).
    pub(crate) fn with_access(mut self, access: Access) -> Registry {
        self.access = access;
        self
    }

    /// `<base>/v2/<repository>/<kind>/<reference>`.
    pub(crate) fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    /// A URL the registry answered with (an upload's `Location`), made absolute.
    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// GET `url` (with the manifest types accepted), answering one 401 by authenticating and
    /// asking again. Any other status is returned for the caller to judge.
    async fn get(&self, url: &str, what: &str, range_from: Option<u64>) -> Result<Response> {
        self.send(what, || {
            let request = self.http.get(url).header(ACCEPT, MANIFEST_TYPES.join(", "));
            match range_from {
                Some(from) => request.header(RANGE, format!("bytes={from}-")),
                None => request,
            }
        })
        .await
    }

    /// Send the request `build` makes (again after a 401, authenticated as the challenge asks).
    /// Any other status is returned for the caller to judge.
    pub(crate) async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        let mut refreshed = false;
        loop {
            let (response, sent) = self.send_once(what, build()).await?;
            if response.status() != StatusCode::UNAUTHORIZED || refreshed {
                return Ok(response);
            }
            refreshed = true;
            self.authenticate(&response, sent, what).await?;
        }
    }

    /// Send `request` with the current authorization, once (a streamed body cannot be sent
    /// twice): also the authorization sent, for [`Registry::authenticate`].
    pub(crate) async fn send_once(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(Response, Option<HeaderValue>)> {
        let sent = self.authorization.lock().await.clone();
        let request = match &sent {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        };
        let response = request.send().await.map_err(|e| transport(what, e))?;
        Ok((response, sent))
    }

    /// The HTTP client (for requests to other hosts, e.g. a blob's redirect).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Set the authorization a 401 asks for. When another download has already replaced the one
    /// this request sent, that newer one is tried.
    async fn authenticate(
        &self,
        response: &Response,
        sent: Option<HeaderValue>,
        what: &str,
    ) -> Result<()> {
        let mut current = self.authorization.lock().await;
        if *current != sent {
            return Ok(());
        }
        let challenge = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_challenge);
        let value = match challenge {
            Some(Challenge::Basic) => match &self.credentials {
                Some(credentials) => credentials.basic(),
                None => return Err(self.login_needed(what)),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let repository = &self.repository;
                let scope = match self.access {
                    Access::Pull => {
                        Some(scope.unwrap_or_else(|| format!("repository:{repository}:pull")))
                    }
                    Access::Push => Some(format!("repository:{repository}:pull,push")),
                    Access::Login => None,
                };
                let token = fetch_token(
                    &self.http,
                    (&realm, service.as_deref()),
                    scope.as_deref(),
                    self.credentials.as_ref(),
                )
                .await
                .map_err(|e| e.context(what))?;
                format!("Bearer {token}")
            }
            None => {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{what}: 401 Unauthorized without a challenge we know"),
                ))
            }
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            Error::invalid(format!("{what}: the credentials are not a valid header"))
        })?;
        // Kept out of debug output and HTTP/2 header compression tables.
        value.set_sensitive(true);
        *current = Some(value);
        Ok(())
    }

    pub(crate) fn login_needed(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what}: 401 Unauthorized: registry {} needs a login and there are no credentials for it",
                self.domain
            ),
        )
    }

    /// The error for a status we cannot use, with the registry's own error codes.
    pub(crate) async fn refused(&self, response: Response, what: &str) -> Error {
        let status = response.status();
        let body = read_limited(response, 64 << 10, what)
            .await
            .unwrap_or_default();
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.errors.into_iter().next())
            .map(|e| format!(" ({}: {})", e.code, e.message))
            .unwrap_or_default();
        let kind = match status.as_u16() {
            404 => ErrorKind::NotFound,
            401 if self.credentials.is_none() => return self.login_needed(what),
            401 | 403 => ErrorKind::PermissionDenied,
            429 | 502..=504 => ErrorKind::Unavailable,
            _ => ErrorKind::Unknown,
        };
        let status = match status.as_u16() {
            404 => "not found".to_string(),
            401 => "401 Unauthorized: the registry refused the credentials".to_string(),
            _ => status.to_string(),
        };
        Error::new(kind, format!("{what}: {status}{detail}"))
    }

    /// A manifest or index by tag or digest: its descriptor (media type from the answer, digest
    /// of the bytes) and its exact bytes. With `expected`, the bytes must have that digest.
    pub(crate) async fn manifest(
        &self,
        reference: &str,
        expected: Option<&str>,
    ) -> Result<(Descriptor, Vec<u8>)> {
        let what = format!("fetch manifest {reference} from {}", self.domain);
        let response = self
            .get(&self.url("manifests", reference), &what, None)
            .await?;
        if !response.status().is_success() {
            return Err(self.refused(response, &what).await);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        };
        let content_type = header("content-type");
        let announced = header("docker-content-digest");
        let data = read_limited(response, MAX_METADATA, &what).await?;
        let digest = sha256(&data);
        let promised = expected.or(announced.as_deref().filter(|d| d.starts_with("sha256:")));
        if let Some(promised) = promised {
            if promised != digest {
                return Err(Error::invalid(format!(
                    "{what}: digest mismatch: expected {promised}, content is {digest}"
                )));
            }
        }
        let media_type = match content_type {
            Some(t) if MANIFEST_TYPES.contains(&t.as_str()) => t,
            // Some registries answer application/json: the document says what it is.
            _ => media_type_of(&data).ok_or_else(|| {
                Error::invalid(format!(
                    "{what}: the answer is no manifest or index we know"
                ))
            })?,
        };
        Ok((
            Descriptor::new(&media_type, &digest, data.len() as u64),
            data,
        ))
    }

    /// A small blob (a config) whole, its digest and size checked.
    pub(crate) async fn small_blob(&self, descriptor: &Descriptor, what: &str) -> Result<Vec<u8>> {
        let response = self.blob(&descriptor.digest, 0, what).await?;
        let limit = (descriptor.size.max(0) as u64).min(MAX_METADATA);
        let data = read_limited(response, limit, what).await?;
        let digest = sha256(&data);
        if digest != descriptor.digest {
            return Err(Error::invalid(format!(
                "{what}: digest mismatch: expected {}, content is {digest}",
                descriptor.digest
            )));
        }
        Ok(data)
    }

    /// Start fetching a blob from byte `from` on. The answer is 206 with the rest, or 200 with the
    /// whole blob when the registry ignores ranges (the caller skips what it has).
    pub(crate) async fn blob(&self, digest: &str, from: u64, what: &str) -> Result<Response> {
        let range = (from > 0).then_some(from);
        let response = self.get(&self.url("blobs", digest), what, range).await?;
        match response.status() {
            StatusCode::OK => Ok(response),
            StatusCode::PARTIAL_CONTENT if range.is_some() => {
                let start = response
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(from) {
                    return Err(Error::invalid(format!(
                        "{what}: asked for bytes from {from}, the registry sent another range"
                    )));
                }
                Ok(response)
            }
            _ => Err(self.refused(response, what).await),
        }
    }
}

/// The media type a manifest document declares, or guessed from its shape.
fn media_type_of(data: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let shape: Shape = serde_json::from_slice(data).ok()?;
    match (shape.media_type, shape.manifests, shape.config) {
        (Some(t), _, _) if MANIFEST_TYPES.contains(&t.as_str()) => Some(t),
        (None, Some(_), None) => Some(media::OCI_INDEX.to_string()),
        (None, None, Some(_)) => Some(media::OCI_MANIFEST.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com:5000",
            "10.0.0.1:5000",
            "[2001:db8::1]:443",
            "localhost.example",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn media_types_from_documents() {
        assert_eq!(
            media_type_of(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media::OCI_INDEX)
        );
        assert_eq!(
            media_type_of(br#"{"schemaVersion":2,"config":{},"layers":[]}"#).as_deref(),
            Some(media::OCI_MANIFEST)
        );
        let docker = format!(
            r#"{{"mediaType":"{}","config":{{}}}}"#,
            media::DOCKER_MANIFEST
        );
        assert_eq!(
            media_type_of(docker.as_bytes()).as_deref(),
            Some(media::DOCKER_MANIFEST)
        );
        assert_eq!(media_type_of(b"{}"), None);
    }
}
