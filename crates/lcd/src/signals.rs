//! Signal proxying: signals sent to `lcd` go to the container's process, as with docker's sig-proxy.

use anyhow::{Context as _, Result};
use libcontainerd::{Signal, Task};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

/// The signals forwarded; SIGKILL and SIGSTOP cannot be caught.
pub const FORWARDED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Forward the signals above to `task`'s init process until the returned handle is aborted.
pub fn forward_to(task: Task) -> Result<JoinHandle<()>> {
    let mut streams = Vec::new();
    for sig in FORWARDED {
        let stream = signal(SignalKind::from_raw(sig))
            .with_context(|| format!("listen for signal {sig}"))?;
        streams.push((sig, stream));
    }
    Ok(tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (sig, mut stream) in streams {
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
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
