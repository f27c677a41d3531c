//! `lcd rmi`: remove image names. An image a container was made from stays unless `-f`: its
//! containers' snapshots would keep its layers anyway, and docker refuses the same way. Removing
//! the last name of an image lets containerd's collector free its blobs and snapshots at once.

use anyhow::{bail, Result};
use libcontainerd::Client;
use libcontainerd_images::reference::familiar;
use libcontainerd_images::{store, Reference};

use crate::cli::RmiArgs;
use crate::context::Ctx;
use crate::exit::for_each_id;

/// `lcd rmi [-f] IMAGE...`: prints `Untagged: NAME` per removed name and `Deleted: ID` per image
/// that has no name left, as docker.
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
    if let Some((id, names)) = store::names_of_id(client, image).await? {
        return remove_by_id(client, image, &id, &names, force).await;
    }
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
        refuse_if_used(client, image, std::slice::from_ref(&name)).await?;
    }
    let removed = store::remove(client, image, true).await?;
    if store::is_id_name(&removed) {
        // An image known by its ID alone: docker says it is deleted, there being no tag to untag.
        println!("Deleted: {removed}");
        return Ok(());
    }
    println!("Untagged: {}", familiar(&removed));
    // Its last name gone, the image is: docker says so.
    if let Some(details) = details {
        let digest = &details.record.target.digest;
        let named = store::list(client)
            .await?
            .iter()
            .any(|r| &r.target.digest == digest);
        if !named {
            println!("Deleted: {}", details.id);
        }
    }
    Ok(())
}

/// `rmi ID` (or a unique prefix): every name of the image goes, as with docker; an image under
/// more than one repository name needs `-f`, so that an ID does not silently remove names the
/// user did not think of.
async fn remove_by_id(
    client: &Client,
    input: &str,
    id: &str,
    names: &[String],
    force: bool,
) -> Result<()> {
    let repositories = names.iter().filter(|n| !store::is_id_name(n)).count();
    if !force {
        if repositories > 1 {
            bail!("conflict: unable to delete {input} (must be forced) - image is referenced in multiple repositories");
        }
        refuse_if_used(client, input, names).await?;
    }
    for (i, name) in names.iter().enumerate() {
        // The collector runs once, after the last name.
        store::remove(client, name, i + 1 == names.len()).await?;
        if !store::is_id_name(name) {
            println!("Untagged: {}", familiar(name));
        }
    }
    println!("Deleted: {id}");
    Ok(())
}

/// Refuse (docker's conflict) when a container was made from the image under one of `names`.
async fn refuse_if_used(client: &Client, image: &str, names: &[String]) -> Result<()> {
    let user = client.list_containers().await?.into_iter().find(|c| {
        c.snapshot
            .as_ref()
            .and_then(|s| s.image.as_deref())
            .is_some_and(|i| names.iter().any(|n| n == i))
    });
    if let Some(container) = user {
        bail!(
            "conflict: unable to remove image {image}: container {} uses it (-f removes it anyway; the container keeps its snapshot)",
            container.id
        );
    }
    Ok(())
}
