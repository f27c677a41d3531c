//! `lcd version [--format json]`: lcd's version and the containerd it talks to.

use anyhow::Result;
use serde_json::json;

use crate::cli::FormatArgs;
use crate::context::Ctx;
use crate::flags::parse_format;

/// `lcd version`.
pub async fn version(ctx: &Ctx, args: FormatArgs) -> Result<i32> {
    // Decide on the format before starting or contacting any containerd.
    let json = parse_format(&args.format, "text")?;
    let client = ctx.client().await?;
    let server = client.version().await?;
    if json {
        println!(
            "{}",
            json!({
                "client": { "version": env!("CARGO_PKG_VERSION") },
                "containerd": { "version": server.version, "revision": server.revision, "address": client.address() },
            })
        );
    } else {
        println!("Client:\n Version:    {}", env!("CARGO_PKG_VERSION"));
        println!(
            "containerd:\n Version:    {}\n Revision:   {}\n Address:    {}",
            server.version,
            server.revision,
            client.address().display()
        );
    }
    Ok(0)
}
