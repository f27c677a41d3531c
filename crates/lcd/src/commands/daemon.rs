//! `lcd daemon start|stop|status`: the containerd lcd manages (used when no `--address` is given),
//! and lcd's agent beside it (see [`crate::agent`]), which starts and stops with it.

use anyhow::{bail, Result};
use libcontainerd::supervisor::DaemonStatus;

use crate::agent::{self, AgentStatus};
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
            agent::ensure(ctx, pid).await?;
            println!("containerd running (pid {pid}) at {}", socket.display());
            print_agent(ctx);
            Ok(0)
        }
        DaemonAction::Stop => {
            // The agent first: it would restart containers as containerd goes.
            agent::stop(ctx).await?;
            daemon.stop().await?;
            println!("containerd stopped");
            Ok(0)
        }
        DaemonAction::Status => {
            let code = match daemon.status() {
                DaemonStatus::Running { pid } => {
                    println!("containerd running (pid {pid}) at {}", socket.display());
                    0
                }
                DaemonStatus::Stopped => {
                    println!("containerd stopped");
                    exit::DAEMON_STOPPED
                }
                DaemonStatus::StalePidFile { pid } => {
                    let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
                    println!("containerd stopped (stale pid file names pid {pid}, which is not our containerd)");
                    exit::DAEMON_STOPPED
                }
            };
            print_agent(ctx);
            Ok(code)
        }
    }
}

/// The agent's line: "agent running (pid N)" or "agent stopped".
fn print_agent(ctx: &Ctx) {
    match agent::status(ctx) {
        AgentStatus::Running { pid } => println!("agent running (pid {pid})"),
        AgentStatus::Stopped => println!("agent stopped"),
    }
}
