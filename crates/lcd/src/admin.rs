//! Commands about lcd itself: the managed daemon, versions, root filesystems.

use anyhow::{bail, Result};
use libcontainerd::supervisor::DaemonStatus;
use serde_json::json;

use crate::cli::{DaemonAction, FormatArgs, RootfsKind};
use crate::context::Ctx;

/// `lcd daemon start|stop|status`.
pub async fn daemon(ctx: &Ctx, action: DaemonAction) -> Result<i32> {
    if ctx.address.is_some() {
        bail!("--address names a containerd that lcd does not manage: drop it to use `lcd daemon`");
    }
    let daemon = ctx.daemon();
    let socket = daemon.config().socket();
    match action {
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
                Ok(3)
            }
            DaemonStatus::StalePidFile { pid } => {
                let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
                println!("containerd stopped (stale pid file names pid {pid}, which is not our containerd)");
                Ok(3)
            }
        },
    }
}

/// `lcd version`.
pub async fn version(ctx: &Ctx, args: FormatArgs) -> Result<i32> {
    // Decide on the format before starting or contacting any containerd.
    let json = match args.format.as_str() {
        "json" => true,
        "text" => false,
        other => bail!("unknown format {other:?}: use text or json"),
    };
    let client = ctx.client().await?;
    let server = client.version().await?;
    if json {
        println!(
            "{}",
            json!({
                "client": { "version": env!("CARGO_PKG_VERSION") },
                "containerd": { "version": server.version, "revision": server.revision, "address": client.address() },
            })
        );
    } else {
        println!("Client:\n Version:    {}", env!("CARGO_PKG_VERSION"));
        println!(
            "containerd:\n Version:    {}\n Revision:   {}\n Address:    {}",
            server.version,
            server.revision,
            client.address().display()
        );
    }
    Ok(0)
}

/// `lcd rootfs busybox DIR`.
pub fn rootfs(kind: RootfsKind) -> Result<i32> {
    match kind {
        RootfsKind::Busybox { dir, busybox } => {
            libcontainerd::rootfs::busybox(&dir, &busybox)?;
            println!("{}", dir.display());
            Ok(0)
        }
    }
}
