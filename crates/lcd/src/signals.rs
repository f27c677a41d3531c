//! Signal proxying: signals sent to `lcd` go to the container's process, as with docker's sig-proxy.
//!
//! Every signal a process can catch is forwarded, as docker's CLI does, so that no signal kills
//! or stops `lcd` by its default action while the container runs on without it (an orphan): a
//! stray SIGALRM would end lcd with 142, a SIGTSTP would freeze it. SIGTSTP, SIGTTIN and SIGTTOU
//! go to the container too, and lcd itself keeps running.

use anyhow::Result;
use libc::c_int;
use libcontainerd::{Signal, Task};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// Signals that stay with lcd. CHLD and PIPE are about lcd's own children and pipes; URG is what
/// Go runtimes use to preempt their own threads (docker skips it for that reason); KILL and STOP
/// cannot be caught; ILL, FPE, SEGV, BUS, TRAP and SYS report faults of lcd's own code, which a
/// handler must not swallow.
const KEPT: [c_int; 11] = [
    libc::SIGCHLD,
    libc::SIGPIPE,
    libc::SIGURG,
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// The signals forwarded to a process: every catchable one but those in `KEPT`, real-time ones
/// included. With a terminal, SIGWINCH is the terminal's new size and is followed as a resize
/// instead.
pub fn forwarded(terminal: bool) -> Vec<c_int> {
    // The real-time range glibc leaves to programs (32 and 33 are its own); the last number does
    // not fit tokio's table.
    let realtime = libc::SIGRTMIN()..libc::SIGRTMAX();
    (1..32)
        .chain(realtime)
        .filter(|sig| !KEPT.contains(sig))
        .filter(|&sig| !(terminal && sig == libc::SIGWINCH))
        .collect()
}

/// Listen for the forwarded signals: each one received comes out of the channel, in order. The
/// listeners run until their handles are aborted. A signal that cannot be listened for is left
/// with its default action (and logged), rather than failing the session.
pub fn listen(terminal: bool) -> (UnboundedReceiver<c_int>, Vec<JoinHandle<()>>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    for sig in forwarded(terminal) {
        let mut stream = match signal(SignalKind::from_raw(sig)) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(signal = sig, error = %e, "cannot listen for a signal");
                continue;
            }
        };
        let tx = tx.clone();
        listeners.push(tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        }));
    }
    (rx, listeners)
}

/// Forward the signals above to `task`'s init process until the returned handle is aborted.
pub fn forward_to(task: Task, terminal: bool) -> Result<JoinHandle<()>> {
    let (mut rx, listeners) = listen(terminal);
    Ok(tokio::spawn(async move {
        // The listeners end with this task, when it is aborted.
        let _listeners = AbortOnDrop(listeners);
        // One at a time and in order, so that e.g. INT then TERM arrive as sent.
        while let Some(sig) = rx.recv().await {
            let Ok(signal) = Signal::new(sig) else {
                continue;
            };
            if let Err(e) = task.kill(signal).await {
                tracing::debug!(signal = sig, error = %e, "forwarding a signal");
            }
        }
    }))
}

/// Aborts its tasks when dropped.
pub struct AbortOnDrop(pub Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_every_catchable_signal_but_the_kept_ones() {
        let plain = forwarded(false);
        for sig in [
            libc::SIGALRM,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGINT,
            libc::SIGUSR1,
            libc::SIGWINCH,
            libc::SIGRTMIN(),
        ] {
            assert!(plain.contains(&sig), "{sig} is not forwarded");
        }
        for sig in [libc::SIGCHLD, libc::SIGPIPE, libc::SIGURG, libc::SIGKILL] {
            assert!(!plain.contains(&sig), "{sig} is forwarded");
        }
        assert!(!forwarded(true).contains(&libc::SIGWINCH));
    }
}
