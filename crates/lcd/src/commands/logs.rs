//! `lcd logs [-f] ID`: a detached container's output, from the file lcd-logger appends it to.

use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::cli::LogsArgs;
use crate::context::Ctx;
use crate::state;

/// `lcd logs [-f]`.
pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let container = state::load(&client, &args.id).await?;
    let path = ctx.log_path(container.id());
    let mut out = tokio::io::stdout();
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    if let Some(f) = file.as_mut() {
        tokio::io::copy(f, &mut out).await?;
    }
    if args.follow {
        // The shim appends to the file; poll it while the task runs, then drain what is left.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let task = state::task_with_status(&container).await?;
            let running = state::running(container.id(), task).is_ok();
            if file.is_none() {
                file = tokio::fs::File::open(&path).await.ok();
            }
            if let Some(f) = file.as_mut() {
                let pos = f.stream_position().await?;
                let n = f.read(&mut buf).await?;
                if n > 0 {
                    out.write_all(&buf[..n]).await?;
                    out.flush().await?;
                    continue;
                }
                f.seek(std::io::SeekFrom::Start(pos)).await?;
            }
            if !running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out.flush().await?;
    Ok(0)
}
