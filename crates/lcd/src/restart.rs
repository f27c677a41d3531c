//! docker's restart policies (`--restart no|on-failure[:N]|always|unless-stopped`) and the rule
//! that decides, at each exit, whether a container runs again and after how long.
//!
//! The rule is docker's restart manager's: a policy, the exit code, whether the user stopped the
//! container (`lcd stop`, `lcd kill`, `lcd rm -f` mark it so), and a delay that starts at 100 ms,
//! doubles at each restart up to one minute, and falls back to 100 ms once a run lasted 10 s.
//! `on-failure:N` gives up after N restarts. What is kept between lcd processes is in container
//! labels: the policy, the restart count, the "stopped by the user" mark.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};

/// The policy, as given to `--restart`.
pub const LABEL_RESTART: &str = "io.lcd.restart";
/// How many times the agent restarted the container (docker's RestartCount).
pub const LABEL_RESTART_COUNT: &str = "io.lcd.restart-count";
/// Present once the user stopped the container (`stop`, `kill`, `rm -f`); `start` clears it.
pub const LABEL_STOPPED_BY_USER: &str = "io.lcd.stopped-by-user";
/// Present on a container that `run -d --rm` made: the agent removes it once it exits.
pub const LABEL_AUTO_REMOVE: &str = "io.lcd.auto-remove";
/// Present on a container whose task was started detached: its exit is the agent's to record
/// (an attached `lcd run`/`lcd start -a` records its own).
pub const LABEL_DETACHED: &str = "io.lcd.detached";

/// The first delay before a restart.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// A restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Never restart (the default).
    No,
    /// Restart after a non-zero exit, at most `max` times (0: no limit).
    OnFailure { max: u32 },
    /// Always restart, and again when the managed containerd starts, even after `lcd stop`.
    Always,
    /// As `always`, except after `lcd stop` (not even when containerd starts again).
    UnlessStopped,
}

impl std::str::FromStr for Policy {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Policy> {
        let (name, count) = match s.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (s, None),
        };
        let policy = match (name, count) {
            ("no" | "", None) => Policy::No,
            ("always", None) => Policy::Always,
            ("unless-stopped", None) => Policy::UnlessStopped,
            ("on-failure", None) => Policy::OnFailure { max: 0 },
            ("on-failure", Some(n)) => match n.parse::<i64>() {
                Ok(max) if max >= 0 => Policy::OnFailure {
                    max: u32::try_from(max).unwrap_or(u32::MAX),
                },
                Ok(_) => bail!("invalid restart policy: maximum retry count cannot be negative"),
                Err(_) => {
                    bail!("invalid restart policy format: maximum retry count must be an integer")
                }
            },
            ("no" | "always" | "unless-stopped", Some(_)) => {
                bail!("invalid restart policy format: maximum retry count can only be used with 'on-failure'")
            }
            _ => bail!("invalid restart policy format: no such policy: {name}"),
        };
        Ok(policy)
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::No => f.write_str("no"),
            Policy::OnFailure { max: 0 } => f.write_str("on-failure"),
            Policy::OnFailure { max } => write!(f, "on-failure:{max}"),
            Policy::Always => f.write_str("always"),
            Policy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl Policy {
    /// A container's policy, from its labels (`no` when it has none or an unreadable one).
    pub fn of(labels: &HashMap<String, String>) -> Policy {
        labels
            .get(LABEL_RESTART)
            .and_then(|p| p.parse().ok())
            .unwrap_or(Policy::No)
    }

    /// docker's name for inspect's `HostConfig.RestartPolicy.Name`.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::No => "no",
            Policy::OnFailure { .. } => "on-failure",
            Policy::Always => "always",
            Policy::UnlessStopped => "unless-stopped",
        }
    }

    /// `on-failure`'s limit (0 for the others), inspect's `MaximumRetryCount`.
    pub fn max_retries(&self) -> u32 {
        match self {
            Policy::OnFailure { max } => *max,
            _ => 0,
        }
    }

    /// Whether a container that just exited with `code` runs again. `stopped_by_user`: `lcd stop`,
    /// `kill` or `rm -f` ended it, which no policy overrides at an exit; `restarts`: how many
    /// times it was restarted so far.
    pub fn restarts_after_exit(&self, code: u32, stopped_by_user: bool, restarts: u32) -> bool {
        !stopped_by_user && self.applies(code, false, restarts)
    }

    /// Whether a container that is not running is started when the managed containerd starts
    /// again: `always` even after `lcd stop`, `unless-stopped` only if the user did not stop it,
    /// `on-failure` if it failed and has retries left (docker's daemon start).
    pub fn restarts_at_boot(&self, code: u32, stopped_by_user: bool, restarts: u32) -> bool {
        self.applies(code, stopped_by_user, restarts)
    }

    fn applies(&self, code: u32, stopped_by_user: bool, restarts: u32) -> bool {
        match self {
            Policy::No => false,
            Policy::Always => true,
            Policy::UnlessStopped => !stopped_by_user,
            Policy::OnFailure { max } => code != 0 && (*max == 0 || restarts < *max),
        }
    }
}

/// The container's restart count, from its labels.
pub fn count(labels: &HashMap<String, String>) -> u32 {
    labels
        .get(LABEL_RESTART_COUNT)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The delay before the next restart: the previous delay doubled (the first is 100 ms), at most a
/// minute; a run that lasted 10 s starts over at 100 ms.
pub fn next_delay(previous: Option<Duration>, ran_for: Duration) -> Duration {
    match previous {
        Some(previous) if ran_for < STABLE_RUN => (previous * 2).min(MAX_DELAY),
        _ => FIRST_DELAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_dockers() {
        assert_eq!("no".parse::<Policy>().unwrap(), Policy::No);
        assert_eq!("always".parse::<Policy>().unwrap(), Policy::Always);
        assert_eq!(
            "unless-stopped".parse::<Policy>().unwrap(),
            Policy::UnlessStopped
        );
        assert_eq!(
            "on-failure".parse::<Policy>().unwrap(),
            Policy::OnFailure { max: 0 }
        );
        assert_eq!(
            "on-failure:3".parse::<Policy>().unwrap(),
            Policy::OnFailure { max: 3 }
        );
        for bad in ["sometimes", "always:2", "on-failure:x", "on-failure:-1"] {
            let err = bad.parse::<Policy>().unwrap_err().to_string();
            assert!(err.starts_with("invalid restart policy"), "{bad}: {err}");
        }
        assert_eq!(Policy::OnFailure { max: 3 }.to_string(), "on-failure:3");
    }

    #[test]
    fn the_rule_is_dockers() {
        let on_failure = Policy::OnFailure { max: 2 };
        assert!(on_failure.restarts_after_exit(1, false, 1));
        assert!(!on_failure.restarts_after_exit(1, false, 2));
        assert!(!on_failure.restarts_after_exit(0, false, 0));
        assert!(Policy::Always.restarts_after_exit(0, false, 9));
        assert!(!Policy::Always.restarts_after_exit(0, true, 0));
        assert!(Policy::Always.restarts_at_boot(0, true, 0));
        assert!(!Policy::UnlessStopped.restarts_at_boot(0, true, 0));
        assert!(Policy::UnlessStopped.restarts_at_boot(0, false, 0));
        assert!(!Policy::No.restarts_at_boot(1, false, 0));
    }

    #[test]
    fn delays_double_up_to_a_minute_and_reset_after_a_stable_run() {
        let short = Duration::from_secs(1);
        let first = next_delay(None, short);
        assert_eq!(first, Duration::from_millis(100));
        assert_eq!(next_delay(Some(first), short), Duration::from_millis(200));
        assert_eq!(
            next_delay(Some(Duration::from_secs(50)), short),
            Duration::from_secs(60)
        );
        assert_eq!(
            next_delay(Some(Duration::from_secs(50)), Duration::from_secs(10)),
            Duration::from_millis(100)
        );
    }
}
