//! Execs whose client went away, e.g. killed between creating an exec's FIFOs and reading them.
//!
//! containerd's runc shim opens an exec's output FIFOs for writing while it starts the exec, and
//! that open waits for a reader: with the client dead, it waits up to 30 s, and meanwhile the shim
//! answers no state call, so containerd reports the whole task as UNKNOWN with pid 0 and stop,
//! pause and kill cannot reach it. Any later client can end that by opening the FIFOs for reading.
//!
//! A live client holds a shared `flock` on its output FIFOs (taken when it opens them, before the
//! exec exists in containerd), so an exec whose FIFOs nobody has locked has no client: once it has
//! stopped it is deleted and its FIFOs with it, which otherwise stayed in the bundle until the
//! container was removed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::{get_exec, Process};
use crate::error::{ErrorKind, Result};
use crate::id::Id;
use crate::task::{Task, TaskStatus};

/// The output streams whose FIFOs a client reads.
const OUTPUT_STREAMS: [&str; 2] = ["stdout", "stderr"];

impl Task {
    /// Release the execs of this task that no client holds: open their output FIFOs (which lets a
    /// shim stuck opening them go on, and the task answer again), and delete those that have
    /// stopped, with their FIFOs. Execs a live client holds are not touched. Returns how many
    /// execs were found without a client.
    pub async fn release_abandoned_execs(&self) -> Result<usize> {
        let bundle = self.container().bundle_dir().to_path_buf();
        let mut released = 0;
        for exec_id in exec_ids_with_fifos(&bundle, self.id()) {
            // Held until containerd has answered about the exec: the shim opens stdout, then
            // stderr, and each open must find a reader.
            let Some(readers) = unowned_readers(&bundle, &exec_id) else {
                continue;
            };
            released += 1;
            let client = self.container().client();
            match get_exec(client, self.id(), &exec_id).await {
                Ok(process) if TaskStatus::from_proto(process.status) == TaskStatus::Stopped => {
                    let exec = Process {
                        task: self.clone(),
                        id: exec_id.clone(),
                        pid: process.pid,
                        terminal: process.terminal,
                    };
                    if let Err(e) = exec.delete().await {
                        tracing::debug!(exec = %exec_id, error = %e, "deleting an abandoned exec");
                    }
                }
                // Still running: its FIFOs stay until it ends (the shim holds them open).
                Ok(_) => {}
                // Not created yet, or already gone: a client may be about to create it.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::debug!(exec = %exec_id, error = %e, "state of an abandoned exec")
                }
            }
            drop(readers);
        }
        Ok(released)
    }
}

/// The exec ids that have FIFOs in `bundle` (the init process's carry the container id).
fn exec_ids_with_fifos(bundle: &Path, container_id: &Id) -> Vec<Id> {
    let Ok(entries) = std::fs::read_dir(bundle) else {
        return Vec::new();
    };
    let mut ids: Vec<Id> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_fifo()).unwrap_or(false))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (id, stream) = name.rsplit_once('-')?;
            if !OUTPUT_STREAMS.contains(&stream) || id == container_id.as_str() {
                return None;
            }
            Id::new(id).ok()
        })
        .collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.dedup();
    ids
}

/// Open the output FIFOs of `exec_id` for reading, unless a live client holds them (then None).
fn unowned_readers(bundle: &Path, exec_id: &Id) -> Option<Vec<File>> {
    let mut readers = Vec::new();
    for stream in OUTPUT_STREAMS {
        let path = bundle.join(format!("{exec_id}-{stream}"));
        // Non-blocking: opening a FIFO's read side never waits for a writer then.
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        if !file
            .metadata()
            .map(|m| m.file_type().is_fifo())
            .unwrap_or(false)
        {
            continue;
        }
        // SAFETY: flock on a descriptor we own; it does not touch memory.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            return None;
        }
        readers.push(file);
    }
    (!readers.is_empty()).then_some(readers)
}

/// Mark an output FIFO as held by a live client (see the module's notes). Waits while another
/// client looks at the FIFO (it holds the exclusive lock for one state call). Best effort: a lock
/// that cannot be taken only makes the exec look abandoned to a later client once it has stopped.
pub(crate) fn hold(fd: &impl AsRawFd) {
    // SAFETY: flock on a descriptor the caller owns; it does not touch memory.
    let held = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_SH) };
    if held != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "locking an output fifo");
    }
}

/// Remove every exec's FIFOs from `bundle`, once the task, and so every exec, is gone.
pub(crate) fn remove_exec_fifos(bundle: &Path, container_id: &Id) {
    for exec_id in exec_ids_with_fifos(bundle, container_id) {
        if let Err(e) = crate::io::all_fifos(bundle, exec_id.as_str()).remove() {
            tracing::debug!(exec = %exec_id, error = %e, "removing an exec's fifos");
        }
    }
}
