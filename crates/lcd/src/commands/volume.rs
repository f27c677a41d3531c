//! `lcd volume create|ls|inspect|rm|prune`: lcd's volumes (see [`crate::volumes`]), with docker's
//! output and refusals: a volume a container uses (running or not) is never removed.

use anyhow::Result;

use crate::cli::{VolumeAction, VolumeArgs};
use crate::context::Ctx;
use crate::exit;
use crate::flags::parse_format;
use crate::volumes::{self, Store};

/// `lcd volume ...`.
pub async fn volume(ctx: &Ctx, args: VolumeArgs) -> Result<i32> {
    let store = Store::new(ctx);
    match args.action {
        VolumeAction::Create { name } => {
            let (volume, _) = store.create(name.as_deref(), false)?;
            println!("{}", volume.name);
            Ok(0)
        }
        VolumeAction::Ls { quiet, format } => {
            let json = parse_format(&format, "table")?;
            let list = store.list()?;
            if json {
                // One object per line, as docker's --format json.
                for volume in &list {
                    println!("{}", volume.to_json());
                }
            } else if quiet {
                list.iter().for_each(|v| println!("{}", v.name));
            } else {
                println!("DRIVER    VOLUME NAME");
                list.iter()
                    .for_each(|v| println!("{:<10}{}", "local", v.name));
            }
            Ok(0)
        }
        VolumeAction::Inspect { names } => {
            let mut found = Vec::new();
            let mut failed = false;
            for name in &names {
                match store.get(name) {
                    Ok(volume) => found.push(volume.to_json()),
                    Err(e) => {
                        exit::print(&e);
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&found)?);
            Ok(if failed { exit::LCD_ERROR } else { 0 })
        }
        VolumeAction::Rm { names, .. } => {
            let client = ctx.client().await?;
            let mut failed = false;
            for name in &names {
                match volumes::remove_unused(ctx, &client, std::slice::from_ref(name)).await {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        exit::print(&e);
                        failed = true;
                    }
                }
            }
            Ok(if failed { exit::LCD_ERROR } else { 0 })
        }
        VolumeAction::Prune { all, .. } => {
            let client = ctx.client().await?;
            let users = volumes::users(&client).await?;
            println!("Deleted Volumes:");
            for volume in store.list()? {
                if (all || volume.anonymous) && !users.contains_key(&volume.name) {
                    store.remove(&volume.name)?;
                    println!("{}", volume.name);
                }
            }
            Ok(0)
        }
    }
}
