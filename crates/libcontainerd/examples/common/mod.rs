//! What the examples share: a containerd to talk to (a private one, started through
//! `libcontainerd::supervisor` in a temp dir, or one given by its address), a client in a namespace
//! of the example's own, a busybox root filesystem, an event recorder, and the cleanup that removes
//! all of it again, also when the example fails or is interrupted.
//!
//! Not an example of its own: cargo builds `examples/*.rs`, and each of those says `mod common;`.

// Each example uses a different part of this module.
#![allow(dead_code)]

/// `println!` that ignores a closed stdout (`example | head`): `println!` would panic there, and a
/// panic must not stop an example before it has cleaned up.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `say!` for stderr.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use libcontainerd::raw::{self, protos::services::v1::namespaces_client::NamespacesClient};
use libcontainerd::supervisor::{Daemon, DaemonConfig};
use libcontainerd::{
    Backend, BackendError, BoxError, Client, ClientConfig, ErrorKind, EventInfo, EventType,
};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How long any single step may take before the example gives up: generous, because a loaded
/// two-core machine can take seconds to start a shim, but bounded, so a bug never hangs a test.
pub const STEP: Duration = Duration::from_secs(60);

/// The flags every example takes (each example adds its own).
pub const COMMON_FLAGS: &str = "\
Common flags:
  --address SOCKET    use the containerd at SOCKET (env LCD_EXAMPLE_ADDRESS); default: start a
                      private containerd in a temp dir and stop it at the end
  --dir DIR           make the temp dir under DIR (env LCD_EXAMPLE_DIR, default /tmp); it is removed
  --containerd PATH   the containerd binary for the private one (env LCD_EXAMPLE_CONTAINERD)
  --busybox PATH      a static busybox for the rootfs (env LCD_EXAMPLE_BUSYBOX, default /bin/busybox)
";

const COMMON_FLAG_NAMES: [&str; 4] = ["--address", "--dir", "--containerd", "--busybox"];

/// An error as `main` reports it: the message and its causes, one per line. (`main` returning
/// `Result` prints the error with `Debug`, which for a boxed error would be a struct dump.)
pub struct Report(BoxError);

impl<E: Into<BoxError>> From<E> for Report {
    fn from(error: E) -> Self {
        Report(error.into())
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The command line, checked against the flags the example knows (each takes a value).
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parse `--flag value` and `--flag=value` pairs. `None` means `--help` was asked for (the usage
    /// is printed); an unknown flag or a missing value is an error that shows the usage.
    pub fn parse(usage: &str, own_flags: &[&str]) -> Result<Option<Args>, Report> {
        let usage = format!("{usage}\n\n{COMMON_FLAGS}");
        let known: Vec<&str> = COMMON_FLAG_NAMES.iter().chain(own_flags).copied().collect();
        let mut values = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                say!("{usage}");
                return Ok(None);
            }
            let (flag, value) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
                None => (arg.clone(), None),
            };
            if !known.contains(&flag.as_str()) {
                return Err(format!("unknown argument {arg:?}\n{usage}").into());
            }
            let value = match value.or_else(|| args.next()) {
                Some(value) => value,
                None => return Err(format!("{flag} needs a value\n{usage}").into()),
            };
            values.insert(flag, value);
        }
        Ok(Some(Args { values }))
    }

    /// `flag`'s value from the command line, else the environment variable `env` (if set and not
    /// empty).
    pub fn get(&self, flag: &str, env: &str) -> Option<String> {
        self.values
            .get(flag)
            .cloned()
            .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
    }

    /// `flag`'s value parsed as a number, or `default`.
    pub fn number(&self, flag: &str, env: &str, default: usize) -> Result<usize, Report> {
        match self.get(flag, env) {
            Some(text) => text
                .parse()
                .map_err(|_| format!("{flag} {text:?}: expected a number").into()),
            None => Ok(default),
        }
    }
}

/// A containerd, a client in a namespace of the example's own, and a busybox rootfs, all made in a
/// temp dir. [`Env::cleanup`] removes everything again.
pub struct Env {
    /// The client every example call goes through.
    pub client: Client,
    /// The busybox root filesystem the containers run in.
    pub rootfs: PathBuf,
    /// The example's own namespace, so nothing else in containerd is touched.
    pub namespace: String,
    /// Where bundle directories (FIFOs) are made: must be empty after cleanup.
    pub bundles: PathBuf,
    /// `Some` when the example started containerd itself (and so stops it).
    daemon: Option<Daemon>,
    dir: tempfile::TempDir,
}

/// What [`Env::cleanup`] found and removed.
pub struct Cleaned {
    /// Containers that were still there and were removed.
    pub removed: usize,
    /// Containers still in the namespace afterwards (must be 0).
    pub containers_left: usize,
    /// Files left in the bundle root afterwards (must be 0).
    pub files_left: usize,
}

impl Env {
    /// Set everything up for example `name` (the namespace is `<name>-<pid>`). Needs root:
    /// containerd, runc and the cgroups all do.
    pub async fn setup(name: &str, args: &Args) -> Result<Env, Report> {
        if !nix::unistd::geteuid().is_root() {
            return Err("this example runs containers: run it as root".into());
        }
        let parent = PathBuf::from(
            args.get("--dir", "LCD_EXAMPLE_DIR")
                .unwrap_or_else(|| "/tmp".into()),
        );
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("create {}: {e}", parent.display()))?;
        // A short prefix: containerd's sockets live under it and unix socket paths stop at 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("lcdex")
            .tempdir_in(&parent)
            .map_err(|e| format!("make a temp dir in {}: {e}", parent.display()))?;
        // The rootfs first: it needs no containerd, so a missing busybox fails before anything runs.
        let rootfs = dir.path().join("rootfs");
        let busybox = args
            .get("--busybox", "LCD_EXAMPLE_BUSYBOX")
            .unwrap_or_else(|| libcontainerd::rootfs::DEFAULT_BUSYBOX.into());
        libcontainerd::rootfs::busybox(&rootfs, Path::new(&busybox))?;

        let (address, daemon) = match args.get("--address", "LCD_EXAMPLE_ADDRESS") {
            Some(address) => (PathBuf::from(address), None),
            None => {
                let mut config = DaemonConfig::new(dir.path().join("root"), dir.path().join("run"));
                if let Some(binary) = args.get("--containerd", "LCD_EXAMPLE_CONTAINERD") {
                    config.binary = binary.into();
                }
                let daemon = Daemon::new(config);
                daemon.ensure_running().await?;
                (daemon.config().socket(), Some(daemon))
            }
        };
        let namespace = format!("{name}-{}", std::process::id());
        let bundles = dir.path().join("bundles");
        let config = ClientConfig::new(&address, namespace.clone(), &bundles);
        let client = match Client::connect(config).await {
            Ok(client) => client,
            Err(e) => {
                // Nothing runs in it yet; a containerd we started must not outlive the example.
                if let Some(daemon) = &daemon {
                    let _ = daemon.stop().await;
                }
                return Err(e.into());
            }
        };
        Ok(Env {
            client,
            rootfs,
            namespace,
            bundles,
            daemon,
            dir,
        })
    }

    /// One line about the containerd in use.
    pub async fn describe(&self) -> Result<String, Report> {
        let version = self.client.version().await?;
        let which = match &self.daemon {
            Some(_) => format!("private, in {}", self.dir.path().display()),
            None => format!("at {}", self.client.address().display()),
        };
        Ok(format!(
            "containerd {} ({which}), namespace {}",
            version.version, self.namespace
        ))
    }

    /// A fresh client on the same containerd, namespace and bundle root: what an engine has after
    /// it restarted.
    pub async fn fresh_client(&self) -> Result<Client, Report> {
        let config =
            ClientConfig::new(self.client.address(), self.namespace.clone(), &self.bundles);
        Ok(Client::connect(config).await?)
    }

    /// Remove every task and container of the namespace, the namespace itself (on a containerd
    /// we did not start), runc's and the cgroups' leftovers of the namespace, stop a containerd we
    /// started, and remove the temp dir. Goes on after a failure, so as much as possible is gone;
    /// the first error is returned.
    pub async fn cleanup(self) -> Result<Cleaned, Report> {
        let mut first_error: Option<Report> = None;
        let mut note = |e: Report| {
            say_err!("cleanup: {e:?}");
            first_error.get_or_insert(e);
        };
        let removed = match remove_all(&self.client).await {
            Ok(n) => n,
            Err(e) => {
                note(e);
                0
            }
        };
        let containers_left = match self.client.list_containers().await {
            Ok(left) => left.len(),
            Err(e) => {
                note(e.into());
                0
            }
        };
        let files_left = count_files(&self.bundles);
        if self.daemon.is_none() {
            // Someone else's containerd: leave no empty namespace behind in it.
            if let Err(e) = delete_namespace(&self.client).await {
                note(e);
            }
        }
        if let Some(daemon) = &self.daemon {
            if let Err(e) = daemon.stop().await {
                note(e.into());
            }
        }
        remove_namespace_dirs(&self.namespace);
        let dir = self.dir.path().to_path_buf();
        if let Err(e) = self.dir.close() {
            note(format!("remove {}: {e}", dir.display()).into());
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(Cleaned {
                removed,
                containers_left,
                files_left,
            }),
        }
    }
}

impl Cleaned {
    /// The line the examples print, and an error if anything was left.
    pub fn report(&self, program: &str) -> Result<(), Report> {
        say!(
            "{program}: cleaned up: {} containers removed at the end, {} left, {} files left in the bundle dir",
            self.removed, self.containers_left, self.files_left
        );
        if self.containers_left > 0 || self.files_left > 0 {
            return Err(format!("{program}: cleanup left things behind").into());
        }
        Ok(())
    }
}

/// SIGINT and SIGTERM, caught from the start of `main`: a signal during [`Env::setup`] (which may
/// be starting containerd) waits until setup is done, then stops the body, and cleanup still runs.
/// Without this, the default action would kill the example and leave containerd and the temp dir.
pub struct Interrupts {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Catch SIGINT and SIGTERM from now on.
    pub fn catch() -> Result<Interrupts, Report> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Interrupts {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Run the example's body until it ends or a signal comes (also one that came earlier): the
    /// body's future is then dropped (the library undoes the calls that were under way) and the
    /// caller cleans up.
    pub async fn around<T>(
        &mut self,
        body: impl Future<Output = Result<T, Report>>,
    ) -> Result<T, Report> {
        tokio::select! {
            result = catch_unwind(body) => result,
            _ = self.interrupt.recv() => Err("interrupted (SIGINT)".into()),
            _ = self.terminate.recv() => Err("terminated (SIGTERM)".into()),
        }
    }
}

/// `body`, with a panic inside it turned into an error (the panic hook has printed it already), so
/// that the example still cleans up. After a panic the body is never polled again, only dropped:
/// hence no unwind safety is needed of it.
async fn catch_unwind<T>(body: impl Future<Output = Result<T, Report>>) -> Result<T, Report> {
    let mut body = std::pin::pin!(body);
    std::future::poll_fn(|cx| {
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body.as_mut().poll(cx)));
        polled.unwrap_or_else(|_| std::task::Poll::Ready(Err("the example panicked".into())))
    })
    .await
}

/// The example's outcome after cleanup: the body's error first (it is what went wrong), then the
/// cleanup's.
pub fn finish<T>(
    program: &str,
    outcome: Result<T, Report>,
    cleaned: Result<Cleaned, Report>,
) -> Result<T, Report> {
    let cleaned = cleaned.and_then(|c| c.report(program));
    let value = outcome?;
    cleaned?;
    Ok(value)
}

/// `step` within [`STEP`], or an error naming `what`.
pub async fn within<T, E: Into<BoxError>>(
    what: &str,
    step: impl Future<Output = Result<T, E>>,
) -> Result<T, Report> {
    match tokio::time::timeout(STEP, step).await {
        Ok(result) => result.map_err(|e| Report(e.into())),
        Err(_) => Err(format!("{what}: no answer within {STEP:?}").into()),
    }
}

/// Read from `reader` until the text read so far contains `needle`; returns all of it. For output
/// that does not end by itself (a terminal, a process waiting for input).
pub async fn read_until(
    reader: &mut (impl AsyncRead + Unpin),
    needle: &str,
) -> Result<String, Report> {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = within(&format!("read {needle:?}"), reader.read(&mut buf)).await?;
        if n == 0 {
            return Err(format!("the output ended before {needle:?}; got {seen:?}").into());
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Ok(seen)
}

/// Read `reader` to its end (nothing when there is no reader).
pub async fn read_all(reader: Option<impl AsyncRead + Unpin>) -> Result<Vec<u8>, Report> {
    let mut bytes = Vec::new();
    if let Some(mut reader) = reader {
        within("read output", reader.read_to_end(&mut bytes)).await?;
    }
    Ok(bytes)
}

/// One event as the [`Recorder`] saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its type.
    pub event: EventType,
    /// Its details.
    pub info: EventInfo,
}

/// A [`Backend`] that keeps every event per container (and, with `echo`, prints it as it comes).
pub struct Recorder {
    echo: bool,
    events: Mutex<HashMap<String, Vec<Seen>>>,
    /// Bumped after each event, so that waiters re-check without polling.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Recorder {
    /// A recorder; with `echo`, each event is also printed as `event <container>#<n> ...`.
    pub fn new(echo: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            echo,
            events: Mutex::default(),
            changed: tokio::sync::watch::channel(0).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Seen>>> {
        // Only a panic inside `process_event` could poison it; the events are still worth showing.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The events of `container`, in the order the backend was handed them.
    pub fn of(&self, container: &str) -> Vec<Seen> {
        self.lock().get(container).cloned().unwrap_or_default()
    }

    /// The event types of `container` as one line: `create start exit`.
    pub fn line(&self, container: &str) -> String {
        let names: Vec<&str> = self
            .of(container)
            .iter()
            .map(|s| s.event.as_str())
            .collect();
        names.join(" ")
    }

    /// Whether the init exit of `container` has reached the backend.
    pub fn has_init_exit(&self, container: &str) -> bool {
        self.of(container)
            .iter()
            .any(|s| s.event == EventType::Exit && s.info.is_init())
    }

    /// Wait until `done` holds, at most `limit`; false if it never did. An `ExitWait` resolves when
    /// the monitor decides on an exit, the backend is handed it a moment later: this bridges that.
    pub async fn wait_until(&self, limit: Duration, done: impl Fn(&Recorder) -> bool) -> bool {
        let mut changed = self.changed.subscribe();
        let waited = tokio::time::timeout(limit, changed.wait_for(|_| done(self))).await;
        matches!(waited, Ok(Ok(_)))
    }
}

impl Backend for Recorder {
    fn process_event(
        &self,
        container_id: &str,
        event: EventType,
        info: EventInfo,
    ) -> Result<(), BackendError> {
        let n = {
            let mut events = self.lock();
            let list = events.entry(container_id.to_string()).or_default();
            list.push(Seen {
                event,
                info: info.clone(),
            });
            list.len()
        };
        if self.echo {
            let mut line = format!("event {container_id}#{n} {event}");
            if !info.is_init() && !info.process_id.is_empty() {
                line.push_str(&format!(" process={}", info.process_id));
            }
            if info.pid != 0 {
                line.push_str(&format!(" pid={}", info.pid));
            }
            if event == EventType::Exit {
                line.push_str(&format!(" code={}", info.exit_code));
            }
            say!("{line}");
        }
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// Kill and delete every task of the namespace and delete every container; returns how many
/// containers there were.
async fn remove_all(client: &Client) -> Result<usize, Report> {
    let containers = client.list_containers().await?;
    for info in &containers {
        let container = match client.load_container(&info.id).await {
            Ok(container) => container,
            // Deleted meanwhile (by the example's own cleanup racing this one): nothing to do.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        match container.task().await {
            Ok(task) => task.force_delete().await?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        match container.delete().await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(containers.len())
}

/// Delete the (now empty) namespace from containerd, through `raw`: the library does not wrap the
/// Namespaces service.
async fn delete_namespace(client: &Client) -> Result<(), Report> {
    let request = raw::protos::services::v1::DeleteNamespaceRequest {
        name: client.namespace().to_string(),
    };
    match NamespacesClient::new(raw::channel(client))
        .delete(raw::Request::new(request))
        .await
    {
        Ok(_) => Ok(()),
        Err(status) => {
            let error =
                raw::error_from_status(format!("delete namespace {}", client.namespace()), status);
            // Never created (nothing ran in it) is as good as deleted.
            if error.kind() == ErrorKind::NotFound {
                Ok(())
            } else {
                Err(error.into())
            }
        }
    }
}

/// runc's state dir and the cgroup parent of a namespace outlive its last container: remove them
/// (rmdir only: it never removes a live container's state or cgroup).
fn remove_namespace_dirs(namespace: &str) {
    let _ = std::fs::remove_dir(Path::new("/run/containerd/runc").join(namespace));
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(namespace));
    if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
        for controller in controllers.flatten() {
            let _ = std::fs::remove_dir(controller.path().join(namespace));
        }
    }
}

/// Files (of any kind) under `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                1 + count_files(&path)
            } else {
                1
            }
        })
        .sum()
}
