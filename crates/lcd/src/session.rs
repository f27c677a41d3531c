//! An attached session with a container's init process: its output copied to ours, our stdin
//! forwarded (with the Ctrl-P Ctrl-Q detach sequence on a terminal), our terminal in raw mode and its
//! size followed, signals proxied, until the process exits or the user detaches.

use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context as _, Result};
use libcontainerd::{Container, DirectIo, ExitStatus, Task};
use tokio::io::AsyncWriteExt;

use crate::log_format::Stream;
use crate::log_tee::Tee;
use crate::tty;

/// How a session ended.
#[derive(Debug)]
pub enum Outcome {
    /// The process exited.
    Exited(ExitStatus),
    /// The user typed the detach sequence; the container keeps running.
    Detached,
}

/// Whether the container's process has a terminal (`-t`), as its spec says.
pub fn has_terminal(container: &Container) -> bool {
    container
        .spec()
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// Run a session on `task` with its stdio `io`. `terminal` says whether the process has a terminal;
/// `detach_keys` is the sequence that detaches when our stdin is a terminal; the output is also
/// appended to the container's `log` file, if given.
pub async fn attach(
    task: &Task,
    mut io: DirectIo,
    terminal: bool,
    detach_keys: &[u8],
    log: Option<&Path>,
) -> Result<Outcome> {
    let interactive_terminal = terminal && io.stdin.is_some() && tty::stdin_is_terminal();
    // Restored when this guard drops, on every return below (and by tty's panic hook).
    let _raw = if interactive_terminal {
        Some(
            tty::RawMode::enable(std::io::stdin().as_fd())
                .context("put the terminal in raw mode")?,
        )
    } else {
        None
    };
    let mut copiers = Vec::new();
    if let Some(out) = io.stdout.take() {
        let to = Tee::new(tokio::io::stdout(), log, Stream::Stdout);
        copiers.push(tokio::spawn(copy_out(out, to)));
    }
    if let Some(err) = io.stderr.take() {
        let to = Tee::new(tokio::io::stderr(), log, Stream::Stderr);
        copiers.push(tokio::spawn(copy_out(err, to)));
    }
    let detector = interactive_terminal.then(|| tty::DetachDetector::new(detach_keys));
    let mut input = io
        .stdin
        .take()
        .map(|stdin| tokio::spawn(tty::forward_input(stdin, detector)));
    let mut window = None;
    if terminal {
        let size = tty::terminal_size();
        if let Some((cols, rows)) = size {
            resize(task, cols, rows).await;
        }
        window = tty::WindowChanges::new(size)
            .map_err(|e| tracing::debug!(error = %e, "listening for window changes"))
            .ok();
    }
    let signals = crate::signals::forward_to(task.clone(), terminal)?;
    // A containerd restart does not end the session: the shim keeps the process and its output.
    let wait = crate::outage::wait_task(task);
    tokio::pin!(wait);
    let outcome = loop {
        tokio::select! {
            status = &mut wait => break Outcome::Exited(status?),
            Some((cols, rows)) = next_size(&mut window) => resize(task, cols, rows).await,
            end = wait_input(&mut input) => {
                if matches!(end, Some(tty::InputEnd::Detached)) {
                    break Outcome::Detached;
                }
                // Input ended (end of file reached the process): keep waiting for its exit.
                input = None;
            }
        }
    };
    signals.abort();
    if let Outcome::Exited(_) = outcome {
        // All output is in once the shim closes the pipes, which it does after the process exits.
        for copier in copiers {
            let _ = copier.await;
        }
    }
    Ok(outcome)
}

async fn wait_input(
    input: &mut Option<tokio::task::JoinHandle<tty::InputEnd>>,
) -> Option<tty::InputEnd> {
    match input {
        Some(handle) => handle.await.ok(),
        None => std::future::pending().await,
    }
}

/// The next window size, or never when there is no terminal to follow.
pub async fn next_size(window: &mut Option<tty::WindowChanges>) -> Option<(u16, u16)> {
    match window {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

async fn resize(task: &Task, cols: u16, rows: u16) {
    if let Err(e) = task.resize(u32::from(cols), u32::from(rows)).await {
        tracing::debug!(error = %e, "resizing the container's terminal");
    }
}

/// Copy one output stream of a process to ours until it ends.
pub async fn copy_out(
    mut from: libcontainerd::OutputReader,
    mut to: impl tokio::io::AsyncWrite + Unpin,
) {
    // A closed terminal or pipe on our side ends the copy; the container is not affected.
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.flush().await;
}
