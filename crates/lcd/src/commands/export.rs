//! `lcd export [-o FILE] ID`: a container's filesystem as a tar archive (to stdout, or FILE), as
//! `docker export`: its own files, without what is mounted on them (no /proc or /sys contents),
//! running or not.

use std::fs::File;
use std::io::Write;

use anyhow::{bail, Context as _, Result};

use crate::cli::ExportArgs;
use crate::container_fs::ContainerRoot;
use crate::context::Ctx;
use crate::state;
use crate::tarball;

/// `lcd export`.
pub async fn export(ctx: &Ctx, args: ExportArgs) -> Result<i32> {
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("create {}", path.display()))?)
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            Box::new(std::io::stdout())
        }
    };
    let client = ctx.client().await?;
    let container = state::load(&client, &args.id).await?;
    let root = ContainerRoot::layer(&client, &container, false).await?;
    let path = root.path().to_path_buf();
    let written = tokio::task::spawn_blocking(move || {
        tarball::in_root(&path, move || {
            let out = std::io::BufWriter::with_capacity(256 * 1024, out);
            tarball::write_tree(
                out,
                std::path::Path::new("/"),
                std::path::Path::new(""),
                false,
            )
        })
    })
    .await
    .context("the export task failed")?;
    drop(root);
    if written.is_err() {
        if let Some(path) = &args.output {
            // No half-written archive stays behind.
            let _ = std::fs::remove_file(path);
        }
    }
    written?;
    Ok(0)
}
