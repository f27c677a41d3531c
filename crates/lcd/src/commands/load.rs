//! `lcd load`: import images from a docker-save or OCI layout archive (a file or stdin).

use anyhow::{Context as _, Result};
use libcontainerd_images::reference::familiar;
use libcontainerd_images::{import, ImportOptions};

use crate::cli::LoadArgs;
use crate::context::Ctx;
use crate::cri;

/// `lcd load [-i FILE]`: prints `Loaded image: NAME` per image, as docker does.
pub async fn load(ctx: &Ctx, args: LoadArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let images = match &args.input {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            import(
                &client,
                std::io::BufReader::new(file),
                &ImportOptions::default(),
            )
            .await?
        }
        None => {
            use std::io::IsTerminal;
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is a terminal: give -i FILE or pipe an archive in");
            }
            import(&client, std::io::stdin(), &ImportOptions::default()).await?
        }
    };
    let names: Vec<String> = images.iter().flat_map(|i| i.names.clone()).collect();
    cri::unpack_for_pods(&client, &ctx.namespace, &names).await?;
    for image in images {
        if !args.quiet {
            for (name, old) in &image.replaced {
                println!(
                    "The image {} already exists, renaming the old one with ID {old} to empty string",
                    familiar(name)
                );
            }
        }
        for name in image.names {
            let shown = familiar(&name);
            if args.quiet {
                println!("{shown}");
            } else {
                println!("Loaded image: {shown}");
            }
        }
    }
    Ok(0)
}
