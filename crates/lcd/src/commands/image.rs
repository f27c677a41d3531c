//! `lcd image SUBCOMMAND`: the image commands under one roof (docker's `image ls`, `image rm`...),
//! and `image inspect`.

use anyhow::Result;
use libcontainerd_images::store;
use libcontainerd_images::store::ImageRecord;
use libcontainerd_images::{Platform, Reference};

use crate::cli::{ImageArgs, ImageCommand, ImageInspectArgs};
use crate::context::Ctx;

/// `lcd image ...`.
pub async fn image(ctx: &Ctx, args: ImageArgs) -> Result<i32> {
    match args.command {
        ImageCommand::Ls(args) => super::images::images(ctx, args).await,
        ImageCommand::Inspect(args) => inspect(ctx, args).await,
        ImageCommand::Rm(args) => super::rmi::rmi(ctx, args).await,
        ImageCommand::Tag(args) => super::tag::tag(ctx, args).await,
        ImageCommand::Pull(args) => super::pull::pull(ctx, args).await,
        ImageCommand::Push(args) => super::push::push(ctx, args).await,
        ImageCommand::Load(args) => super::load::load(ctx, args).await,
        ImageCommand::Save(args) => super::save::save(ctx, args).await,
        ImageCommand::Import(args) => super::import::import(ctx, args).await,
        ImageCommand::History(args) => super::history::history(ctx, args).await,
        ImageCommand::Prune(args) => super::prune::image_prune(ctx, args).await,
    }
}

/// `lcd image inspect IMAGE...`: a JSON array in the shape of docker's (Id, RepoTags, Config...).
async fn inspect(ctx: &Ctx, args: ImageInspectArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let records = store::list(&client).await?;
    let mut out = Vec::new();
    for image in &args.images {
        let d = store::inspect(&client, image, &Platform::host()).await?;
        let familiar = |name: &str| {
            Reference::parse(name)
                .map(|r| (r.familiar(), r.familiar_name()))
                .unwrap_or_else(|_| (name.to_string(), name.to_string()))
        };
        // Every name of the same image: the same target.
        let same: Vec<&ImageRecord> = records
            .iter()
            .filter(|r| r.target.digest == d.record.target.digest)
            .collect();
        let repo_tags: Vec<String> = same.iter().map(|r| familiar(&r.name).0).collect();
        let repo_digests: Vec<String> = same
            .iter()
            .map(|r| format!("{}@{}", familiar(&r.name).1, r.target.digest))
            .collect();
        let config = &d.config;
        out.push(serde_json::json!({
            "Id": d.id,
            "RepoTags": repo_tags,
            "RepoDigests": repo_digests,
            "Created": config.created,
            "Author": config.author,
            "Comment": config.comment,
            "Architecture": config.platform.architecture,
            "Os": config.platform.os,
            "Size": d.size,
            "Config": {
                "User": config.user,
                "Env": config.env,
                "Entrypoint": config.entrypoint,
                "Cmd": config.cmd,
                "WorkingDir": config.working_dir,
                "Labels": config.labels,
                "StopSignal": config.stop_signal,
                "ExposedPorts": config.exposed_ports,
                "Volumes": config.volumes,
            },
            "RootFS": {"Type": "layers", "Layers": config.diff_ids},
            "Manifest": d.manifest_descriptor.digest,
            "Layers": d.layers.iter().map(|l| serde_json::json!({
                "MediaType": l.media_type, "Digest": l.digest, "Size": l.size,
            })).collect::<Vec<_>>(),
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
