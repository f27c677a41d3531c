//! Fault injection for the crash tests: with `LCD_CRASH_AT=POINT` in its environment, lcd kills
//! itself with SIGKILL when it reaches the named point, as a user's `kill -9` could at that moment,
//! so that a test can check what such a kill leaves without racing a timer. Points:
//! - `start-after-task-create`: a detached start, after the task (and its logger) exist, before
//!   the process runs;
//! - `rm-after-exit-recorded`: `rm -f`, after the exit is recorded and the task deleted, before the
//!   container goes;
//! - `rm-after-kill`: `rm -f`, after the container's process was killed, before its exit is
//!   recorded.

/// Die here if `LCD_CRASH_AT` names `point`.
pub fn crash_point(point: &str) {
    if std::env::var_os("LCD_CRASH_AT").is_some_and(|at| at == point) {
        // SAFETY: raising a signal on ourselves has no memory-safety preconditions.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}
