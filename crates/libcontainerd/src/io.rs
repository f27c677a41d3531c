//! Process stdio: FIFO sets in the bundle directory, direct async handles, and the stdin close handshake.
//!
//! containerd's runc shim (1.6) connects a process to named pipes whose paths the client passes on create.
//! The order matters: the stdout/stderr readers must be open *before* `Tasks.Create` (the shim opens the
//! write side while creating and blocks until a reader exists), and the stdin writer can only be opened
//! *after* it (before the shim holds the read side, an `O_WRONLY` open fails with `ENXIO`).
//!
//! Closing stdin takes two steps: close our end of the FIFO and ask containerd to close the process's
//! side (`CloseIO`), which is only possible once the process exists. [`Stdin`] remembers a close that
//! was asked for too early and carries it out as soon as the process is there.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::net::unix::pipe;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};

/// Where a process's output goes.
///
/// | variant | stdout | stderr | someone must stay attached |
/// |---|---|---|---|
/// | `Pipe` (default) | [`OutputReader`] | [`OutputReader`] | yes |
/// | `PipeStdout` | [`OutputReader`] | discarded | yes |
/// | `PipeStderr` | discarded | [`OutputReader`] | yes |
/// | `Null` | discarded | discarded | no |
/// | `File` | the file | the same file | no |
/// | `Binary` | the logger | the logger | no |
///
/// A piped stream can never block the process for good: an [`OutputReader`] that is dropped
/// unread keeps draining its stream until the process ends (see there).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Output {
    /// Both streams through FIFOs read by this process ([`DirectIo`]).
    #[default]
    Pipe,
    /// stdout through a FIFO, stderr discarded.
    PipeStdout,
    /// stderr through a FIFO, stdout discarded (with a terminal there is no stderr: nothing is piped).
    PipeStderr,
    /// The shim appends stdout and stderr to this file (containerd's `file://` IO); nobody needs to stay
    /// attached, so the container may outlive the caller.
    ///
    /// Lossy, by containerd's own code (1.6 and 1.7): the shim shares one descriptor between the
    /// two streams but lets the stdout copier close it, so whatever stderr writes after stdout has
    /// ended (a process that closes stdout early, or the tail of stderr racing the exit) is lost.
    /// [`Output::Binary`] with a logger that writes the file has no such gap.
    File(PathBuf),
    /// A logging binary the shim starts for the process (containerd's `binary://` IO): it gets the
    /// process's stdout and stderr as fds 3 and 4, closes fd 5 once ready, and the environment
    /// variables CONTAINER_ID and CONTAINER_NAMESPACE. containerd passes each `args` pair to it as
    /// two arguments (in no set order when there are several pairs). Like `File`, nobody needs to
    /// stay attached.
    Binary {
        /// The logger's absolute path.
        path: PathBuf,
        /// Argument pairs.
        args: Vec<(String, String)>,
    },
    /// Discard output.
    Null,
}

/// How to connect a process's stdio.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioConfig {
    /// Give the process a stdin FIFO.
    pub stdin: bool,
    /// The process has a terminal: one output stream, no stderr.
    pub terminal: bool,
    /// Where output goes.
    pub output: Output,
}

/// The FIFO paths of one process: `<bundle>/<process id>-stdin|-stdout|-stderr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FifoSet {
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
}

/// The stdio strings containerd records for a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The URI of an output the shim handles itself (`file://`, `binary://`); `None` for FIFOs or none.
fn shim_uri(output: &Output) -> Option<String> {
    match output {
        Output::File(path) => Some(format!("file://{}", path.display())),
        Output::Binary { path, args } => Some(binary_uri(path, args)),
        Output::Pipe | Output::PipeStdout | Output::PipeStderr | Output::Null => None,
    }
}

/// `binary://PATH?K=V&...`, percent-encoded so that containerd (Go's url.Parse and
/// QueryUnescape, which reads `+` as a space) gives back exactly `path` and `args`.
fn binary_uri(path: &Path, args: &[(String, String)]) -> String {
    fn encode(text: &str, keep_slash: bool) -> String {
        let mut out = String::with_capacity(text.len());
        for &b in text.as_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    let mut uri = format!("binary://{}", encode(&path.to_string_lossy(), true));
    for (i, (key, value)) in args.iter().enumerate() {
        uri.push(if i == 0 { '?' } else { '&' });
        uri.push_str(&encode(key, false));
        uri.push('=');
        uri.push_str(&encode(value, false));
    }
    uri
}

/// Where a discarded stream goes when the other one is piped.
const DEV_NULL: &str = "/dev/null";

fn fifo_path(dir: &Path, process_id: &str, stream: &str) -> PathBuf {
    dir.join(format!("{process_id}-{stream}"))
}

impl FifoSet {
    /// The FIFOs `config` needs for process `process_id` in `dir`.
    pub fn plan(dir: &Path, process_id: &str, config: &StdioConfig) -> FifoSet {
        let (stdout, stderr) = match config.output {
            Output::Pipe => (true, true),
            Output::PipeStdout => (true, false),
            Output::PipeStderr => (false, true),
            Output::Null | Output::File(_) | Output::Binary { .. } => (false, false),
        };
        FifoSet {
            stdin: config.stdin.then(|| fifo_path(dir, process_id, "stdin")),
            stdout: stdout.then(|| fifo_path(dir, process_id, "stdout")),
            stderr: (stderr && !config.terminal).then(|| fifo_path(dir, process_id, "stderr")),
        }
    }

    /// The strings to pass to containerd for these FIFOs and `config`.
    pub fn stdio_paths(&self, config: &StdioConfig) -> StdioPaths {
        let text = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let (stdout, stderr) = match shim_uri(&config.output) {
            // The shim writes both streams for file:// and binary:// (it ignores stderr's URI), and
            // an exec needs all stdio paths or none, so pass the same URI twice.
            Some(uri) => (
                uri.clone(),
                if config.terminal { String::new() } else { uri },
            ),
            // No FIFO at all: empty paths, which the shim reads as no IO.
            None if self.paths().next().is_none() => (String::new(), String::new()),
            // Some FIFO: the shim then wants a path for every output (an empty one fails create
            // with `opening file ""`), and copies into a non-FIFO path as into a file.
            None => {
                let or_null = |p: &Option<PathBuf>| match p {
                    Some(_) => text(p),
                    None => DEV_NULL.to_string(),
                };
                let stderr = if config.terminal {
                    String::new()
                } else {
                    or_null(&self.stderr)
                };
                (or_null(&self.stdout), stderr)
            }
        };
        StdioPaths {
            stdin: text(&self.stdin),
            stdout,
            stderr,
            terminal: config.terminal,
        }
    }

    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.stdin, &self.stdout, &self.stderr]
            .into_iter()
            .flatten()
    }

    /// Make the FIFOs (mode 0700), replacing stale ones left by a crash.
    pub fn create(&self) -> Result<()> {
        for path in self.paths() {
            remove_if_present(path)?;
            nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).map_err(|e| {
                Error::io(
                    format!("create fifo {}", path.display()),
                    std::io::Error::from(e),
                )
            })?;
        }
        Ok(())
    }

    /// Remove the FIFOs; missing ones are fine.
    pub fn remove(&self) -> Result<()> {
        let mut first_error = None;
        for path in self.paths() {
            if let Err(e) = remove_if_present(path) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Open the output readers; must happen before the process is created.
    pub fn open_readers(&self) -> Result<(Option<OutputReader>, Option<OutputReader>)> {
        let open = |p: &Option<PathBuf>| -> Result<Option<OutputReader>> {
            p.as_ref()
                .map(|p| {
                    pipe::OpenOptions::new()
                        .open_receiver(p)
                        .map(OutputReader::new)
                        .map_err(|e| Error::io(format!("open fifo {}", p.display()), e))
                })
                .transpose()
        };
        Ok((open(&self.stdout)?, open(&self.stderr)?))
    }

    /// Open the stdin writer (after create). Opened read-write: the shim opens its read side on a
    /// goroutine of its own, which may not have run yet when Create returns, and a write-only
    /// non-blocking open then fails with ENXIO (seen in CI). Holding a read side ourselves makes the
    /// open independent of that race; we never read from it, and end of file reaches the process
    /// through CloseIO, not through the writers closing (the shim holds a writer of its own anyway).
    pub fn open_stdin(&self) -> Result<Option<pipe::Sender>> {
        self.stdin
            .as_ref()
            .map(|p| {
                pipe::OpenOptions::new()
                    .read_write(true)
                    .open_sender(p)
                    .map_err(|e| Error::io(format!("open fifo {}", p.display()), e))
            })
            .transpose()
    }
}

/// The FIFO set recorded for process `process_id` in `dir`, for cleanup: every stream, present or not.
pub(crate) fn all_fifos(dir: &Path, process_id: &str) -> FifoSet {
    FifoSet {
        stdin: Some(fifo_path(dir, process_id, "stdin")),
        stdout: Some(fifo_path(dir, process_id, "stdout")),
        stderr: Some(fifo_path(dir, process_id, "stderr")),
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("remove {}", path.display()), e)),
    }
}

/// Direct handles on a process's stdio, given to the attach callback.
///
/// Output handles reach end of file once the process has exited and the shim has flushed its output.
/// Dropping any of them is always safe: stdin then delivers end of file, and an output reader keeps
/// draining its stream, so the process never blocks on output nobody reads.
#[derive(Debug, Default)]
pub struct DirectIo {
    /// The process's stdin, if it was asked for.
    pub stdin: Option<Stdin>,
    /// The process's stdout (with a terminal: the terminal's output).
    pub stdout: Option<OutputReader>,
    /// The process's stderr (never with a terminal).
    pub stderr: Option<OutputReader>,
}

/// One output stream of a process: an async reader of its FIFO.
///
/// The shim keeps a read side of every output FIFO open itself (so that a client going away does
/// not kill the process with SIGPIPE), which means that output nobody reads fills the FIFO and then
/// blocks the process, forever. So a reader dropped before end of file does not just close: it
/// hands the FIFO to a task that reads and discards the rest until the process ends (on the
/// current tokio runtime, or on a thread of its own outside one). [`OutputReader::detach`] lets go
/// without draining, for a caller that re-attaches later and wants the output kept in the FIFO
/// meanwhile (64 KiB of it, after which the process blocks until someone reads).
pub struct OutputReader {
    pipe: Option<pipe::Receiver>,
}

impl std::fmt::Debug for OutputReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputReader")
            .field("open", &self.pipe.is_some())
            .finish()
    }
}

impl OutputReader {
    fn new(pipe: pipe::Receiver) -> Self {
        OutputReader { pipe: Some(pipe) }
    }

    /// Close this reader without draining: output stays in the FIFO for a later reader.
    pub fn detach(mut self) {
        self.pipe = None;
    }
}

impl Drop for OutputReader {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            drain(pipe);
        }
    }
}

/// Read `pipe` to its end and throw the bytes away, in the background.
fn drain(mut pipe: pipe::Receiver) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
        });
        return;
    }
    // No runtime (dropped from plain code or while a runtime shuts down): a blocking read on a
    // thread. Should even that fail, the FIFO closes and the process may block: log it.
    let spawned = pipe.into_blocking_fd().and_then(|fd| {
        std::thread::Builder::new()
            .name("lcd-drain".into())
            .spawn(move || {
                let _ = std::io::copy(&mut std::fs::File::from(fd), &mut std::io::sink());
            })
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot drain an output stream nobody reads");
    }
}

impl tokio::io::AsyncRead for OutputReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.pipe.as_mut() {
            Some(pipe) => Pin::new(pipe).poll_read(cx, buf),
            // Detached readers are consumed, so this is unreachable; end of file is the honest answer.
            None => Poll::Ready(Ok(())),
        }
    }
}

/// The process whose stdin `CloseIO` closes.
#[derive(Clone)]
pub(crate) struct CloseTarget {
    pub client: Client,
    pub container_id: String,
    pub exec_id: String,
}

impl CloseTarget {
    async fn close_io(&self) -> Result<()> {
        let request = containerd_client::services::v1::CloseIoRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            stdin: true,
        };
        match self
            .client
            .tasks()
            .close_io(self.client.request(request))
            .await
        {
            Ok(_) => Ok(()),
            // The process is gone already: its stdin is closed with it.
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::from_status(
                format!("close stdin of {}", self.describe()),
                s,
            )),
        }
    }

    fn describe(&self) -> String {
        if self.exec_id.is_empty() {
            format!("container {}", self.container_id)
        } else {
            format!("exec {} in container {}", self.exec_id, self.container_id)
        }
    }
}

enum CloseState {
    /// The process does not exist yet; `requested` records a close asked for meanwhile.
    Waiting { requested: bool },
    /// The process exists; a close can be sent now.
    Ready(CloseTarget),
    /// `CloseIO` was sent (or is being sent).
    Done,
}

/// Shared between a [`Stdin`] and the code that learns when its process exists.
#[derive(Clone)]
pub(crate) struct StdinCloser {
    state: Arc<Mutex<CloseState>>,
}

impl StdinCloser {
    pub fn new() -> Self {
        StdinCloser {
            state: Arc::new(Mutex::new(CloseState::Waiting { requested: false })),
        }
    }

    /// A closer for a process that exists already (e.g. after re-attaching).
    pub fn ready(target: CloseTarget) -> Self {
        StdinCloser {
            state: Arc::new(Mutex::new(CloseState::Ready(target))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CloseState> {
        // A panic while holding this lock cannot leave the state half-written: recover it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The process now exists. Sends `CloseIO` at once if stdin was closed before.
    pub async fn process_ready(&self, target: CloseTarget) -> Result<()> {
        let pending = {
            let mut state = self.lock();
            match &*state {
                CloseState::Waiting { requested: true } => {
                    *state = CloseState::Done;
                    true
                }
                CloseState::Waiting { requested: false } => {
                    *state = CloseState::Ready(target.clone());
                    false
                }
                CloseState::Ready(_) | CloseState::Done => false,
            }
        };
        if pending {
            target.close_io().await
        } else {
            Ok(())
        }
    }

    /// Take the target if a close should be sent now; otherwise remember the request.
    fn take_for_close(&self) -> Option<CloseTarget> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, CloseState::Done) {
            CloseState::Ready(target) => Some(target),
            CloseState::Waiting { .. } => {
                *state = CloseState::Waiting { requested: true };
                None
            }
            CloseState::Done => None,
        }
    }

    async fn close(&self) -> Result<()> {
        match self.take_for_close() {
            Some(target) => target.close_io().await,
            None => Ok(()),
        }
    }
}

/// A process's stdin: an async writer whose [`Stdin::close`] delivers end of file to the process.
pub struct Stdin {
    pipe: Option<pipe::Sender>,
    closer: StdinCloser,
}

impl std::fmt::Debug for Stdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stdin")
            .field("open", &self.pipe.is_some())
            .finish()
    }
}

impl Stdin {
    pub(crate) fn new(pipe: pipe::Sender, closer: StdinCloser) -> Self {
        Stdin {
            pipe: Some(pipe),
            closer,
        }
    }

    /// Let go of our end of the FIFO *without* closing the process's stdin, for a caller that hands
    /// input over to someone else (a detach, or another writer holding the FIFO open).
    pub fn detach(mut self) {
        self.pipe = None;
    }

    /// Close stdin: our end of the FIFO and, through containerd, the process's end. If the process does
    /// not exist yet, the close happens as soon as it does.
    pub async fn close(mut self) -> Result<()> {
        self.pipe = None;
        self.closer.close().await
    }
}

impl Drop for Stdin {
    fn drop(&mut self) {
        // Dropping without close() must still deliver end of file, or the process waits forever.
        if self.pipe.take().is_none() {
            return;
        }
        if let Some(target) = self.closer.take_for_close() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = target.close_io().await {
                        tracing::warn!(error = %e, "closing stdin after drop");
                    }
                });
            }
        }
    }
}

fn closed_pipe() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin is closed")
}

impl AsyncWrite for Stdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.pipe.as_mut() {
            Some(pipe) => Pin::new(pipe).poll_write(cx, buf),
            None => Poll::Ready(Err(closed_pipe())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.pipe.as_mut() {
            Some(pipe) => Pin::new(pipe).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.pipe.as_mut() {
            Some(pipe) => Pin::new(pipe).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Resources of one process's IO that must be released if creating the process fails.
pub(crate) struct PreparedIo {
    pub fifos: FifoSet,
    pub paths: StdioPaths,
    pub stdout: Option<OutputReader>,
    pub stderr: Option<OutputReader>,
    pub closer: StdinCloser,
}

impl PreparedIo {
    /// Make the FIFOs and open the readers, before the process is created.
    pub fn prepare(dir: &Path, process_id: &str, config: &StdioConfig) -> Result<PreparedIo> {
        match &config.output {
            Output::File(path) if !path.is_absolute() => {
                return Err(Error::invalid(format!(
                    "log file {} must be an absolute path",
                    path.display()
                )));
            }
            Output::Binary { path, .. } if !path.is_absolute() => {
                return Err(Error::invalid(format!(
                    "logging binary {} must be an absolute path",
                    path.display()
                )));
            }
            _ => {}
        }
        let fifos = FifoSet::plan(dir, process_id, config);
        let paths = fifos.stdio_paths(config);
        fifos.create()?;
        match fifos.open_readers() {
            Ok((stdout, stderr)) => Ok(PreparedIo {
                fifos,
                paths,
                stdout,
                stderr,
                closer: StdinCloser::new(),
            }),
            Err(e) => {
                let _ = fifos.remove();
                Err(e)
            }
        }
    }

    /// The process exists: open stdin and hand out the direct handles.
    pub fn finish(self) -> Result<DirectIo> {
        let stdin = self
            .fifos
            .open_stdin()?
            .map(|pipe| Stdin::new(pipe, self.closer.clone()));
        Ok(DirectIo {
            stdin,
            stdout: self.stdout,
            stderr: self.stderr,
        })
    }

    /// Creating the process failed: close everything and remove the FIFOs.
    pub fn abandon(self) {
        // No process ever wrote to these: nothing to drain.
        for reader in [self.stdout, self.stderr].into_iter().flatten() {
            reader.detach();
        }
        if let Err(e) = self.fifos.remove() {
            tracing::warn!(error = %e, "removing fifos after a failed create");
        }
    }
}

/// Re-open the stdio that containerd recorded for a running process (after a restart of the caller).
pub(crate) fn reopen(paths: &StdioPaths, target: CloseTarget) -> Result<DirectIo> {
    let fifo = |s: &str| -> Option<PathBuf> {
        (!s.is_empty() && !s.contains("://")).then(|| PathBuf::from(s))
    };
    let set = FifoSet {
        stdin: fifo(&paths.stdin),
        stdout: fifo(&paths.stdout),
        stderr: fifo(&paths.stderr),
    };
    for path in set.paths() {
        if !path.exists() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "cannot re-attach to {}: fifo {} is gone (was the bundle dir removed?)",
                    target.describe(),
                    path.display()
                ),
            ));
        }
    }
    let (stdout, stderr) = set.open_readers()?;
    let stdin = set
        .open_stdin()?
        .map(|pipe| Stdin::new(pipe, StdinCloser::ready(target)));
    Ok(DirectIo {
        stdin,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_has_no_stderr_fifo() {
        let dir = Path::new("/b");
        let set = FifoSet::plan(
            dir,
            "c1",
            &StdioConfig {
                stdin: true,
                terminal: true,
                output: Output::Pipe,
            },
        );
        assert_eq!(set.stdin.as_deref(), Some(Path::new("/b/c1-stdin")));
        assert_eq!(set.stdout.as_deref(), Some(Path::new("/b/c1-stdout")));
        assert_eq!(set.stderr, None);
    }

    #[test]
    fn no_stdin_fifo_unless_asked() {
        let set = FifoSet::plan(Path::new("/b"), "x", &StdioConfig::default());
        assert_eq!(set.stdin, None);
        assert!(set.stdout.is_some() && set.stderr.is_some());
        let paths = set.stdio_paths(&StdioConfig::default());
        assert_eq!(paths.stdin, "");
        assert_eq!(paths.stdout, "/b/x-stdout");
        assert_eq!(paths.stderr, "/b/x-stderr");
    }

    #[test]
    fn file_output_uses_file_uris_and_no_fifos() {
        let config = StdioConfig {
            stdin: false,
            terminal: false,
            output: Output::File("/logs/c.log".into()),
        };
        let set = FifoSet::plan(Path::new("/b"), "c", &config);
        assert_eq!(set.stdout, None);
        let paths = set.stdio_paths(&config);
        assert_eq!(paths.stdout, "file:///logs/c.log");
        assert_eq!(paths.stderr, "file:///logs/c.log");
    }

    #[test]
    fn binary_output_is_one_encoded_uri_and_no_fifos() {
        let config = StdioConfig {
            stdin: false,
            terminal: false,
            output: Output::Binary {
                path: "/usr/bin/my logger".into(),
                args: vec![("log-to".into(), "/var/log/a+b c/x.log".into())],
            },
        };
        let set = FifoSet::plan(Path::new("/b"), "c", &config);
        assert_eq!(set.stdout, None);
        let paths = set.stdio_paths(&config);
        let uri = "binary:///usr/bin/my%20logger?log-to=%2Fvar%2Flog%2Fa%2Bb%20c%2Fx.log";
        assert_eq!(paths.stdout, uri);
        assert_eq!(paths.stderr, uri);
        let terminal = StdioConfig {
            terminal: true,
            ..config
        };
        assert_eq!(set.stdio_paths(&terminal).stderr, "");
    }

    #[tokio::test]
    async fn fifos_are_made_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let config = StdioConfig {
            stdin: true,
            ..Default::default()
        };
        let prepared = PreparedIo::prepare(dir.path(), "p", &config).unwrap();
        for name in ["p-stdin", "p-stdout", "p-stderr"] {
            let meta = std::fs::metadata(dir.path().join(name)).unwrap();
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            assert!(meta.file_type().is_fifo());
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        }
        prepared.abandon();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
