//! `lcd run`, `lcd create` and `lcd start`: build a spec, create the container, run its task attached
//! (stdio forwarded, signals proxied, exit status returned) or detached (output to a log file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use libcontainerd::spec::{parse_bytes, parse_user, SpecBuilder};
use libcontainerd::{Container, ErrorKind, Id, Output, StdioConfig, Task, TaskStatus};

use crate::cli::{CreateArgs, RunArgs, StartArgs};
use crate::context::Ctx;
use crate::session;
use crate::state::{self, LABEL_ROOTFS, LABEL_STDIN};
use crate::tty;

/// `lcd run`: create, start, and (unless detached) wait and return the container's exit status.
pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    if args.detach && args.rm {
        bail!(
            "--rm with -d is not supported yet: remove the container with `lcd rm` when it is done"
        );
    }
    let interactive = args.create.interactive;
    let container = create_container(ctx, &args.create).await?;
    let outcome = if args.detach {
        start_detached(ctx, &container, interactive).await.map(|_| {
            println!("{}", container.id());
            0
        })
    } else {
        run_attached(container.clone(), interactive, args.rm).await
    };
    if outcome.is_err() || args.rm {
        // Nothing half-made stays behind when run fails, and --rm removes it either way.
        remove_quietly(&container).await;
    }
    outcome
}

/// `lcd create`: the first half of run; prints the id.
pub async fn create(ctx: &Ctx, args: CreateArgs) -> Result<i32> {
    let container = create_container(ctx, &args).await?;
    println!("{}", container.id());
    Ok(0)
}

/// `lcd start`: the second half of run, for a created (or stopped) container.
pub async fn start(ctx: &Ctx, args: StartArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let id = Id::new(args.id.as_str())?;
    let (container, task) = client.load_container_and_task(&id).await?;
    match task {
        Some((task, TaskStatus::Stopped)) => {
            state::reap(&container, &task).await?;
        }
        Some((_, status)) => bail!("container {id} is already {status}"),
        None => {}
    }
    let stdin = args.interactive && container.labels().contains_key(LABEL_STDIN);
    if let Some(dir) = &args.checkpoint {
        // A restored process keeps the stdio it was checkpointed with: output goes to the log.
        let dir = std::path::absolute(dir)
            .with_context(|| format!("resolve checkpoint directory {}", dir.display()))?;
        let config = StdioConfig {
            stdin: false,
            terminal: false,
            output: ctx.log_output(container.id())?,
        };
        container.start(Some(&dir), &config, |_| Ok(())).await?;
        println!("{id}");
        return Ok(0);
    }
    if args.attach {
        run_attached(container, stdin, false).await
    } else {
        start_detached(ctx, &container, stdin).await?;
        println!("{id}");
        Ok(0)
    }
}

async fn create_container(ctx: &Ctx, args: &CreateArgs) -> Result<Container> {
    let rootfs = resolve_rootfs(&args.rootfs)?;
    let id = match &args.name {
        Some(name) => Id::new(name.as_str())?,
        None => state::generate_id()?,
    };
    let spec = build_spec(args, &rootfs)?;
    let mut labels = HashMap::new();
    labels.insert(LABEL_ROOTFS.to_string(), rootfs.display().to_string());
    if args.interactive {
        labels.insert(LABEL_STDIN.to_string(), "1".to_string());
    }
    let client = ctx.client().await?;
    Ok(client
        .new_container(&id, &spec, &ctx.runtime(), &labels)
        .await?)
}

/// A ROOTFS argument is a directory path; docker reads a bare word as an image name, which lcd has
/// no store for, so say so instead of guessing.
fn resolve_rootfs(arg: &str) -> Result<PathBuf> {
    if !arg.contains('/') {
        bail!(
            "{arg:?} is not a rootfs path: give a directory (e.g. ./{arg}); make one with `lcd rootfs busybox DIR`"
        );
    }
    let path = Path::new(arg);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!("rootfs {arg} is not a directory"),
        Err(_) => bail!("rootfs {arg} does not exist"),
    }
    std::fs::canonicalize(path).with_context(|| format!("resolve rootfs {arg}"))
}

fn build_spec(args: &CreateArgs, rootfs: &Path) -> Result<libcontainerd::oci_spec::runtime::Spec> {
    let mut builder = SpecBuilder::new(rootfs);
    if !args.command.is_empty() {
        builder = builder.args(args.command.iter().cloned());
    }
    for entry in args.env.iter().filter_map(|e| env_entry(e)) {
        builder = builder.env(entry);
    }
    if let Some(dir) = &args.workdir {
        builder = builder.cwd(dir.clone());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = parse_user(user)?;
        builder = builder.user(uid, gid);
    }
    if let Some(hostname) = &args.hostname {
        builder = builder.hostname(hostname.clone());
    }
    if let Some(memory) = &args.memory {
        builder = builder.memory_limit(parse_bytes(memory).context("--memory")?);
    }
    if let Some(cpus) = args.cpus {
        builder = builder.cpus(cpus);
    }
    if let Some(pids) = args.pids_limit {
        builder = builder.pids_limit(pids);
    }
    let mut spec = builder
        .readonly_rootfs(args.read_only)
        .terminal(args.tty)
        .build()?;
    if args.tty {
        if let Some((cols, rows)) = tty::terminal_size() {
            // runc sizes the terminal before the command runs, so it never sees 0x0 (as docker
            // sends its terminal's size with the create); an attach resizes it to its own.
            let size = libcontainerd::oci_spec::runtime::BoxBuilder::default()
                .width(u64::from(cols))
                .height(u64::from(rows))
                .build()
                .context("console size")?;
            if let Some(process) = spec.process_mut() {
                process.set_console_size(Some(size));
            }
        }
    }
    Ok(spec)
}

/// A `-e` argument as `K=V`: docker's `-e NAME` copies NAME from lcd's own environment, and is
/// skipped if unset.
pub fn env_entry(arg: &str) -> Option<String> {
    if arg.contains('=') {
        Some(arg.to_string())
    } else {
        std::env::var(arg)
            .ok()
            .map(|value| format!("{arg}={value}"))
    }
}

async fn start_detached(ctx: &Ctx, container: &Container, stdin: bool) -> Result<Task> {
    if stdin || spec_terminal(container) {
        // A container that takes input is attached to later (`lcd attach`): its stdio stays on
        // FIFOs. Output waits in them (64 KiB, then the process blocks) until someone attaches.
        let config = StdioConfig {
            stdin,
            terminal: false,
            output: Output::Pipe,
        };
        let (task, mut io) = container.create_task(None, &config).await?;
        // The shim holds a writer on the stdin FIFO itself, so the process sees end of file only
        // through CloseIO: letting go of our end without it keeps stdin open for `lcd attach`.
        if let Some(ours) = io.stdin.take() {
            ours.detach();
        }
        if let Err(e) = task.start().await {
            let _ = task.force_delete().await;
            return Err(e.into());
        }
        return Ok(task);
    }
    let config = StdioConfig {
        stdin,
        terminal: false,
        output: ctx.log_output(container.id())?,
    };
    Ok(container.start(None, &config, |_| Ok(())).await?)
}

/// Run the task with our stdio connected and return its exit status; the task is deleted afterwards
/// (its exit is recorded on the container, or the container goes too with --rm). If the user detaches
/// (Ctrl-P Ctrl-Q on a terminal), the container keeps running and lcd returns 0.
async fn run_attached(container: Container, stdin: bool, remove: bool) -> Result<i32> {
    let config = StdioConfig {
        stdin,
        terminal: false,
        output: Output::Pipe,
    };
    let terminal = spec_terminal(&container);
    let (task, io) = container.create_task(None, &config).await?;
    if let Err(e) = task.start().await {
        let _ = task.force_delete().await;
        return Err(e.into());
    }
    let status = match session::attach(&task, io, terminal, &tty::DEFAULT_DETACH_KEYS).await? {
        session::Outcome::Exited(status) => status,
        session::Outcome::Detached => return Ok(0),
    };
    if remove {
        task.delete().await?;
    } else {
        state::reap(&container, &task).await?;
    }
    Ok(i32::try_from(status.code).unwrap_or(255))
}

fn spec_terminal(container: &Container) -> bool {
    container
        .spec()
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// `lcd attach`: re-open a running container's stdio (it was started detached with -i or -t).
pub async fn attach(ctx: &Ctx, id: &str, detach_keys: &str) -> Result<i32> {
    let keys = tty::parse_detach_keys(detach_keys).map_err(anyhow::Error::msg)?;
    let client = ctx.client().await?;
    let (container, task) = state::load_with_task(&client, id).await?;
    let task = match task {
        Some((task, status)) if status != TaskStatus::Stopped => task,
        _ => bail!("container {id} is not running"),
    };
    let mut handles = None;
    container
        .attach_task(|io| {
            handles = Some(io);
            Ok(())
        })
        .await?;
    let io = handles.unwrap_or_default();
    if io.stdin.is_none() && io.stdout.is_none() {
        bail!("container {id} was started without -i or -t: its output is in `lcd logs {id}`");
    }
    match session::attach(&task, io, spec_terminal(&container), &keys).await? {
        session::Outcome::Detached => Ok(0),
        session::Outcome::Exited(status) => {
            state::reap(&container, &task).await?;
            Ok(i32::try_from(status.code).unwrap_or(255))
        }
    }
}

async fn remove_quietly(container: &Container) {
    // Usually the task is gone already (deleted once it exited, which the container handle
    // remembers): then this is a single RPC.
    let mut removed = container.delete().await;
    if matches!(&removed, Err(e) if e.kind() == ErrorKind::FailedPrecondition) {
        // Its task is still there (the run failed half-way, or the user detached): it goes first.
        if let Ok(task) = container.task().await {
            let _ = task.force_delete().await;
        }
        removed = container.delete().await;
    }
    if let Err(e) = removed {
        tracing::warn!(container = %container.id(), error = %e, "removing the container");
    }
}
