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

mod fifo;
mod output;
mod stdin;

use std::path::{Path, PathBuf};

pub(crate) use fifo::{all_fifos, FifoSet, StdioPaths};
pub use output::OutputReader;
pub use stdin::Stdin;
pub(crate) use stdin::{CloseTarget, StdinCloser};

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

/// Direct handles on a process's stdio: returned by [`Container::spawn`](crate::Container::spawn)
/// and [`Task::spawn_exec`](crate::Task::spawn_exec), or given to the attach callback of the
/// callback forms.
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
