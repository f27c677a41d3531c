//! `lcd create`: make a container from an image or a rootfs directory and flags, without starting
//! it. `run` is this followed by `start`'s second half, so the container and its spec are made here
//! for both.
//!
//! The argument is a rootfs directory when it is a path (starts with `/` or `.`), used in place as
//! `ctr --rootfs` and `podman --rootfs` do; anything else is an image reference, run on a
//! copy-on-write snapshot of its own (pulled first if missing, as `--pull` says).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use libcontainerd::oci_spec::runtime::Spec;
use libcontainerd::spec::{MountRequest, SpecBuilder};
use libcontainerd::{Client, Container, ErrorKind, Id};
use libcontainerd_images::{prepare, RunOptions};

use crate::cli::CreateArgs;
use crate::container_lock::ContainerLock;
use crate::context::Ctx;
use crate::flags::env_entry;
use crate::metadata;
use crate::mounts::{self, Plan};
use crate::names;
use crate::network;
use crate::options;
use crate::restart::{Policy, LABEL_RESTART};
use crate::run_config;
use crate::runtimes;
use crate::state::{self, LABEL_ROOTFS, LABEL_STDIN};
use crate::tty;

/// `lcd create`: the first half of run; prints the id.
pub async fn create(ctx: &Ctx, args: CreateArgs) -> Result<i32> {
    let (container, _lock) = create_container(ctx, &args, HashMap::new()).await?;
    println!("{}", container.id());
    Ok(0)
}

/// The container `lcd create` and `lcd run` make: its spec, and the labels lcd keeps (`extra`:
/// those of `run`'s own flags). Returned with its lock held (see [`crate::container_lock`]), so
/// that `run` starts it before a racing `rm` or `start` can act on it.
pub async fn create_container(
    ctx: &Ctx,
    args: &CreateArgs,
    extra: HashMap<String, String>,
) -> Result<(Container, ContainerLock)> {
    let args = &metadata::with_env_files(args)?;
    let mut connection = Connection::default();
    let Some(name) = &args.name else {
        let id = state::generate_id()?;
        let lock = ContainerLock::acquire(ctx, id.as_str()).await?;
        return create_locked(ctx, &mut connection, args, &id, lock, extra).await;
    };
    // The name must be no other container's; it becomes the id unless a renamed container has
    // that id, when a generated id carries the name (see `crate::names`).
    let name = names::check(name)?;
    let client = connection.client(ctx).await?;
    let reserved = names::reserve(ctx, &client, &name, None).await?;
    if reserved.id_is_free() {
        let lock = reserved.into_lock();
        return create_locked(ctx, &mut connection, args, &name, lock, extra).await;
    }
    let mut extra = extra;
    extra.insert(names::LABEL_NAME.to_string(), name.to_string());
    let id = state::generate_id()?;
    let lock = ContainerLock::acquire(ctx, id.as_str()).await?;
    let created = create_locked(ctx, &mut connection, args, &id, lock, extra).await;
    reserved.release();
    created
}

/// The create's one connection to containerd, made when first needed: a create without a name
/// checks its flags and rootfs before containerd is contacted (or started).
#[derive(Default)]
struct Connection(Option<Client>);

impl Connection {
    async fn client(&mut self, ctx: &Ctx) -> Result<Client> {
        if let Some(client) = &self.0 {
            return Ok(client.clone());
        }
        let client = ctx.client().await?;
        self.0 = Some(client.clone());
        Ok(client)
    }
}

/// [`create_with_id`] with the container's lock held.
async fn create_locked(
    ctx: &Ctx,
    connection: &mut Connection,
    args: &CreateArgs,
    id: &Id,
    lock: ContainerLock,
    extra: HashMap<String, String>,
) -> Result<(Container, ContainerLock)> {
    match create_with_id(ctx, connection, args, id, extra).await {
        Ok(container) => Ok((container, lock)),
        Err(e) => {
            // Nothing was made: no lock file stays either (removing it is safe while held).
            lock.remove();
            Err(e)
        }
    }
}

async fn create_with_id(
    ctx: &Ctx,
    connection: &mut Connection,
    args: &CreateArgs,
    id: &Id,
    mut extra: HashMap<String, String>,
) -> Result<Container> {
    let id = id.clone();
    extra.extend(metadata::user_labels(args)?);
    let policy: Policy = args.restart.parse()?;
    if policy != Policy::No {
        if ctx.address.is_some() {
            bail!("--restart needs lcd's agent, which runs only beside lcd's own containerd: drop --address");
        }
        extra.insert(LABEL_RESTART.to_string(), policy.to_string());
    }
    let runtime = runtimes::resolve(ctx, args.runtime.as_deref()).await?;
    if let Some(name) = &runtime.label {
        extra.insert(runtimes::LABEL_RUNTIME.to_string(), name.clone());
    }
    // Every mount flag is checked before anything is created.
    let mut requests = mounts::parse(&args.mounts)?;
    if !args.mounts.volumes_from.is_empty() {
        let client = connection.client(ctx).await?;
        mounts::add_volumes_from(&client, &args.mounts.volumes_from, &mut requests).await?;
    }
    if !is_rootfs_path(&args.rootfs) {
        let client = connection.client(ctx).await?;
        return create_from_image(ctx, &client, args, &id, &runtime, extra, requests).await;
    }
    let rootfs = resolve_rootfs(&args.rootfs)?;
    if args.read_only {
        mounts::check_read_only_rootfs(&rootfs, args.workdir.as_deref(), &requests)?;
    }
    let mut labels = extra;
    labels.extend(options::labels(args, None)?);
    labels.insert(LABEL_ROOTFS.to_string(), rootfs.display().to_string());
    if args.interactive {
        labels.insert(LABEL_STDIN.to_string(), "1".to_string());
    }
    let client = connection.client(ctx).await?;
    let plan = Plan::prepare(ctx, requests)?;
    let created = async {
        let mut spec = build_spec_with(args, &rootfs, &plan)?;
        runtime.adapt(&mut spec);
        plan.fill_from_rootfs(&rootfs)?;
        let (key, value) = plan.label(&args.mounts.tmpfs)?;
        labels.insert(key, value);
        let net = network::apply(ctx, args, &id, &[], &mut spec, &mut labels)?;
        let created = client
            .new_container(&id, &spec, &runtime.runtime, &labels)
            .await;
        if created.is_err() {
            net.abandon();
        }
        Ok(created?)
    }
    .await;
    match created {
        Ok(container) => {
            forget_old_log(ctx, &id);
            Ok(container)
        }
        Err(e) => {
            plan.undo();
            Err(e)
        }
    }
}

/// A new container's log starts empty: a file at its path is an earlier container's of the same
/// name (removed while its logger still wrote, or by a crashed lcd), not this one's. Called once
/// containerd has accepted the id, so it never touches a live container's log.
fn forget_old_log(ctx: &Ctx, id: &Id) {
    let path = ctx.log_path(id);
    if let Err(e) = std::fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::debug!(path = %path.display(), error = %e, "removing an old log");
        }
    }
}

/// A rootfs is a path; `127.0.0.1:5000/app` and `library/busybox` are images.
fn is_rootfs_path(arg: &str) -> bool {
    arg.starts_with('/') || arg.starts_with('.')
}

/// A container on a snapshot of image `args.rootfs`, pulled first as `--pull` says.
async fn create_from_image(
    ctx: &Ctx,
    client: &Client,
    args: &CreateArgs,
    id: &Id,
    runtime: &runtimes::Chosen,
    user_labels: HashMap<String, String>,
    requests: Vec<MountRequest>,
) -> Result<Container> {
    let image = args.rootfs.as_str();
    if args.pull == "always" {
        super::pull::fetch(client, image, None, false, false).await?;
    }
    let options = RunOptions {
        entrypoint: args.entrypoint.as_ref().map(|e| {
            // `--entrypoint ""` clears it; otherwise one word, as docker takes it.
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        args: args.command.clone(),
        env: args.env.iter().filter_map(|e| env_entry(e)).collect(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        ..RunOptions::default()
    };
    let prepared = match prepare(client, image, id, &options).await {
        Err(e)
            if e.kind() == ErrorKind::NotFound
                && args.pull == "missing"
                && is_missing_image(&e) =>
        {
            // docker says so on stderr; lcd only on a terminal, where its errors stay one line.
            if std::io::stderr().is_terminal() {
                eprintln!("Unable to find image '{image}' locally");
            }
            super::pull::fetch(client, image, None, false, false).await?;
            prepare(client, image, id, &options).await?
        }
        prepared => prepared?,
    };
    let plan = match Plan::prepare(ctx, requests) {
        Ok(plan) => plan,
        Err(e) => {
            prepared.abandon(client).await;
            return Err(e);
        }
    };
    let built = async {
        let mut spec = apply_options(plan.apply(prepared.spec.clone()), args)?;
        runtime.adapt(&mut spec);
        let mut labels = user_labels;
        labels.extend(options::labels(
            args,
            prepared.config.stop_signal.as_deref(),
        )?);
        let (key, value) = plan.label(&args.mounts.tmpfs)?;
        labels.insert(key, value);
        plan.fill_from_snapshot(client, &prepared.snapshot).await?;
        let exposed = &prepared.config.exposed_ports;
        let net = network::apply(ctx, args, id, exposed, &mut spec, &mut labels)?;
        Ok::<_, anyhow::Error>((spec, labels, net))
    }
    .await;
    let (spec, mut labels, net) = match built {
        Ok(built) => built,
        Err(e) => {
            plan.undo();
            prepared.abandon(client).await;
            return Err(e);
        }
    };
    if args.interactive {
        labels.insert(LABEL_STDIN.to_string(), "1".to_string());
    }
    // What the flags overrode of the image's config, for `commit` (the spec keeps only the result).
    labels.extend(run_config::label(&options));
    let created = prepared
        .create(client, id, &spec, &runtime.runtime, &labels)
        .await;
    if created.is_err() {
        net.abandon();
        plan.undo();
    }
    let container = created?;
    forget_old_log(ctx, id);
    Ok(container)
}

/// Whether `prepare` failed because the image is not stored (not, say, a missing snapshot).
fn is_missing_image(e: &libcontainerd::Error) -> bool {
    e.message().starts_with("no such image")
}

/// A rootfs argument must be an existing directory.
fn resolve_rootfs(arg: &str) -> Result<PathBuf> {
    let path = Path::new(arg);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!("rootfs {arg} is not a directory"),
        Err(_) => bail!("rootfs {arg} does not exist"),
    }
    let real = std::fs::canonicalize(path).with_context(|| format!("resolve rootfs {arg}"))?;
    // The host's own root (however spelled: `/`, `/..`, a symlink to it) would hand the container
    // the whole host; runc fails on it only by accident.
    if real == Path::new("/") {
        bail!("rootfs {arg} is the host's root directory /: give a directory holding the container's own root filesystem");
    }
    Ok(real)
}

/// The OCI spec of `run`'s and `create`'s flags for a container on `rootfs`. Public for the fuzz
/// target, which feeds it every command line clap accepts: it creates nothing, so volumes are
/// left out (see [`Plan::dry`]).
pub fn build_spec(args: &CreateArgs, rootfs: &Path) -> Result<Spec> {
    build_spec_with(args, rootfs, &Plan::dry(mounts::parse(&args.mounts)?))
}

/// [`build_spec`] with the mounts of `plan`.
fn build_spec_with(args: &CreateArgs, rootfs: &Path, plan: &Plan) -> Result<Spec> {
    let mut builder = plan.apply(SpecBuilder::new(rootfs));
    match args.entrypoint.as_deref().filter(|e| !e.is_empty()) {
        Some(entrypoint) => {
            let argv = std::iter::once(entrypoint.to_string()).chain(args.command.iter().cloned());
            builder = builder.args(argv);
        }
        None if !args.command.is_empty() => builder = builder.args(args.command.iter().cloned()),
        None => {}
    }
    for entry in args.env.iter().filter_map(|e| env_entry(e)) {
        builder = builder.env(entry);
    }
    if let Some(dir) = &args.workdir {
        builder = builder.cwd(dir.clone());
    }
    // Names and a uid's groups come from the rootfs's own /etc/passwd and /etc/group; without -u
    // the process is root with root's groups there, as docker's (its groups list gid 0).
    builder = builder.user_from_rootfs(args.user.clone().unwrap_or_default(), rootfs);
    apply_options(builder, args)
}

/// The flags that mean the same for an image and a rootfs directory: hostname, limits, security
/// options, devices, read-only, terminal (the command, env, working dir and user come from the
/// image's rules or the flags).
fn apply_options(builder: SpecBuilder, args: &CreateArgs) -> Result<Spec> {
    let mut spec = options::build(builder, args)?;
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
