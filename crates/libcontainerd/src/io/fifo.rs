//! The FIFOs of one process in the bundle directory, and the stdio strings containerd records.

use std::path::{Path, PathBuf};

use tokio::net::unix::pipe;

use super::{Output, OutputReader, StdioConfig};
use crate::error::{Error, Result};

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

    pub(super) fn paths(&self) -> impl Iterator<Item = &PathBuf> {
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
                        .inspect(crate::process::hold_output_fifo)
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
}
