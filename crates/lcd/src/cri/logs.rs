//! CRI's log files: one entry per line, `TIMESTAMP STREAM P|F CONTENT` (P: a partial line that
//! the next entry continues, F: the line ends here), written by containerd's CRI plugin into the
//! directory the kubelet chose, and rotated by the kubelet (rename, then CRI reopens the path).

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use libcontainerd::Container;

use crate::state;

/// How often `logs -f` looks for new entries.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// One entry of a CRI log line.
#[derive(Debug, PartialEq, Eq)]
struct Entry<'a> {
    stderr: bool,
    /// The line goes on in the next entry (`P`).
    partial: bool,
    content: &'a [u8],
}

/// Parse `TIMESTAMP STREAM TAG CONTENT` (without its newline); None for anything else.
fn parse_entry(line: &[u8]) -> Option<Entry<'_>> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let _timestamp = fields.next()?;
    let stderr = match fields.next()? {
        b"stdout" => false,
        b"stderr" => true,
        _ => return None,
    };
    // The tag may grow more flags after P/F, separated by ':'.
    let tag = fields.next()?;
    let partial = tag.split(|b| *b == b':').next()? == b"P";
    let content = fields.next().unwrap_or_default();
    Some(Entry {
        stderr,
        partial,
        content,
    })
}

/// Where the full lines of the last `n` start: the offset after the (n+1)-th last full-line entry
/// (`F`) of `data`, so that partial entries stay with the line they belong to.
fn tail_offset(data: &[u8], n: usize) -> usize {
    if n == 0 {
        return data.len();
    }
    let mut starts = vec![0];
    starts.extend(
        data.iter()
            .enumerate()
            .filter(|(i, b)| **b == b'\n' && i + 1 < data.len())
            .map(|(i, _)| i + 1),
    );
    let mut seen = 0;
    for (index, &start) in starts.iter().enumerate().rev() {
        let end = starts.get(index + 1).copied().unwrap_or(data.len());
        let line = &data[start..end];
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if parse_entry(line).is_some_and(|e| !e.partial) {
            seen += 1;
            if seen > n {
                return end;
            }
        }
    }
    0
}

/// docker's `--tail`: `all` or a number of lines.
pub fn parse_tail(tail: &str) -> Result<Option<usize>> {
    if tail == "all" {
        return Ok(None);
    }
    match tail.parse::<i64>() {
        // docker shows everything for a negative count.
        Ok(n) if n < 0 => Ok(None),
        Ok(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Err(_) => bail!("invalid --tail value {tail:?}: give a number of lines or \"all\""),
    }
}

/// Print the complete entries of `data` (stdout entries to stdout, stderr to stderr, as docker
/// keeps them apart); returns how many bytes were used (a last line without its newline waits).
fn print_entries(data: &[u8], out: &mut impl Write, err: &mut impl Write) -> Result<usize> {
    let mut used = 0;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else {
            break;
        };
        used += line.len() + 1;
        // Anything that is not an entry (a truncated first line after rotation) is skipped.
        if let Some(entry) = parse_entry(line) {
            let sink: &mut dyn Write = if entry.stderr { err } else { out };
            sink.write_all(entry.content)?;
            if !entry.partial {
                sink.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    err.flush()?;
    Ok(used)
}

/// Whether the container's task runs. CRI deletes a task as soon as it exits (containerd 1.7 at
/// once), and the kubelet may remove the container: gone between two calls is not running.
async fn still_running(container: &Container) -> Result<bool> {
    match state::task_with_status(container).await {
        Ok(task) => Ok(state::running(container.id(), task).is_ok()),
        Err(e)
            if e.downcast_ref::<libcontainerd::Error>()
                .is_some_and(|e| e.kind() == libcontainerd::ErrorKind::NotFound) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// `lcd logs [-f] [--tail N]` of a CRI container: its CRI log file decoded; with `follow`, new
/// entries until the container's task stops (a rotated file is followed into its successor).
pub async fn print_logs(
    container: &Container,
    path: &Path,
    follow: bool,
    tail: Option<usize>,
) -> Result<()> {
    let open = |path: &Path| -> Result<Option<std::fs::File>> {
        match std::fs::File::open(path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("open {}", path.display())),
        }
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let mut file = open(path)?;
    let mut pending = Vec::new();
    if let Some(f) = file.as_mut() {
        f.read_to_end(&mut pending)
            .with_context(|| format!("read {}", path.display()))?;
        let start = tail.map(|n| tail_offset(&pending, n)).unwrap_or(0);
        let used = print_entries(&pending[start..], &mut out, &mut err)?;
        pending.drain(..start + used);
    }
    drop((out, err));
    if !follow {
        return Ok(());
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let running = still_running(container).await?;
        // The kubelet rotates logs by renaming: a new inode at the path is a new file.
        let current = std::fs::metadata(path).ok().map(|m| m.ino());
        let ours = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino());
        let mut got = 0;
        if let Some(f) = file.as_mut() {
            got = f.read(&mut buf)?;
            pending.extend_from_slice(&buf[..got]);
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            let used = print_entries(&pending, &mut out, &mut err)?;
            pending.drain(..used);
        }
        if got > 0 {
            continue;
        }
        if current.is_some() && current != ours {
            file = open(path)?;
            pending.clear();
            continue;
        }
        if !running {
            return Ok(());
        }
        if file.is_none() {
            file = open(path)?;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-01-01T00:00:00.1Z stdout F one\n\
2026-01-01T00:00:00.2Z stderr F two\n\
2026-01-01T00:00:00.3Z stdout P thr\n\
2026-01-01T00:00:00.4Z stdout F ee\n\
2026-01-01T00:00:00.5Z stdout F \n";

    fn printed(data: &[u8]) -> (String, String, usize) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let used = print_entries(data, &mut out, &mut err).expect("print");
        (
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
            used,
        )
    }

    #[test]
    fn entries_go_to_their_stream_and_partials_join() {
        let (out, err, used) = printed(LOG);
        assert_eq!(out, "one\nthree\n\n");
        assert_eq!(err, "two\n");
        assert_eq!(used, LOG.len());
    }

    #[test]
    fn an_unfinished_last_line_waits() {
        let mut data = LOG.to_vec();
        data.extend_from_slice(b"2026-01-01T00:00:00.6Z stdout F fo");
        let (out, _, used) = printed(&data);
        assert_eq!(out, "one\nthree\n\n");
        assert_eq!(used, LOG.len());
    }

    #[test]
    fn tail_counts_full_lines_and_keeps_partials_with_theirs() {
        let tail = |n| printed(&LOG[tail_offset(LOG, n)..]);
        assert_eq!(tail(0).0, "");
        assert_eq!(tail(1).0, "\n");
        assert_eq!(tail(2).0, "three\n\n");
        assert_eq!(
            tail(3),
            ("three\n\n".into(), "two\n".into(), LOG.len() - 36)
        );
        assert_eq!(tail(4).0, "one\nthree\n\n");
        assert_eq!(tail(100).0, "one\nthree\n\n");
    }

    #[test]
    fn tail_values_are_dockers() {
        assert_eq!(parse_tail("all").expect("all"), None);
        assert_eq!(parse_tail("3").expect("3"), Some(3));
        assert_eq!(parse_tail("-1").expect("-1"), None);
        let err = parse_tail("x").expect_err("x");
        assert!(err.to_string().contains("--tail"), "{err}");
    }
}
