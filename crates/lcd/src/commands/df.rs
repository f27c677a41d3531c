//! `lcd system df [-v] [--format json]`: what lcd's images, containers and logs take on disk, in
//! docker's table (TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE). A container's size is its own writes
//! (its snapshot less the image); a rootfs-directory container's files are the user's directory
//! and count nothing. Logs are lcd's own row: docker keeps them inside its containers' dirs.

use anyhow::Result;
use serde_json::json;

use super::pull::human;
use crate::cli::SystemDfArgs;
use crate::context::Ctx;
use crate::flags::parse_format;
use crate::inventory::{self, file_size};

/// One row of the summary.
struct Row {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

/// `lcd system df`.
pub async fn df(ctx: &Ctx, args: SystemDfArgs) -> Result<i32> {
    let json = parse_format(&args.format, "table")?;
    let client = ctx.client().await?;
    let containers = inventory::container_usage(ctx, &client).await?;
    let infos: Vec<_> = containers.iter().map(|c| c.info.clone()).collect();
    let images = inventory::image_usage(&client, &infos).await?;
    let orphans = inventory::orphan_logs(ctx, &infos)?;
    let orphan_bytes: u64 = orphans.iter().map(|p| file_size(p)).sum();
    let stopped = |c: &&inventory::ContainerUsage| !c.state.is_up();
    let rows = [
        Row {
            kind: "Images",
            total: images.len(),
            active: images.iter().filter(|i| i.containers > 0).count(),
            size: images.iter().map(|i| i.size).sum(),
            reclaimable: images
                .iter()
                .filter(|i| i.containers == 0)
                .map(|i| i.size)
                .sum(),
        },
        Row {
            kind: "Containers",
            total: containers.len(),
            active: containers.iter().filter(|c| c.state.is_up()).count(),
            size: containers.iter().map(|c| c.size).sum(),
            reclaimable: containers.iter().filter(stopped).map(|c| c.size).sum(),
        },
        Row {
            kind: "Logs",
            total: containers.iter().filter(|c| c.log_size > 0).count() + orphans.len(),
            active: containers
                .iter()
                .filter(|c| c.state.is_up() && c.log_size > 0)
                .count(),
            size: containers.iter().map(|c| c.log_size).sum::<u64>() + orphan_bytes,
            reclaimable: containers
                .iter()
                .filter(stopped)
                .map(|c| c.log_size)
                .sum::<u64>()
                + orphan_bytes,
        },
    ];
    let mut out = String::new();
    if json {
        for row in &rows {
            let line = json!({
                "Type": row.kind,
                "TotalCount": row.total.to_string(),
                "Active": row.active.to_string(),
                "Size": human(row.size),
                "Reclaimable": reclaimable(row),
            });
            out.push_str(&format!("{line}\n"));
        }
        print!("{out}");
        return Ok(0);
    }
    out.push_str(&format!(
        "{:<15} {:<9} {:<9} {:<9} {}\n",
        "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"
    ));
    for row in &rows {
        out.push_str(&format!(
            "{:<15} {:<9} {:<9} {:<9} {}\n",
            row.kind,
            row.total,
            row.active,
            human(row.size),
            reclaimable(row)
        ));
    }
    if args.verbose {
        out.push_str("\nImages space usage:\n\n");
        out.push_str(&format!(
            "{:<50} {:<14} {:<9} {}\n",
            "NAMES", "IMAGE ID", "SIZE", "CONTAINERS"
        ));
        for image in &images {
            let short: String = image
                .id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect();
            out.push_str(&format!(
                "{:<50} {:<14} {:<9} {}\n",
                image.names.join(", "),
                short,
                human(image.size),
                image.containers
            ));
        }
        out.push_str("\nContainers space usage:\n\n");
        out.push_str(&format!(
            "{:<18} {:<40} {:<9} {:<9} {}\n",
            "CONTAINER ID", "IMAGE/ROOTFS", "SIZE", "LOG", "STATUS"
        ));
        for c in &containers {
            let source = c
                .info
                .snapshot
                .as_ref()
                .and_then(|s| s.image.clone())
                .or_else(|| c.info.labels.get(crate::state::LABEL_ROOTFS).cloned())
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<18} {:<40} {:<9} {:<9} {}\n",
                c.info.id.as_str(),
                source,
                human(c.size),
                human(c.log_size),
                c.state.name()
            ));
        }
    }
    print!("{out}");
    Ok(0)
}

/// "1.2MB (50%)", as docker shows it.
fn reclaimable(row: &Row) -> String {
    if row.size == 0 {
        return human(row.reclaimable);
    }
    let percent = row.reclaimable * 100 / row.size;
    format!("{} ({percent}%)", human(row.reclaimable))
}
