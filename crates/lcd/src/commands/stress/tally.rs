//! What the workers record: successes, failures (and the first failure's message), and each phase's
//! latencies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::histogram::{micros, Histogram};
use crate::exit;

/// The phases of one container lifecycle, timed separately; together they cover the whole
/// lifecycle (all that is left out is building the spec and the id, microseconds):
/// `create` = `Client::new_container` (Containers.Create, bundle dir), `start` = `Container::start`
/// (FIFOs, Tasks.Create: shim and `runc create`, Tasks.Start), `wait` = `Task::wait` (until the
/// exit), `delete` = `Task::delete` (Tasks.Delete: `runc delete`, shim shutdown), `remove` =
/// `Container::delete` (Containers.Delete, bundle dir). The exec mode times `start` (exec and
/// start), `wait` and `delete` of the exec process only.
pub const PHASES: [&str; 5] = ["create", "start", "wait", "delete", "remove"];
pub const CREATE: usize = 0;
pub const START: usize = 1;
pub const WAIT: usize = 2;
pub const DELETE: usize = 3;
pub const REMOVE: usize = 4;

/// The counts and latencies of one run, shared by its workers.
#[derive(Default)]
pub struct Tally {
    /// Operations that succeeded.
    pub ok: AtomicU64,
    /// Operations that failed.
    pub failed: AtomicU64,
    /// Per phase (index into [`PHASES`]).
    pub phases: Mutex<[Histogram; PHASES.len()]>,
    /// Whole successful operations (lifecycles or execs), end to end.
    pub ops: Mutex<Histogram>,
    /// The first failure's message, for the report.
    pub first_error: Mutex<Option<String>>,
}

impl Tally {
    /// One phase of an operation took `took`.
    pub fn record(&self, phase: usize, took: Duration) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        phases[phase].record(micros(took));
    }

    /// An operation succeeded, end to end in `took`.
    pub fn succeed(&self, took: Duration) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.record(micros(took));
    }

    /// An operation failed with `e`.
    pub fn fail(&self, e: &anyhow::Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| exit::one_line(e));
    }
}
