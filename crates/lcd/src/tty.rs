//! Terminal handling for `lcd run -t`, `lcd exec -t` and `lcd attach`: raw mode that is restored on
//! every way out, the window size, window-change notifications, and the detach key sequence.
//!
//! Raw mode is restored by [`RawMode`]'s `Drop` (normal returns, `?`, and unwinding panics) and by a
//! panic hook (also with `panic = "abort"`). Signals do not bypass it: the commands that use a
//! terminal catch the terminating signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) to forward them to the
//! container, so lcd itself always leaves through a normal return. SIGKILL cannot be caught by
//! anyone; `stty sane` (or `reset`) is the cure there, as for every program.

use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Mutex, Once};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The terminal settings to put back, for the panic hook (which cannot reach the guard).
static SAVED: Mutex<Option<(RawFd, libc::termios)>> = Mutex::new(None);

/// Guard that keeps a terminal in raw mode; dropping it restores the settings it found.
#[derive(Debug)]
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Put the terminal on `fd` (usually stdin) in raw mode: no echo, no line editing, no signals
    /// from keys (Ctrl-C is a byte for the container's terminal), no output processing (the
    /// container's terminal already turns `\n` into `\r\n`). Fails if `fd` is not a terminal.
    pub fn enable(fd: BorrowedFd<'_>) -> std::io::Result<RawMode> {
        install_panic_hook();
        let saved = tcgetattr(fd).map_err(std::io::Error::from)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let guard = RawMode {
            fd: fd.as_raw_fd(),
            saved: saved.into(),
        };
        *lock_saved() = Some((guard.fd, guard.saved));
        tcsetattr(fd, SetArg::TCSADRAIN, &raw).map_err(std::io::Error::from)?;
        Ok(guard)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_fd(self.fd, &self.saved);
        let mut saved = lock_saved();
        if saved.as_ref().is_some_and(|(fd, _)| *fd == self.fd) {
            *saved = None;
        }
    }
}

fn lock_saved() -> std::sync::MutexGuard<'static, Option<(RawFd, libc::termios)>> {
    // A panic while holding the lock leaves a complete value behind: recover it.
    SAVED.lock().unwrap_or_else(|p| p.into_inner())
}

fn restore_fd(fd: RawFd, termios: &libc::termios) {
    // SAFETY: tcsetattr only reads the termios struct, which outlives the call; an fd that is no
    // longer a terminal makes it fail with an error we have nothing to do about.
    unsafe {
        libc::tcsetattr(fd, libc::TCSADRAIN, termios);
    }
}

/// Put back the settings of a terminal in raw mode now, if any; for exit paths that bypass `Drop`.
pub fn restore() {
    // try_lock: a panic inside `RawMode::enable` (while locked) must not deadlock the hook.
    let saved = match SAVED.try_lock() {
        Ok(guard) => *guard,
        Err(std::sync::TryLockError::Poisoned(p)) => *p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    if let Some((fd, termios)) = saved {
        restore_fd(fd, &termios);
    }
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Restore first, so the panic message is readable on a sane terminal.
            restore();
            previous(info);
        }));
    });
}

/// The size of the terminal on `fd` as (columns, rows), or `None` if it is not a terminal.
pub fn size_of(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points to a live local.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// The size of lcd's terminal: that of stdout, else stdin, else stderr (as docker looks at its
/// output stream first).
pub fn terminal_size() -> Option<(u16, u16)> {
    size_of(std::io::stdout().as_fd())
        .or_else(|| size_of(std::io::stdin().as_fd()))
        .or_else(|| size_of(std::io::stderr().as_fd()))
}

/// Whether lcd's stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Window size changes of lcd's terminal (SIGWINCH), as new sizes.
pub struct WindowChanges {
    signal: Signal,
    last: Option<(u16, u16)>,
}

impl WindowChanges {
    /// Start listening; `current` is the size already sent, so an unchanged size is not resent.
    pub fn new(current: Option<(u16, u16)>) -> std::io::Result<WindowChanges> {
        Ok(WindowChanges {
            signal: signal(SignalKind::window_change())?,
            last: current,
        })
    }

    /// Wait for the next change of size and return it.
    pub async fn next(&mut self) -> Option<(u16, u16)> {
        loop {
            self.signal.recv().await?;
            if let Some(size) = terminal_size() {
                if self.last != Some(size) {
                    self.last = Some(size);
                    return Some(size);
                }
            }
        }
    }
}

/// docker's default detach keys: Ctrl-P Ctrl-Q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Parse docker's `--detach-keys` format: comma-separated keys, each a single character or
/// `ctrl-<x>` with `<x>` a letter or one of `@ [ \ ] ^ _` (e.g. `ctrl-p,ctrl-q`).
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut keys = Vec::new();
    for key in spec.split(',') {
        let lower = key.to_ascii_lowercase();
        let code = match lower.strip_prefix("ctrl-") {
            Some(rest) if rest.len() == 1 => {
                let c = rest.as_bytes()[0];
                match c {
                    b'a'..=b'z' => c - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(format!("invalid detach key {key:?}")),
                }
            }
            _ if key.len() == 1 => key.as_bytes()[0],
            _ => {
                return Err(format!(
                    "invalid detach key {key:?}: use a single character or ctrl-<letter>"
                ))
            }
        };
        keys.push(code);
    }
    if keys.is_empty() || spec.is_empty() {
        return Err("no detach keys given".to_string());
    }
    Ok(keys)
}

/// Watches input on its way to a container for the detach sequence. Bytes that might begin the
/// sequence are held back until it is clear whether they do; the sequence itself never reaches the
/// container.
#[derive(Debug, Clone)]
pub struct DetachDetector {
    keys: Vec<u8>,
    held: Vec<u8>,
}

/// What to do with one chunk of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Bytes to pass on to the container, in order.
    pub forward: Vec<u8>,
    /// The detach sequence was typed: stop forwarding (input after it is dropped).
    pub detach: bool,
}

impl DetachDetector {
    /// A detector for `keys` (e.g. [`DEFAULT_DETACH_KEYS`]).
    pub fn new(keys: &[u8]) -> DetachDetector {
        DetachDetector {
            keys: keys.to_vec(),
            held: Vec::new(),
        }
    }

    /// Scan one chunk of input.
    pub fn scan(&mut self, input: &[u8]) -> Scanned {
        let mut forward = Vec::with_capacity(input.len());
        for &byte in input {
            if self.keys.is_empty() {
                forward.push(byte);
                continue;
            }
            self.held.push(byte);
            // Release held bytes from the front until what is held is a prefix of the sequence
            // again, so a sequence that starts inside a false start is still found.
            while !self.keys.starts_with(&self.held) {
                forward.push(self.held.remove(0));
            }
            if self.held.len() == self.keys.len() {
                self.held.clear();
                return Scanned {
                    forward,
                    detach: true,
                };
            }
        }
        Scanned {
            forward,
            detach: false,
        }
    }

    /// Bytes still held back, to pass on when input ends.
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// How forwarding lcd's stdin to a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEnd {
    /// lcd's stdin ended; the container's stdin was closed (it sees end of file).
    Eof,
    /// The detach sequence was typed; the container's stdin stays open for a later attach.
    Detached,
    /// The container's stdin is gone (the process exited); nothing more to forward.
    Closed,
}

/// Copy lcd's stdin to the container's `stdin` until it ends, watching for the detach sequence if
/// `detach` is given. On end of input the container's stdin is closed, so it sees end of file.
pub async fn forward_input(
    mut stdin: libcontainerd::Stdin,
    mut detach: Option<DetachDetector>,
) -> InputEnd {
    let mut ours = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match ours.read(&mut buf).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if n == 0 {
            if let Some(d) = detach.as_mut() {
                let held = d.take_held();
                let _ = stdin.write_all(&held).await;
            }
            if let Err(e) = stdin.close().await {
                tracing::warn!(error = %e, "closing the container's stdin");
            }
            return InputEnd::Eof;
        }
        let (chunk, detached) = match detach.as_mut() {
            Some(d) => {
                let scanned = d.scan(&buf[..n]);
                (scanned.forward, scanned.detach)
            }
            None => (buf[..n].to_vec(), false),
        };
        if !chunk.is_empty() && stdin.write_all(&chunk).await.is_err() {
            return InputEnd::Closed;
        }
        if detached {
            // Leave the container's stdin open: dropping the handle would close it (CloseIO).
            stdin.detach();
            return InputEnd::Detached;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scan_all(d: &mut DetachDetector, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        for chunk in chunks {
            let s = d.scan(chunk);
            out.extend(s.forward);
            if s.detach {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn plain_input_passes_through() {
        let mut d = DetachDetector::new(&DEFAULT_DETACH_KEYS);
        assert_eq!(
            scan_all(&mut d, &[b"ls -l\r"]),
            (b"ls -l\r".to_vec(), false)
        );
    }

    #[test]
    fn the_sequence_detaches_and_is_not_forwarded() {
        let mut d = DetachDetector::new(&DEFAULT_DETACH_KEYS);
        assert_eq!(
            scan_all(&mut d, &[b"abc\x10\x11def"]),
            (b"abc".to_vec(), true)
        );
    }

    #[test]
    fn the_sequence_is_found_across_reads() {
        let mut d = DetachDetector::new(&DEFAULT_DETACH_KEYS);
        let first = d.scan(b"x\x10");
        assert_eq!(first.forward, b"x");
        assert!(!first.detach);
        let second = d.scan(b"\x11");
        assert!(second.detach);
        assert!(second.forward.is_empty());
    }

    #[test]
    fn a_false_start_is_forwarded_whole() {
        let mut d = DetachDetector::new(&DEFAULT_DETACH_KEYS);
        // Ctrl-P alone (previous-history in a shell) reaches the container once the next key
        // shows it is not the sequence.
        assert_eq!(
            scan_all(&mut d, &[b"\x10", b"a"]),
            (b"\x10a".to_vec(), false)
        );
        // Ctrl-P Ctrl-P Ctrl-Q: the first Ctrl-P is input, the rest detaches.
        let mut d = DetachDetector::new(&DEFAULT_DETACH_KEYS);
        assert_eq!(
            scan_all(&mut d, &[b"\x10\x10\x11"]),
            (b"\x10".to_vec(), true)
        );
    }

    #[test]
    fn a_sequence_starting_inside_a_false_start_is_found() {
        let mut d = DetachDetector::new(b"aab");
        assert_eq!(scan_all(&mut d, &[b"aaab"]), (b"a".to_vec(), true));
        let mut d = DetachDetector::new(b"aab");
        assert_eq!(scan_all(&mut d, &[b"aac"]), (b"aac".to_vec(), false));
    }

    #[test]
    fn held_bytes_are_released_at_end_of_input() {
        let mut d = DetachDetector::new(&DEFAULT_DETACH_KEYS);
        assert_eq!(scan_all(&mut d, &[b"q\x10"]), (b"q".to_vec(), false));
        assert_eq!(d.take_held(), b"\x10");
    }

    #[test]
    fn no_keys_means_no_detaching() {
        let mut d = DetachDetector::new(&[]);
        assert_eq!(
            scan_all(&mut d, &[b"\x10\x11"]),
            (b"\x10\x11".to_vec(), false)
        );
    }

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(
            parse_detach_keys("ctrl-@,a,ctrl-[").unwrap(),
            vec![0, b'a', 27]
        );
        assert_eq!(parse_detach_keys("CTRL-A").unwrap(), vec![1]);
        for bad in ["", "ctrl-", "ctrl-1", "ab", "ctrl-p,"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad:?}");
        }
    }

    /// The saved settings are process-global: tests that switch raw mode take turns.
    static RAW_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn raw_mode_round_trips_on_a_pseudo_terminal() {
        let _turn = RAW_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let pty = nix::pty::openpty(None, None).unwrap();
        let before = tcgetattr(&pty.slave).unwrap();
        assert!(before
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ECHO));
        {
            let _raw = RawMode::enable(pty.slave.as_fd()).unwrap();
            let during = tcgetattr(&pty.slave).unwrap();
            assert!(!during
                .local_flags
                .contains(nix::sys::termios::LocalFlags::ECHO));
            assert!(!during
                .local_flags
                .contains(nix::sys::termios::LocalFlags::ICANON));
        }
        let after = tcgetattr(&pty.slave).unwrap();
        assert_eq!(after.local_flags, before.local_flags);
        assert_eq!(after.input_flags, before.input_flags);
        assert_eq!(after.output_flags, before.output_flags);
    }

    #[test]
    fn raw_mode_is_restored_by_restore_too() {
        let _turn = RAW_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let pty = nix::pty::openpty(None, None).unwrap();
        let before = tcgetattr(&pty.slave).unwrap();
        let raw = RawMode::enable(pty.slave.as_fd()).unwrap();
        // What the panic hook does.
        restore();
        let after = tcgetattr(&pty.slave).unwrap();
        assert_eq!(after.local_flags, before.local_flags);
        drop(raw);
    }

    #[test]
    fn a_non_terminal_is_refused_and_has_no_size() {
        let file = tempfile::tempfile().unwrap();
        assert!(RawMode::enable(file.as_fd()).is_err());
        assert_eq!(size_of(file.as_fd()), None);
    }

    #[test]
    fn the_size_of_a_pseudo_terminal_is_read() {
        let ws = nix::pty::Winsize {
            ws_row: 33,
            ws_col: 111,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        assert_eq!(size_of(pty.slave.as_fd()), Some((111, 33)));
    }
}
