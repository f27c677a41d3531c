//! The format of lcd's container log files, written by `lcd-logger` (detached containers) and by
//! attached sessions, read by `lcd logs`: Kubernetes' CRI format, one entry a line,
//! `TIMESTAMP STREAM TAG CONTENT`, where TIMESTAMP is RFC 3339 with nanoseconds in UTC, STREAM is
//! `stdout` or `stderr`, and TAG is `F` when CONTENT ends a line (its newline dropped) or `P` when
//! the next entry of the stream continues it. Each entry carries its time (for `-t`, `--since`,
//! `--until`) and its stream (so `lcd logs` gives stderr back on stderr, as docker does), and the
//! format is what containerd's CRI plugin writes for Kubernetes, so one reader serves both.
//!
//! This file uses std only: the logger binary includes it with `#[path]`, staying small.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which of the container's output streams an entry is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// Its name in a log line.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The log lines for a chunk of output read at `time`: a full entry per line ending in the
/// chunk, a partial one for the rest.
pub fn encode(stream: Stream, chunk: &[u8], time: SystemTime) -> Vec<u8> {
    let stamp = rfc3339_nano(time);
    let mut out = Vec::with_capacity(chunk.len() + 48);
    let mut rest = chunk;
    while !rest.is_empty() {
        let (content, tag, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], b'F', &rest[i + 1..]),
            None => (rest, b'P', &rest[rest.len()..]),
        };
        out.extend_from_slice(stamp.as_bytes());
        out.push(b' ');
        out.extend_from_slice(stream.name().as_bytes());
        out.push(b' ');
        out.push(tag);
        out.push(b' ');
        out.extend_from_slice(content);
        out.push(b'\n');
        rest = next;
    }
    out
}

/// One entry of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// When it was read, as written.
    pub stamp: &'a str,
    pub stream: Stream,
    /// Whether the content ends a line.
    pub full: bool,
    pub content: &'a [u8],
}

/// Parse one line (without its newline); None if it is not an entry (a log written by an older
/// lcd holds raw output, which the reader passes through).
pub fn parse(line: &[u8]) -> Option<Entry<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let stamp = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let full = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    let content = parts.next().unwrap_or_default();
    // Cheap shape check; the time is parsed only when a filter needs it.
    if stamp.len() < 20 || stamp.as_bytes()[4] != b'-' || !stamp.ends_with('Z') {
        return None;
    }
    Some(Entry {
        stamp,
        stream,
        full,
        content,
    })
}

/// `time` as RFC 3339 in UTC with nanoseconds (`2026-11-30T05:45:08.606366157Z`).
pub fn rfc3339_nano(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// A time as docker's `--since`/`--until` take it, relative to `now`: a duration before now
/// (`10m`, `1h30m`, `1.5h`), a Unix time (`1700000000`, `1700000000.5`), or an RFC 3339 date and
/// time, whole or cut short (`2026-11-30`, `2026-11-30T05:45`, `2026-11-30T05:45:08.6Z`,
/// `...+02:00`; without a zone, UTC).
pub fn parse_time(value: &str, now: SystemTime) -> Option<SystemTime> {
    if let Some(ago) = parse_go_duration(value) {
        return now.checked_sub(ago);
    }
    if let Some(unix) = parse_unix(value) {
        return Some(unix);
    }
    parse_rfc3339(value)
}

fn parse_unix(value: &str) -> Option<SystemTime> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    UNIX_EPOCH.checked_add(Duration::new(secs.parse().ok()?, nanos))
}

/// Go's duration syntax: numbers (decimals allowed) each with a unit, ns us ms s m h.
fn parse_go_duration(value: &str) -> Option<Duration> {
    let mut rest = value;
    let mut total = 0f64;
    if rest.is_empty() || !rest.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    let bytes = value.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = value.get(range)?;
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut rest = &value[10..];
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0u32);
    if let Some(time) = rest.strip_prefix('T') {
        let clock_end = time.find(['Z', '+', '-']).unwrap_or(time.len());
        let (clock, zone) = time.split_at(clock_end);
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let fields: Vec<&str> = hms.split(':').collect();
        let field = |i: usize| -> Option<i64> {
            match fields.get(i) {
                Some(f) if f.len() == 2 && f.bytes().all(|b| b.is_ascii_digit()) => f.parse().ok(),
                Some(_) => None,
                None => Some(0),
            }
        };
        if fields.len() > 3 {
            return None;
        }
        (hour, minute, second) = (field(0)?, field(1)?, field(2)?);
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        if !frac.is_empty() {
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            nanos = format!("{frac:0<9}").parse().ok()?;
        }
        rest = zone;
    }
    let offset = match rest {
        "" | "Z" => 0,
        zone => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = zone[1..].split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

// Howard Hinnant's algorithms between days since the epoch and the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chunks_become_full_and_partial_entries() {
        let t = UNIX_EPOCH + Duration::new(1_764_481_508, 606_366_157);
        let out = encode(Stream::Stderr, b"a\n\nbc", t);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-11-30T05:45:08.606366157Z stderr F a\n\
             2025-11-30T05:45:08.606366157Z stderr F \n\
             2025-11-30T05:45:08.606366157Z stderr P bc\n"
        );
        let line = b"2025-11-30T05:45:08.606366157Z stdout P x y";
        let entry = parse(line).unwrap();
        assert_eq!(entry.stream, Stream::Stdout);
        assert!(!entry.full);
        assert_eq!(entry.content, b"x y");
        assert_eq!(parse(b"plain output from an older lcd"), None);
    }

    #[test]
    fn times_round_trip_and_parse_as_dockers_flags_do() {
        let t = UNIX_EPOCH + Duration::new(1_764_481_508, 606_366_157);
        assert_eq!(parse_time(&rfc3339_nano(t), t), Some(t));
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_time("10m", now), Some(now - Duration::from_secs(600)));
        assert_eq!(
            parse_time("1h30m", now),
            Some(now - Duration::from_secs(5400))
        );
        assert_eq!(
            parse_time("1.5", now),
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        assert_eq!(
            parse_time("1970-01-02", now),
            Some(UNIX_EPOCH + Duration::from_secs(86_400))
        );
        assert_eq!(parse_time("1970-01-01T01:00+01:00", now), Some(UNIX_EPOCH));
        assert_eq!(parse_time("bad", now), None);
        assert_eq!(parse_time("2020-13-01", now), None);
    }
}
