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
use libcontainerd::spec::SpecBuilder;
use libcontainerd::{Client, Container, ErrorKind, Id};
use libcontainerd_images::{prepare, RunOptions};

use crate::cli::CreateArgs;
use crate::context::Ctx;
use crate::flags::env_entry;
use crate::metadata;
use crate::options;
use crate::state::{self, LABEL_ROOTFS, LABEL_STDIN};
use crate::tty;

/// `lcd create`: the first half of run; prints the id.
pub async fn create(ctx: &Ctx, args: CreateArgs) -> Result<i32> {
    let container = create_container(ctx, &args).await?;
    println!("{}", container.id());
    Ok(0)
}

/// The container `lcd create` and `lcd run` make: its spec, and the labels lcd keeps.
pub async fn create_container(ctx: &Ctx, args: &CreateArgs) -> Result<Container> {
    let args = &metadata::with_env_files(args)?;
    let user_labels = metadata::user_labels(args)?;
    let id = match &args.name {
        Some(name) => Id::new(name.as_str())?,
        None => state::generate_id()?,
    };
    if !is_rootfs_path(&args.rootfs) {
        let client = ctx.client().await?;
        return create_from_image(ctx, &client, args, &id, user_labels).await;
    }
    let rootfs = resolve_rootfs(&args.rootfs)?;
    let spec = build_spec(args, &rootfs)?;
    let mut labels = user_labels;
    labels.extend(options::labels(args, None)?);
    labels.insert(LABEL_ROOTFS.to_string(), rootfs.display().to_string());
    if args.interactive {
        labels.insert(LABEL_STDIN.to_string(), "1".to_string());
    }
    let client = ctx.client().await?;
    Ok(client
        .new_container(&id, &spec, &ctx.runtime(), &labels)
        .await?)
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
    user_labels: HashMap<String, String>,
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
    let built = apply_options(prepared.spec.clone(), args).and_then(|spec| {
        let mut labels = user_labels;
        labels.extend(options::labels(
            args,
            prepared.config.stop_signal.as_deref(),
        )?);
        Ok((spec, labels))
    });
    let (spec, mut labels) = match built {
        Ok(built) => built,
        Err(e) => {
            prepared.abandon(client).await;
            return Err(e);
        }
    };
    if args.interactive {
        labels.insert(LABEL_STDIN.to_string(), "1".to_string());
    }
    Ok(prepared
        .create(client, id, &spec, &ctx.runtime(), &labels)
        .await?)
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
/// target, which feeds it every command line clap accepts.
pub fn build_spec(args: &CreateArgs, rootfs: &Path) -> Result<Spec> {
    let mut builder = SpecBuilder::new(rootfs);
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
    if let Some(user) = &args.user {
        // Names and a uid's primary group come from the rootfs's own /etc/passwd and /etc/group.
        builder = builder.user_from_rootfs(user.clone(), rootfs);
    }
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
