//! `lcd top ID`: a container's processes in `ps -ef`'s columns, as `docker top` shows them.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use libcontainerd::ProcessSummary;

use crate::cli::TopArgs;
use crate::context::Ctx;
use crate::state;

/// `lcd top ID`: the container's processes, like `docker top` (ps -ef columns).
pub async fn top(ctx: &Ctx, args: TopArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let task = state::running_task(&client, &args.id).await?;
    let processes = task.summary().await?;
    print!("{}", format_top(&processes, SystemTime::now()));
    Ok(0)
}

fn format_top(processes: &[ProcessSummary], now: SystemTime) -> String {
    let mut out = format!(
        "{:<10} {:<8} {:<8} {:<3} {:<6} {:<8} {:<9} {}\n",
        "UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"
    );
    for p in processes {
        out.push_str(&format!(
            "{:<10} {:<8} {:<8} {:<3} {:<6} {:<8} {:<9} {}\n",
            user_name(p.uid),
            p.pid,
            p.ppid,
            cpu_utilisation(p, now),
            start_time(p.started, now),
            tty_name(p.tty),
            cpu_time(p.cpu_time),
            p.command
        ));
    }
    out
}

/// The host's name for `uid` (what ps shows), else the number.
fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// ps's C: CPU time over lifetime, in percent.
fn cpu_utilisation(p: &ProcessSummary, now: SystemTime) -> u64 {
    let alive = now
        .duration_since(p.started)
        .unwrap_or_default()
        .as_secs_f64();
    if alive <= 0.0 {
        0
    } else {
        (p.cpu_time.as_secs_f64() / alive * 100.0) as u64
    }
}

/// ps's STIME: the local time of day for processes started today, else the date.
fn start_time(started: SystemTime, now: SystemTime) -> String {
    let (Some(start), Some(today)) = (local_time(started), local_time(now)) else {
        return "?".to_string();
    };
    if (start.tm_year, start.tm_yday) == (today.tm_year, today.tm_yday) {
        format!("{:02}:{:02}", start.tm_hour, start.tm_min)
    } else {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = usize::try_from(start.tm_mon).unwrap_or(0).min(11);
        format!("{}{:02}", MONTHS[month], start.tm_mday)
    }
}

fn local_time(t: SystemTime) -> Option<libc::tm> {
    let secs =
        libc::time_t::try_from(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers point to live values owned by this frame; localtime_r is thread-safe.
    let result = unsafe { libc::localtime_r(&secs, &mut tm) };
    (!result.is_null()).then_some(tm)
}

/// `pts/N` for a pseudo-terminal, `?` for none (major/minor decoded as the kernel packs tty_nr).
fn tty_name(tty: u32) -> String {
    if tty == 0 {
        return "?".to_string();
    }
    let major = (tty >> 8) & 0xfff;
    let minor = (tty & 0xff) | ((tty >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        _ => format!("{major}:{minor}"),
    }
}

/// ps's TIME: `HH:MM:SS` of CPU time.
fn cpu_time(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_columns_read_like_ps() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(34816), "pts/0");
        assert_eq!(tty_name(34817), "pts/1");
        assert_eq!(cpu_time(Duration::from_secs(3725)), "01:02:05");
        let now = SystemTime::now();
        let p = ProcessSummary {
            pid: 42,
            ppid: 1,
            exec_id: None,
            uid: 0,
            state: 'S',
            tty: 0,
            cpu_time: Duration::from_secs(5),
            started: now - Duration::from_secs(10),
            rss_bytes: 4096,
            command: "sleep 600".into(),
        };
        assert_eq!(cpu_utilisation(&p, now), 50);
        let table = format_top(std::slice::from_ref(&p), now);
        let line = table.lines().nth(1).unwrap();
        assert!(line.starts_with("root "), "{line}");
        assert!(line.ends_with(" sleep 600"), "{line}");
        assert!(line.contains(" 42 "), "{line}");
        let old = start_time(now - Duration::from_secs(400 * 86_400), now);
        assert_eq!(old.len(), 5, "{old}");
    }
}
