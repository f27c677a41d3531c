//! `lcd rmi`: remove image names. An image a container was made from stays unless `-f`: its
//! containers' snapshots would keep its layers anyway, and docker refuses the same way. Removing
//! the last name of an image lets containerd's collector free its blobs and snapshots at once.

use anyhow::{bail, Result};
use libcontainerd::Client;
use libcontainerd_images::{store, Reference};

use crate::cli::RmiArgs;
use crate::context::Ctx;
use crate::exit::for_each_id;

/// `lcd rmi [-f] IMAGE...`: prints `Untagged: NAME` per removed name, as docker.
pub async fn rmi(ctx: &Ctx, args: RmiArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let force = args.force;
    for_each_id(&args.images, |image| {
        let client = client.clone();
        async move { remove(&client, &image, force).await }
    })
    .await
}

async fn remove(client: &Client, image: &str, force: bool) -> Result<()> {
    let details = store::inspect(client, image, &libcontainerd_images::Platform::host())
        .await
        .ok();
    let name = match &details {
        Some(d) => d.record.name.clone(),
        None => Reference::parse(image)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| image.to_string()),
    };
    if !force {
        let users: Vec<String> = client
            .list_containers()
            .await?
            .into_iter()
            .filter(|c| {
                c.snapshot
                    .as_ref()
                    .and_then(|s| s.image.as_deref())
                    .is_some_and(|i| i == name)
            })
            .map(|c| c.id.to_string())
            .collect();
        if let Some(first) = users.first() {
            bail!(
                "conflict: unable to remove image {image}: container {first} uses it (-f removes it anyway; the container keeps its snapshot)"
            );
        }
    }
    let removed = store::remove(client, image, true).await?;
    if store::is_id_name(&removed) {
        // An image known by its ID alone: docker says it is deleted, there being no tag to untag.
        println!("Deleted: {removed}");
        return Ok(());
    }
    let shown = Reference::parse(&removed)
        .map(|r| r.familiar())
        .unwrap_or(removed);
    println!("Untagged: {shown}");
    Ok(())
}
