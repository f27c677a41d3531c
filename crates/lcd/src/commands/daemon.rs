//! `lcd daemon start|stop|status`: the containerd lcd manages (used when no `--address` is given).

use anyhow::{bail, Result};
use libcontainerd::supervisor::DaemonStatus;

use crate::cli::{DaemonAction, DaemonArgs};
use crate::context::Ctx;
use crate::exit;

/// `lcd daemon start|stop|status`.
pub async fn daemon(ctx: &Ctx, args: DaemonArgs) -> Result<i32> {
    if ctx.address.is_some() {
        bail!("--address names a containerd that lcd does not manage: drop it to use `lcd daemon`");
    }
    let daemon = ctx.daemon();
    let socket = daemon.config().socket();
    match args.action {
        DaemonAction::Start => {
            let pid = ctx.ensure_daemon(&daemon).await?;
            println!("containerd running (pid {pid}) at {}", socket.display());
            Ok(0)
        }
        DaemonAction::Stop => {
            daemon.stop().await?;
            println!("containerd stopped");
            Ok(0)
        }
        DaemonAction::Status => match daemon.status() {
            DaemonStatus::Running { pid } => {
                println!("containerd running (pid {pid}) at {}", socket.display());
                Ok(0)
            }
            DaemonStatus::Stopped => {
                println!("containerd stopped");
                Ok(exit::DAEMON_STOPPED)
            }
            DaemonStatus::StalePidFile { pid } => {
                let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
                println!("containerd stopped (stale pid file names pid {pid}, which is not our containerd)");
                Ok(exit::DAEMON_STOPPED)
            }
        },
    }
}
