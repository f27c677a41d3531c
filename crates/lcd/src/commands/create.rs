//! `lcd create`: make a container from a rootfs directory and flags, without starting it. `run` is
//! this followed by `start`'s second half, so the container and its spec are made here for both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use libcontainerd::oci_spec::runtime::Spec;
use libcontainerd::spec::{parse_bytes, parse_user, SpecBuilder};
use libcontainerd::{Container, Id};

use crate::cli::CreateArgs;
use crate::context::Ctx;
use crate::flags::env_entry;
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

/// The OCI spec of `run`'s and `create`'s flags for a container on `rootfs`. Public for the fuzz
/// target, which feeds it every command line clap accepts.
pub fn build_spec(args: &CreateArgs, rootfs: &Path) -> Result<Spec> {
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
