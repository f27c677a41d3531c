//! `lcd logs`' reading of a log file (see `log_format`): each entry back on the stream it came
//! from, with docker's `--tail`, `--since`, `--until`, `-t` and `--details`, once or following the
//! file as it grows. Lines of a log written by an older lcd (raw output) pass through as stdout.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _, Result};
use tokio::io::AsyncReadExt;

use crate::log_format::{self, Entry, Stream};

/// What to print of a log.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries before this time.
    pub until: Option<SystemTime>,
    /// Each line starts with its time.
    pub timestamps: bool,
    /// Each line starts with the log's extra attributes (lcd has none: an empty set, as docker
    /// prints it).
    pub details: bool,
}

impl Options {
    /// From the flags' text, with docker's errors.
    pub fn parse(
        tail: &str,
        since: Option<&str>,
        until: Option<&str>,
        timestamps: bool,
        details: bool,
    ) -> Result<Options> {
        let tail = match tail {
            "all" => None,
            n => match n.parse::<i64>() {
                Ok(n) if n < 0 => None,
                Ok(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(_) => bail!("invalid value for \"tail\": {n:?} is not a number or \"all\""),
            },
        };
        let now = SystemTime::now();
        let time = |flag: &str, value: Option<&str>| -> Result<Option<SystemTime>> {
            value
                .map(|v| {
                    log_format::parse_time(v, now).with_context(|| {
                        format!("invalid value for {flag:?}: failed to parse value as time or duration: {v:?}")
                    })
                })
                .transpose()
        };
        Ok(Options {
            tail,
            since: time("since", since)?,
            until: time("until", until)?,
            timestamps,
            details,
        })
    }
}

/// Print the log at `path` as `options` say; with `follow`, keep printing what is appended until
/// `running` says the container stopped (or `--until` has passed). A missing file is an empty log.
pub async fn print_log<F, Fut>(
    path: &Path,
    options: &Options,
    follow: bool,
    mut running: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let mut file = open(path).await?;
    let mut pending = Vec::new();
    let mut printer = Printer::new(options);
    if let Some(f) = file.as_mut() {
        f.read_to_end(&mut pending)
            .await
            .with_context(|| format!("read {}", path.display()))?;
    }
    let used = printer.print(&pending, options.tail, !follow)?;
    pending.drain(..used);
    if !follow {
        return Ok(());
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if options
            .until
            .is_some_and(|until| SystemTime::now() >= until)
        {
            return Ok(());
        }
        let still_running = running().await?;
        if file.is_none() {
            file = open(path).await?;
        }
        let mut grew = false;
        if let Some(f) = file.as_mut() {
            loop {
                let n = f.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
                grew = true;
            }
        }
        if grew {
            // Partial lines wait for their end, unless the container has stopped.
            let used = printer.print(&pending, None, !still_running)?;
            pending.drain(..used);
        }
        if !grew && rotated(path, file.as_ref()).await {
            // Renamed away (the kubelet rotates CRI logs so): what was written to the old file
            // has been read; go on with the new one from its start.
            file = open(path).await?;
            pending.clear();
            continue;
        }
        if !still_running && !grew {
            return Ok(());
        }
        if !grew {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether `path` now names another file than the one open.
async fn rotated(path: &Path, file: Option<&tokio::fs::File>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(file) = file else {
        return false;
    };
    match (tokio::fs::metadata(path).await, file.metadata().await) {
        (Ok(now), Ok(open)) => (now.dev(), now.ino()) != (open.dev(), open.ino()),
        _ => false,
    }
}

async fn open(path: &Path) -> Result<Option<tokio::fs::File>> {
    match tokio::fs::File::open(path).await {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open {}", path.display())),
    }
}

/// Prints entries, remembering per stream whether the next one starts a line (for `-t`).
struct Printer<'o> {
    options: &'o Options,
    at_line_start: [bool; 2],
}

impl<'o> Printer<'o> {
    fn new(options: &'o Options) -> Self {
        Printer {
            options,
            at_line_start: [true, true],
        }
    }

    /// Print the whole lines of `data` (and, with `to_end`, an unfinished last one), the last
    /// `tail` lines only if given; returns how many bytes were used.
    fn print(&mut self, data: &[u8], tail: Option<usize>, to_end: bool) -> Result<usize> {
        let complete = match data.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None => 0,
        };
        let used = if to_end { data.len() } else { complete };
        let text = &data[..used];
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let entries: Vec<Entry<'_>> = text
            .split(|b| *b == b'\n')
            .take(if used == 0 { 0 } else { usize::MAX })
            .map(|line| {
                log_format::parse(line).unwrap_or(Entry {
                    stamp: "",
                    stream: Stream::Stdout,
                    full: true,
                    content: line,
                })
            })
            .filter(|e| self.in_window(e))
            .collect();
        let start = tail.map_or(0, |n| tail_start(&entries, n));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for entry in &entries[start..] {
            let index = usize::from(entry.stream == Stream::Stderr);
            let to = if index == 1 { &mut err } else { &mut out };
            if self.at_line_start[index] {
                if self.options.timestamps && !entry.stamp.is_empty() {
                    to.extend_from_slice(entry.stamp.as_bytes());
                    to.push(b' ');
                }
                if self.options.details {
                    to.push(b' ');
                }
            }
            to.extend_from_slice(entry.content);
            if entry.full {
                to.push(b'\n');
            }
            self.at_line_start[index] = entry.full;
        }
        std::io::stdout().write_all(&out)?;
        std::io::stdout().flush()?;
        std::io::stderr().write_all(&err)?;
        Ok(used)
    }

    fn in_window(&self, entry: &Entry<'_>) -> bool {
        if self.options.since.is_none() && self.options.until.is_none() {
            return true;
        }
        let Some(time) = log_format::parse_time(entry.stamp, SystemTime::now()) else {
            return false;
        };
        self.options.since.is_none_or(|since| time >= since)
            && self.options.until.is_none_or(|until| time < until)
    }
}

/// The index of the first entry of the last `n` lines (a line: a full entry and the partial ones
/// before it; an unfinished last line counts).
fn tail_start(entries: &[Entry<'_>], n: usize) -> usize {
    if n == 0 {
        return entries.len();
    }
    let mut lines = 0;
    for i in (0..entries.len()).rev() {
        let ends_a_line = entries[i].full || i + 1 == entries.len();
        if ends_a_line {
            lines += 1;
            if lines > n {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(full: bool) -> Entry<'static> {
        Entry {
            stamp: "2025-11-30T05:45:08.606366157Z",
            stream: Stream::Stdout,
            full,
            content: b"x",
        }
    }

    #[test]
    fn tail_counts_lines_not_entries() {
        let entries = [entry(true), entry(false), entry(true), entry(false)];
        assert_eq!(tail_start(&entries, 1), 3);
        assert_eq!(tail_start(&entries, 2), 1);
        assert_eq!(tail_start(&entries, 9), 0);
        assert_eq!(tail_start(&entries, 0), 4);
    }

    #[test]
    fn flags_parse_as_dockers() {
        let o = Options::parse("3", Some("10m"), None, true, false).unwrap();
        assert_eq!(o.tail, Some(3));
        assert!(o.since.is_some());
        assert_eq!(
            Options::parse("-1", None, None, false, false).unwrap().tail,
            None
        );
        let err = Options::parse("all", Some("bad"), None, false, false).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "invalid value for \"since\": failed to parse value as time or duration: \"bad\""
        );
        assert!(Options::parse("x", None, None, false, false).is_err());
    }
}
