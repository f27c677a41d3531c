//! `lcd import`: make a one-layer image of a root filesystem (a directory, a tar archive, or `-`
//! for an archive on stdin), as `docker import` does; prints the image ID.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use libcontainerd_images::store::inspect;
use libcontainerd_images::{import_rootfs, Platform, RootfsSource};

use crate::cli::ImportArgs;
use crate::context::Ctx;
use crate::cri;

/// `lcd import SOURCE NAME`.
pub async fn import(ctx: &Ctx, args: ImportArgs) -> Result<i32> {
    let client = ctx.client().await?;
    // stdin goes through a file: the layer is read twice (hashed, then stored).
    let mut spool = None;
    let source = if args.source == "-" {
        if std::io::stdin().is_terminal() {
            bail!("import from stdin, but stdin is a terminal: pipe a tar archive in");
        }
        let mut file = tempfile::NamedTempFile::new().context("a temporary file for stdin")?;
        std::io::copy(&mut std::io::stdin(), &mut file).context("read stdin")?;
        let path = file.path().to_path_buf();
        spool = Some(file);
        RootfsSource::Archive(path)
    } else {
        let path = PathBuf::from(&args.source);
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("import {}: no such file or directory", args.source))?;
        if meta.is_dir() {
            RootfsSource::Directory(path)
        } else {
            RootfsSource::Archive(path)
        }
    };
    let imported = import_rootfs(&client, &source, &args.name).await?;
    drop(spool);
    cri::unpack_for_pods(&client, &ctx.namespace, &imported.names).await?;
    let name = imported.names.first().cloned().unwrap_or_default();
    let details = inspect(&client, &name, &Platform::host()).await?;
    println!("{}", details.id);
    Ok(0)
}
