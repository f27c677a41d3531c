//! `lcd exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER[:GROUP]] CONTAINER COMMAND [ARG...]`: run a
//! command in a running container, as `docker exec` does.
//!
//! lcd's exit status is the command's. A command that does not exist or cannot be run is an `Err`
//! that [`crate::exit`] reports as 127 or 126; every other failure of lcd itself as 125. The exec is
//! deleted once it has exited, so it leaves nothing in containerd or the bundle dir; with `-d` lcd
//! returns as soon as it runs and its output is discarded.

use std::io::Read as _;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use libcontainerd::spec::{read_in_root, resolve_user, ExecUser};
use libcontainerd::{exec_process, DirectIo, Id, Output, Process, StdioConfig};

use crate::cli::ExecArgs;
use crate::context::Ctx;
use crate::cri;
use crate::flags::env_entry;
use crate::state::LABEL_ROOTFS;
use crate::{session, signals, tty};

/// How long to wait, once the process has exited, for output still on its way. Output of
/// background processes that keep the streams open is cut off after this (containerd's shim waits
/// as long before closing the streams of an exec that is deleted).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Run `lcd exec`; returns the exit status lcd should end with.
pub async fn exec(ctx: &Ctx, args: ExecArgs) -> Result<i32> {
    if args.command.is_empty() {
        bail!("exec needs a command: lcd exec [OPTIONS] CONTAINER COMMAND [ARG...]");
    }
    let attach_stdin = args.interactive && !args.detach;
    if args.tty && attach_stdin && !tty::stdin_is_terminal() {
        // docker's message: a terminal needs a terminal to read keys from.
        bail!("the input device is not a TTY; drop -t or run lcd from a terminal");
    }

    let client = ctx.client().await?;
    let (container, task) = crate::state::load_with_task(&client, &args.container).await?;
    let id = container.id().clone();
    let (task, _) = task.ok_or_else(|| anyhow::anyhow!("container {id} is not running"))?;
    let _exec_dir = cri::ExecDirCleanup::new(&container);

    let mut builder =
        exec_process(container.spec(), args.command.iter().cloned()).terminal(args.tty);
    for entry in args.env.iter().filter_map(|e| env_entry(e)) {
        builder = builder.env(entry);
    }
    if let Some(dir) = &args.workdir {
        builder = builder.cwd(dir.clone());
    }
    let user = match &args.user {
        Some(spec) => {
            let found = exec_user(&task, container.labels(), spec)?;
            builder = builder.user(found.uid, found.gid);
            Some(found)
        }
        None => None,
    };
    let size = if args.tty { tty::terminal_size() } else { None };
    if let Some((cols, rows)) = size {
        // runc sizes the terminal before the command runs, so it never sees 0x0.
        builder = builder.console_size(u32::from(cols), u32::from(rows));
    }
    let mut process = builder.build()?;
    if let Some(found) = user {
        // As docker: the primary group, then the user's groups from /etc/group.
        let mut groups = vec![found.gid];
        groups.extend(found.additional_gids.iter().filter(|g| **g != found.gid));
        let mut oci_user = process.user().clone();
        oci_user.set_additional_gids(Some(groups));
        process.set_user(oci_user);
    }

    let stdio = StdioConfig {
        stdin: attach_stdin,
        terminal: args.tty,
        output: if args.detach {
            Output::Null
        } else {
            Output::Pipe
        },
    };
    let exec_id = new_exec_id()?;
    let mut handles = None;
    // A command that does not exist or cannot run is an error like any other: the binary prints it
    // and exits with 127 or 126 (crate::exit::code_of).
    let exec = task
        .exec(&exec_id, process, &stdio, |io| {
            handles = Some(io);
            Ok(())
        })
        .await?;
    if args.detach {
        // Nobody is left to delete it: the exec stays registered (it has no files) until the
        // container's task is deleted, as docker's daemon keeps exec records.
        return Ok(0);
    }
    let io = handles.unwrap_or_default();
    let result = attached(&exec, io, args.tty, size).await;
    if result.is_err() {
        // lcd failed while the command may still run: do not leave it behind.
        if let Err(e) = exec.force_delete().await {
            tracing::debug!(error = %e, "removing the exec after a failure");
        }
    }
    result
}

/// `-u USER[:GROUP]` resolved as docker does, in the container's own /etc/passwd and /etc/group:
/// read through its init's root (`/proc/PID/root`, which is the image's snapshot or the rootfs
/// directory as the container sees them), else in the rootfs directory it was created from.
fn exec_user(
    task: &libcontainerd::Task,
    labels: &std::collections::HashMap<String, String>,
    spec: &str,
) -> Result<ExecUser> {
    let proc_root = PathBuf::from(format!("/proc/{}/root", task.pid()));
    let root = if task.pid() > 0 && proc_root.join("etc").exists() {
        Some(proc_root)
    } else {
        labels.get(LABEL_ROOTFS).map(PathBuf::from)
    };
    let (passwd, group) = match &root {
        Some(root) => (
            read_in_root(root, "/etc/passwd").map_err(|e| anyhow::anyhow!("--user: {e}"))?,
            read_in_root(root, "/etc/group").map_err(|e| anyhow::anyhow!("--user: {e}"))?,
        ),
        None => (None, None),
    };
    resolve_user(passwd.as_deref(), group.as_deref(), spec)
        .map_err(|e| anyhow::anyhow!("--user: {e}"))
}

/// Connect lcd's stdio to the running exec, forward signals and window sizes, and wait for it.
async fn attached(
    exec: &Process,
    mut io: DirectIo,
    terminal: bool,
    size: Option<(u16, u16)>,
) -> Result<i32> {
    // Raw mode only when our stdin is a terminal that feeds the command's terminal; restored when
    // this guard drops, on every return below.
    let stdin = std::io::stdin();
    let _raw = if terminal && io.stdin.is_some() && tty::stdin_is_terminal() {
        Some(tty::RawMode::enable(stdin.as_fd()).context("put the terminal in raw mode")?)
    } else {
        None
    };
    let mut copiers = Vec::new();
    if let Some(out) = io.stdout.take() {
        copiers.push(tokio::spawn(session::copy_out(out, tokio::io::stdout())));
    }
    if let Some(err) = io.stderr.take() {
        copiers.push(tokio::spawn(session::copy_out(err, tokio::io::stderr())));
    }
    let input = io
        .stdin
        .take()
        .map(|stdin| tokio::spawn(tty::forward_input(stdin, None)));

    let mut window = None;
    if terminal {
        // The size may have changed between building the spec and now.
        let now = tty::terminal_size();
        if let Some((cols, rows)) = now.filter(|s| Some(*s) != size) {
            resize(exec, cols, rows).await;
        }
        window = tty::WindowChanges::new(now)
            .map_err(|e| tracing::debug!(error = %e, "listening for window changes"))
            .ok();
    }
    let (mut signals, listeners) = signals::listen(terminal);
    let listeners = signals::AbortOnDrop(listeners);

    let wait = exec.wait();
    tokio::pin!(wait);
    let status = loop {
        tokio::select! {
            status = &mut wait => break status,
            Some(sig) = signals.recv() => {
                let Ok(signal) = libcontainerd::Signal::new(sig) else { continue };
                if let Err(e) = exec.kill(signal).await {
                    tracing::debug!(signal = sig, error = %e, "forwarding a signal");
                }
            }
            Some((cols, rows)) = session::next_size(&mut window) => resize(exec, cols, rows).await,
        }
    };
    drop(listeners);
    let status = status?;

    // The shim closes the streams once the process has exited and its output is copied.
    let drained = drain_all(&mut copiers);
    let _ = tokio::time::timeout(OUTPUT_GRACE, drained).await;
    let deleted = exec.delete().await;
    for copier in copiers {
        copier.abort();
    }
    if let Some(input) = input {
        input.abort();
    }
    match deleted {
        // Deleted already by another lcd that found it stopped with its output read (see
        // `Task::release_abandoned_execs`): the exit status is ours all the same.
        Err(e) if e.kind() == libcontainerd::ErrorKind::NotFound => {}
        other => {
            other?;
        }
    }
    Ok(i32::try_from(status.code).unwrap_or(255))
}

/// Wait for every copier (in turn: each ends by itself once the shim closes its stream).
async fn drain_all(copiers: &mut [tokio::task::JoinHandle<()>]) {
    for copier in copiers.iter_mut() {
        let _ = copier.await;
    }
}

async fn resize(exec: &Process, cols: u16, rows: u16) {
    if let Err(e) = exec.resize(u32::from(cols), u32::from(rows)).await {
        tracing::debug!(error = %e, "resizing the exec's terminal");
    }
}

/// A fresh exec id, `exec-` and 12 random hex digits, as docker makes them random.
fn new_exec_id() -> Result<Id> {
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("read /dev/urandom for an exec id")?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Id::new(format!("exec-{hex}"))?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exec_ids_are_valid_and_distinct() {
        let a = new_exec_id().unwrap();
        let b = new_exec_id().unwrap();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("exec-"));
        assert_eq!(a.as_str().len(), "exec-".len() + 12);
    }
}
