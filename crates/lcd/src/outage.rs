//! Riding out a restart of containerd: the shims, and so the containers and their output, live on
//! while containerd is down, and a new containerd finds them again. A session or `lcd wait` that
//! gave up at the first lost connection ended with 125 and left a `--rm` container behind; these
//! waits ask again until containerd answers, for up to [`OUTAGE_LIMIT`].

use std::time::{Duration, Instant};

use libcontainerd::{ErrorKind, ExitStatus, Task};

/// How long containerd may stay unreachable before a wait gives up.
pub const OUTAGE_LIMIT: Duration = Duration::from_secs(60);

/// Pause between attempts while containerd is unreachable.
const RETRY: Duration = Duration::from_millis(200);

/// Wait for `task`'s init process to exit, through containerd restarts (the client's channel
/// dials again on the next call).
pub async fn wait_task(task: &Task) -> libcontainerd::Result<ExitStatus> {
    let mut down_since: Option<Instant> = None;
    loop {
        match task.wait().await {
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                let since = *down_since.get_or_insert_with(Instant::now);
                if since.elapsed() > OUTAGE_LIMIT {
                    return Err(e);
                }
                tracing::debug!(container = %task.id(), error = %e, "containerd unreachable; waiting again");
                tokio::time::sleep(RETRY).await;
            }
            other => return other,
        }
    }
}
