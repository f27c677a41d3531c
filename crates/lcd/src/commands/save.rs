//! `lcd save`: images to a docker-save archive, in a file or on stdout.

use std::io::IsTerminal;

use anyhow::{bail, Context as _, Result};
use libcontainerd_images::save::{save as save_images, SaveOptions};

use crate::cli::SaveArgs;
use crate::context::Ctx;

/// `lcd save [-o FILE] IMAGE...`.
pub async fn save(ctx: &Ctx, args: SaveArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let names: Vec<&str> = args.images.iter().map(String::as_str).collect();
    match &args.output {
        Some(path) => {
            // Into a file next to the target, renamed when complete: a failed save leaves no
            // half-written archive under the name asked for.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let temp = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
                .with_context(|| format!("create a file next to {}", path.display()))?;
            let file = temp.reopen().context("open the archive")?;
            let file = save_images(
                &client,
                &names,
                std::io::BufWriter::new(file),
                &SaveOptions::default(),
            )
            .await?;
            file.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("write {}", path.display()))?;
            // A temporary file is private (0600); the archive gets an ordinary file's mode.
            std::fs::set_permissions(
                temp.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )
            .with_context(|| format!("write {}", path.display()))?;
            temp.persist(path)
                .with_context(|| format!("write {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal: use -o FILE or redirect stdout");
            }
            let mut out =
                save_images(&client, &names, std::io::stdout(), &SaveOptions::default()).await?;
            std::io::Write::flush(&mut out).context("write stdout")?;
        }
    }
    Ok(0)
}
