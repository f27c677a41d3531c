//! `lcd logs [-f] [--tail N] ID`: a detached container's output, from the file lcd-logger appends it
//! to (a Kubernetes container's from its CRI log, see [`crate::cri`]).

use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::cli::LogsArgs;
use crate::context::Ctx;
use crate::cri;
use crate::state;

/// `lcd logs [-f]`.
pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let container = state::load(&client, &args.id).await?;
    let tail = cri::parse_tail(&args.tail)?;
    // A Kubernetes container's output is in the CRI log the kubelet asked for, not in lcd's.
    if let Some(path) = cri::log_path(&client, &container).await? {
        cri::print_logs(&container, &path, args.follow, tail).await?;
        return Ok(0);
    }
    let path = ctx.log_path(container.id());
    let mut out = tokio::io::stdout();
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    if let Some(f) = file.as_mut() {
        if let Some(n) = tail {
            let mut all = Vec::new();
            f.read_to_end(&mut all).await?;
            out.write_all(&all[last_lines(&all, n)..]).await?;
        } else {
            tokio::io::copy(f, &mut out).await?;
        }
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

/// Where the last `n` lines of `data` start (a last line without its newline counts as one).
fn last_lines(data: &[u8], n: usize) -> usize {
    if n == 0 {
        return data.len();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_lines_of_a_log() {
        let log = b"a\nb\nc\n";
        assert_eq!(&log[super::last_lines(log, 2)..], b"b\nc\n");
        assert_eq!(&log[super::last_lines(log, 0)..], b"");
        assert_eq!(&log[super::last_lines(log, 9)..], log);
        assert_eq!(&b"a\nb"[super::last_lines(b"a\nb", 1)..], b"b");
    }
}
