//! `lcd version [--format json|TEMPLATE]`: lcd's version and the containerd it talks to, in
//! docker's shape (`Client`, `Server` with its `Components`).

use anyhow::Result;
use serde_json::json;

use crate::cli::FormatArgs;
use crate::context::Ctx;
use crate::template::Format;

/// `lcd version`.
pub async fn version(ctx: &Ctx, args: FormatArgs) -> Result<i32> {
    // Decide on the format before starting or contacting any containerd.
    let format = Format::parse(args.format.as_deref(), "text")?;
    let client = ctx.client().await?;
    let server = client.version().await?;
    let value = json!({
        "Client": { "Version": env!("CARGO_PKG_VERSION") },
        "Server": {
            "Version": server.version,
            "Revision": server.revision,
            "Address": client.address(),
            "Components": [{
                "Name": "containerd",
                "Version": server.version,
                "Details": { "GitCommit": server.revision },
            }],
        },
    });
    if let Some(text) = format.render(&[value], &[])? {
        print!("{text}");
        return Ok(0);
    }
    println!("Client:\n Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(
        "containerd:\n Version:    {}\n Revision:   {}\n Address:    {}",
        server.version,
        server.revision,
        client.address().display()
    );
    Ok(0)
}
