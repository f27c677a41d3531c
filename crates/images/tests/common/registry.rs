//! A real registry for pull tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with
//! a config of its own in a temp dir (never the packaged /etc/docker/registry/config.yml, which
//! turns on htpasswd and listens on all interfaces), stopped by PID when dropped. Images are
//! pushed through the HTTP API (blob upload POST + PUT, manifest PUT). A small "front" server can
//! stand between the client and the registry to cut a blob mid-way or to demand Bearer tokens.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::image::{Fixture, Image};
use libcontainerd_images::digest::sha256;

pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub struct Registry {
    pub addr: String,
    /// `https` with a self-signed certificate, else `http`.
    pub scheme: &'static str,
    pub storage: PathBuf,
    /// user and password when htpasswd auth is on.
    pub login: Option<(String, String)>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// A registry (no login) holding `fixture`'s app image as `fixture/app:1`: what most pull
    /// tests start from.
    pub async fn with_app(fixture: &Fixture) -> Registry {
        let registry = Registry::start(None).await;
        let manifest = registry
            .push_image("fixture/app", fixture, &fixture.app)
            .await;
        registry
            .push_manifest("fixture/app", "1", OCI_MANIFEST, &manifest)
            .await;
        registry
    }

    pub async fn start(login: Option<(&str, &str)>) -> Registry {
        Registry::start_with(login, false).await
    }

    /// With `tls`, the registry serves HTTPS with a self-signed certificate for 127.0.0.1 (made
    /// by `openssl req`), which no client trusts.
    pub async fn start_with(login: Option<(&str, &str)>, tls: bool) -> Registry {
        assert!(
            Path::new(REGISTRY_BINARY).exists(),
            "{REGISTRY_BINARY} missing: install Debian's docker-registry (.ci/install)"
        );
        let dir = tempfile::Builder::new()
            .prefix("lcdreg")
            .tempdir()
            .expect("tmp");
        let storage = dir.path().join("storage");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            storage.display()
        );
        if tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            let status = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
                .args(["-addext", "subjectAltName=IP:127.0.0.1"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(Stdio::null())
                .status()
                .expect("openssl");
            assert!(status.success(), "openssl req");
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some((user, password)) = login {
            let hash = bcrypt::hash(password, 4).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("config");
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            addr,
            scheme: if tls { "https" } else { "http" },
            storage,
            login: login.map(|(u, p)| (u.to_string(), p.to_string())),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(&registry.addr)
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the registry did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        registry
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .expect("client");
        let request = client.request(method, url);
        match &self.login {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Monolithic upload: POST for a session, PUT the bytes with their digest.
    pub async fn push_blob(&self, repository: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let response = self
            .request(
                reqwest::Method::POST,
                &self.url(&format!("/v2/{repository}/blobs/uploads/")),
            )
            .send()
            .await
            .expect("start upload");
        assert_eq!(response.status(), 202, "start upload");
        let location = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 201, "upload {digest}");
        digest
    }

    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        data: &[u8],
    ) -> String {
        let response = self
            .request(
                reqwest::Method::PUT,
                &self.url(&format!("/v2/{repository}/manifests/{reference}")),
            )
            .header("content-type", media_type)
            .body(data.to_vec())
            .send()
            .await
            .expect("put manifest");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 201, "put manifest {repository}:{reference}: {body}");
        sha256(data)
    }

    /// Push each `(fixture, architecture)`'s app image under `repository` (its manifest by
    /// digest) and an OCI index of them tagged `tag`: the index's entries, in that order, and the
    /// index's digest.
    pub async fn push_index(
        &self,
        repository: &str,
        tag: &str,
        platforms: &[(&Fixture, &str)],
    ) -> (Vec<serde_json::Value>, String) {
        let mut entries = vec![];
        for (fixture, arch) in platforms {
            let manifest = self.push_image(repository, fixture, &fixture.app).await;
            let digest = self
                .push_manifest(repository, &sha256(&manifest), OCI_MANIFEST, &manifest)
                .await;
            entries.push(
                json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len(),
                "platform": {"architecture": arch, "os": "linux"}}),
            );
        }
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        )
        .expect("json");
        let digest = self.push_manifest(repository, tag, OCI_INDEX, &index).await;
        (entries, digest)
    }

    /// Push a fixture image's blobs and an OCI manifest for it; returns the manifest's bytes.
    pub async fn push_image(&self, repository: &str, fixture: &Fixture, image: &Image) -> Vec<u8> {
        let mut layers = vec![];
        for &i in &image.layers {
            let layer = &fixture.layers[i];
            self.push_blob(repository, &layer.blob).await;
            layers.push(json!({"mediaType": layer.oci_type(), "digest": layer.digest(), "size": layer.blob.len()}));
        }
        self.push_blob(repository, &image.config).await;
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&image.config), "size": image.config.len()},
            "layers": layers,
        }))
        .expect("json")
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the front does besides forwarding.
#[derive(Clone, Default)]
pub struct FrontConfig {
    /// Close the connection after half of the first answers for this blob...
    pub cut_blob: Option<String>,
    /// ...this many times (1 when 0).
    pub cut_times: usize,
    /// Demand `Bearer <token>`, handing it out at `/token` to these Basic credentials (or to
    /// anyone when `None`).
    pub bearer: Option<(String, Option<(String, String)>)>,
    /// Send half of the first answer for this blob, then hold the connection until
    /// [`Front::release`] (then close it, as a cut).
    pub hold_blob: Option<String>,
}

/// A tiny HTTP/1.1 server that forwards requests (GETs, and a push's HEAD, POST, PUT with their
/// bodies) to a registry, one request per connection; upload locations point back at it.
pub struct Front {
    pub addr: String,
    /// Request lines seen, with their Range and Authorization headers.
    pub seen: Arc<Mutex<Vec<String>>>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    pub async fn start(upstream: &str, config: FrontConfig) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let seen = Arc::new(Mutex::new(vec![]));
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            addr: addr.clone(),
            config,
            seen: seen.clone(),
            cuts: Mutex::new(0),
            holding: std::sync::atomic::AtomicBool::new(false),
            held: std::sync::atomic::AtomicBool::new(false),
            release: tokio::sync::watch::channel(false).0,
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        Front {
            addr,
            seen,
            state,
            task,
        }
    }

    /// Wait until the front holds the `hold_blob` connection, half of the blob sent.
    pub async fn wait_held(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.state.held.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the front never held the blob");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Close the held connection (and hold no more).
    pub fn release(&self) {
        self.state.release.send_replace(true);
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    upstream: String,
    addr: String,
    config: FrontConfig,
    seen: Arc<Mutex<Vec<String>>>,
    cuts: Mutex<usize>,
    /// A connection was chosen to be held (only the first is).
    holding: std::sync::atomic::AtomicBool,
    /// Half of the held blob is sent.
    held: std::sync::atomic::AtomicBool,
    release: tokio::sync::watch::Sender<bool>,
}

async fn serve(mut stream: tokio::net::TcpStream, state: Arc<State>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        // A TLS handshake (a client trying HTTPS first): answer as Go's HTTP server does.
        if head == [0x16] {
            let _ = stream.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n").await;
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("GET / HTTP/1.1");
    let method = request_line.split(' ').next().unwrap_or("GET").to_string();
    let target = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let (range, authorization) = (header("range"), header("authorization"));
    let length: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut request_body = vec![0u8; length];
    if stream.read_exact(&mut request_body).await.is_err() {
        return;
    }
    state.seen.lock().expect("lock").push(format!(
        "{method} {target} range={} auth={}",
        range.as_deref().unwrap_or("-"),
        authorization.as_deref().unwrap_or("-")
    ));
    if let Some((token, login)) = &state.config.bearer {
        if target.starts_with("/token") {
            let allowed = match login {
                None => true,
                Some((user, password)) => {
                    use base64::Engine as _;
                    let basic = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{password}"));
                    authorization.as_deref() == Some(&format!("Basic {basic}"))
                }
            };
            let (status, body) = if allowed {
                ("200 OK", json!({"token": token}).to_string())
            } else {
                ("401 Unauthorized", "{}".to_string())
            };
            respond(
                &mut stream,
                status,
                &[("content-type", "application/json".into())],
                body.as_bytes(),
            )
            .await;
            return;
        }
        if authorization.as_deref() != Some(&format!("Bearer {token}")) {
            let challenge = format!(
                "Bearer realm=\"http://{}/token\",service=\"front\",scope=\"repository:fixture/app:pull\"",
                state.addr
            );
            let body =
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            respond(
                &mut stream,
                "401 Unauthorized",
                &[("www-authenticate", challenge)],
                body,
            )
            .await;
            return;
        }
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{}{target}", state.upstream))
        .body(request_body);
    for name in ["accept", "range", "content-type"] {
        if let Some(value) = header(name) {
            request = request.header(name, value);
        }
    }
    let Ok(response) = request.send().await else {
        return;
    };
    let status = response.status();
    let mut headers = vec![];
    for name in [
        "content-type",
        "docker-content-digest",
        "content-range",
        "location",
    ] {
        if let Some(v) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            // An upload's next request must come back through the front.
            let v = v.replace(
                &format!("//{}/", state.upstream),
                &format!("//{}/", state.addr),
            );
            headers.push((name, v));
        }
    }
    let body = response.bytes().await.unwrap_or_default();
    let status_line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let cut = match &state.config.cut_blob {
        Some(digest) if target.ends_with(&format!("/blobs/{digest}")) => {
            let mut cuts = state.cuts.lock().expect("lock");
            *cuts += 1;
            *cuts <= state.config.cut_times.max(1)
        }
        _ => false,
    };
    let hold = match &state.config.hold_blob {
        Some(digest) if target.ends_with(&format!("/blobs/{digest}")) => !state
            .holding
            .swap(true, std::sync::atomic::Ordering::SeqCst),
        _ => false,
    };
    if cut || hold {
        // The full length announced, half of it sent, then the connection closes.
        let mut out = format!(
            "HTTP/1.1 {status_line}\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in &headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let _ = stream.write_all(out.as_bytes()).await;
        let _ = stream.write_all(&body[..body.len() / 2]).await;
        let _ = stream.flush().await;
        if hold {
            let mut release = state.release.subscribe();
            state.held.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = release.wait_for(|r| *r).await;
        }
        let _ = stream.shutdown().await;
        return;
    }
    respond(&mut stream, &status_line, &headers, &body).await;
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}
