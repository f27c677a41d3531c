//! `lcd tag SOURCE TARGET`: another name for an image.

use anyhow::Result;
use libcontainerd_images::store;

use crate::cli::TagArgs;
use crate::context::Ctx;

/// `lcd tag`: prints nothing on success, as docker.
pub async fn tag(ctx: &Ctx, args: TagArgs) -> Result<i32> {
    let client = ctx.client().await?;
    store::tag(&client, &args.source, &args.target).await?;
    Ok(0)
}
