//! `lcd run`, `lcd create` and `lcd start`: build a spec, create the container, run its task attached
//! (stdio forwarded, signals proxied, exit status returned) or detached (output to a log file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use libcontainerd::spec::{parse_bytes, parse_user, SpecBuilder};
use libcontainerd::{Container, ErrorKind, Id, Output, Runtime, StdioConfig, Task, TaskStatus};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;

use crate::cli::{CreateArgs, RunArgs, StartArgs};
use crate::context::Ctx;
use crate::state::{self, LABEL_ROOTFS, LABEL_STDIN};

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
    let container = client.load_container(&id).await?;
    match container.task().await {
        Ok(task) => match task.status().await? {
            TaskStatus::Stopped => {
                state::reap(&container, &task).await?;
            }
            status => bail!("container {id} is already {status}"),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let stdin = args.interactive && container.labels().contains_key(LABEL_STDIN);
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
    let spec = build_spec(ctx, args, &id, &rootfs)?;
    let mut labels = HashMap::new();
    labels.insert(LABEL_ROOTFS.to_string(), rootfs.display().to_string());
    if args.interactive {
        labels.insert(LABEL_STDIN.to_string(), "1".to_string());
    }
    let client = ctx.client().await?;
    Ok(client
        .new_container(&id, &spec, &Runtime::default(), &labels)
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

fn build_spec(
    ctx: &Ctx,
    args: &CreateArgs,
    id: &Id,
    rootfs: &Path,
) -> Result<libcontainerd::oci_spec::runtime::Spec> {
    let mut builder = SpecBuilder::new(&ctx.namespace, id.as_str(), rootfs);
    if !args.command.is_empty() {
        builder = builder.args(args.command.iter().cloned());
    }
    for entry in &args.env {
        // docker: `-e NAME` copies NAME from lcd's own environment, and is skipped if unset.
        if entry.contains('=') {
            builder = builder.env(entry.clone());
        } else if let Ok(value) = std::env::var(entry) {
            builder = builder.env(format!("{entry}={value}"));
        }
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
    Ok(builder.readonly_rootfs(args.read_only).build()?)
}

async fn start_detached(ctx: &Ctx, container: &Container, stdin: bool) -> Result<Task> {
    let log = ctx.log_path(container.id());
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let config = StdioConfig {
        stdin,
        terminal: false,
        output: Output::File(log),
    };
    Ok(container.start(None, &config, |_| Ok(())).await?)
}

/// Run the task with our stdio connected and return its exit status; the task is deleted afterwards
/// (its exit is recorded on the container, or the container goes too with --rm).
async fn run_attached(container: Container, stdin: bool, remove: bool) -> Result<i32> {
    let config = StdioConfig {
        stdin,
        terminal: false,
        output: Output::Pipe,
    };
    let (task, mut io) = container.create_task(None, &config).await?;
    let stdout = io
        .stdout
        .take()
        .map(|r| tokio::spawn(copy_out(r, tokio::io::stdout())));
    let stderr = io
        .stderr
        .take()
        .map(|r| tokio::spawn(copy_out(r, tokio::io::stderr())));
    if let Some(stdin) = io.stdin.take() {
        tokio::spawn(forward_stdin(stdin));
    }
    let signals = crate::signals::forward_to(task.clone())?;
    if let Err(e) = task.start().await {
        let _ = task.force_delete().await;
        return Err(e.into());
    }
    let status = task.wait().await?;
    signals.abort();
    // All output is in once the shim closes the pipes, which it does after the process exits.
    for copier in [stdout, stderr].into_iter().flatten() {
        let _ = copier.await;
    }
    if remove {
        task.delete().await?;
    } else {
        state::reap(&container, &task).await?;
    }
    Ok(i32::try_from(status.code).unwrap_or(255))
}

async fn copy_out(mut from: pipe::Receiver, mut to: impl tokio::io::AsyncWrite + Unpin) {
    // A closed terminal or pipe on our side ends the copy; the container is not affected.
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.flush().await;
}

async fn forward_stdin(mut stdin: libcontainerd::Stdin) {
    let mut ours = tokio::io::stdin();
    let _ = tokio::io::copy(&mut ours, &mut stdin).await;
    if let Err(e) = stdin.close().await {
        tracing::warn!(error = %e, "closing the container's stdin");
    }
}

async fn remove_quietly(container: &Container) {
    if let Ok(task) = container.task().await {
        let _ = task.force_delete().await;
    }
    if let Err(e) = container.delete().await {
        tracing::warn!(container = %container.id(), error = %e, "removing the container");
    }
}
