//! Signals as a checked value: a [`Signal`] is always one the kernel knows (1 to 64), so a kill
//! can only fail for reasons of the process, never of the number.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The highest signal number on Linux (`SIGRTMAX`).
const MAX: i32 = 64;

/// The standard signals by name, in number order (x86-64 and every other Linux architecture
/// that containerd supports share these numbers).
const NAMES: [(&str, i32); 30] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
];

/// A signal number the kernel knows: 1 to 64.
///
/// Parse one from a number, a name (`TERM`, `SIGTERM`, any case) or a realtime offset
/// (`RTMIN+3`, `RTMAX-1`), as docker's `--signal` and `--stop-signal` take them. Every kill
/// ([`Task::kill`](crate::Task::kill), [`Task::kill_all`](crate::Task::kill_all),
/// [`Process::kill`](crate::Process::kill)) takes one, so a bad number fails where it is made.
///
/// ```
/// use libcontainerd::Signal;
///
/// assert_eq!("SIGTERM".parse::<Signal>()?, Signal::TERM);
/// assert_eq!("kill".parse::<Signal>()?, Signal::new(9)?);
/// assert_eq!(Signal::TERM.to_string(), "SIGTERM");
/// assert!(Signal::new(65).is_err());
/// # Ok::<(), libcontainerd::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

impl Signal {
    /// `SIGHUP`.
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGKILL`: cannot be caught; ends the process.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGTERM`: the polite stop, docker's default stop signal.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGCONT`.
    pub const CONT: Signal = Signal(libc::SIGCONT);
    /// `SIGSTOP`: cannot be caught.
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// `SIGWINCH`.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);

    /// The signal numbered `number`; [`ErrorKind::InvalidArgument`](crate::ErrorKind) outside 1 to 64.
    pub fn new(number: i32) -> Result<Signal> {
        if (1..=MAX).contains(&number) {
            Ok(Signal(number))
        } else {
            Err(Error::invalid(format!(
                "invalid signal {number}: numbers go from 1 to {MAX}"
            )))
        }
    }

    /// The signal's number.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// The number as containerd's Kill request takes it.
    pub(crate) fn as_u32(self) -> u32 {
        self.0.unsigned_abs()
    }

    /// The name without `SIG` (`TERM`, `RTMIN+3`), or `None` for a number with no name.
    pub fn name(self) -> Option<String> {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return Some((*name).to_string());
        }
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        match self.0 {
            n if n == min => Some("RTMIN".into()),
            n if n == max => Some("RTMAX".into()),
            n if n > min && n < max => Some(format!("RTMIN+{}", n - min)),
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "SIG{name}"),
            None => write!(f, "signal {}", self.0),
        }
    }
}

impl FromStr for Signal {
    type Err = Error;

    fn from_str(s: &str) -> Result<Signal> {
        if let Ok(n) = s.parse::<i32>() {
            return Signal::new(n);
        }
        let upper = s.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((_, n)) = NAMES.iter().find(|(known, _)| *known == name) {
            return Ok(Signal(*n));
        }
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        let realtime = match name {
            "RTMIN" => Some(min),
            "RTMAX" => Some(max),
            _ => name
                .strip_prefix("RTMIN+")
                .and_then(|k| k.parse::<i32>().ok())
                .map(|k| min + k)
                .or_else(|| {
                    name.strip_prefix("RTMAX-")
                        .and_then(|k| k.parse::<i32>().ok())
                        .map(|k| max - k)
                }),
        };
        match realtime {
            Some(n) if (min..=max).contains(&n) => Ok(Signal(n)),
            _ => Err(Error::invalid(format!(
                "invalid signal {s:?}: use a name like TERM or a number from 1 to {MAX}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime_offsets() {
        assert_eq!("KILL".parse::<Signal>().unwrap(), Signal::KILL);
        assert_eq!("sigterm".parse::<Signal>().unwrap(), Signal::TERM);
        assert_eq!("2".parse::<Signal>().unwrap(), Signal::INT);
        assert_eq!("64".parse::<Signal>().unwrap().as_raw(), 64);
        let rt3 = "RTMIN+3".parse::<Signal>().unwrap();
        assert_eq!(rt3.as_raw(), libc::SIGRTMIN() + 3);
        assert_eq!(rt3.to_string(), "SIGRTMIN+3");
        assert_eq!(
            "SIGRTMAX-1".parse::<Signal>().unwrap().as_raw(),
            libc::SIGRTMAX() - 1
        );
        for bad in ["0", "65", "-1", "NOPE", "", "RTMIN+99", "RTMAX-x"] {
            assert!(bad.parse::<Signal>().is_err(), "{bad:?}");
        }
        assert!(Signal::new(0).is_err());
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal::new(32).unwrap().to_string(), "signal 32");
    }

    #[test]
    fn every_name_round_trips() {
        for (name, n) in NAMES {
            let signal = Signal::new(n).unwrap();
            assert_eq!(signal.name().as_deref(), Some(name));
            assert_eq!(name.parse::<Signal>().unwrap(), signal);
        }
    }
}
