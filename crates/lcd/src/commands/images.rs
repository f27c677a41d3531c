//! `lcd images` (and `lcd image ls`): docker's table (REPOSITORY, TAG, IMAGE ID, CREATED, SIZE),
//! `-q` for the IDs, `--format json` for scripts.

use std::time::SystemTime;

use anyhow::Result;
use libcontainerd_images::store::{summaries, ImageSummary};
use libcontainerd_images::{Platform, Reference};

use super::pull::human;
use crate::cli::ImagesArgs;
use crate::context::Ctx;
use crate::cri;
use crate::state::human_duration;
use crate::template::Format;

/// Column titles of the `images` fields in a `table` template, as docker's.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

/// `lcd images`.
pub async fn images(ctx: &Ctx, args: ImagesArgs) -> Result<i32> {
    let format = Format::parse(args.format.as_deref(), "text")?;
    let client = ctx.client().await?;
    let mut rows = summaries(&client, &Platform::host()).await?;
    cri::hide_id_aliases(&mut rows);
    if let Some(filter) = &args.reference {
        let wanted = Reference::parse(filter)?;
        let with_tag = filter.contains(':') && wanted.tag().is_some();
        rows.retain(|row| match Reference::parse(&row.name) {
            Ok(r) => r.name() == wanted.name() && (!with_tag || r.tag() == wanted.tag()),
            Err(_) => false,
        });
    }
    // Newest first, as docker lists them.
    rows.sort_by_key(|r| std::cmp::Reverse(r.created));
    let id_of = |row: &ImageSummary| -> String {
        let id = row.id.clone().unwrap_or_else(|| row.digest.clone());
        if args.no_trunc {
            id
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        }
    };
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for row in &rows {
            let id = id_of(row);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let now = SystemTime::now();
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let since = row.created.map(|t| {
                format!(
                    "{} ago",
                    human_duration(now.duration_since(t).unwrap_or_default())
                )
            });
            let size = row.size.map(human).unwrap_or_default();
            // docker's keys; the sizes it splits into shared and unique lcd does not measure.
            serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": row.created.map(crate::state::docker_time).unwrap_or_default(),
                "CreatedSince": since.unwrap_or_default(),
                "Digest": row.digest,
                "ID": id_of(row),
                "Repository": row.repository,
                "SharedSize": "N/A",
                "Size": size,
                "Tag": row.tag,
                "UniqueSize": "N/A",
                "VirtualSize": size,
            })
        })
        .collect();
    if let Some(text) = format.render(&values, HEADERS)? {
        print!("{text}");
        return Ok(0);
    }
    let mut out = format!(
        "{:<40} {:<12} {:<14} {:<24} {}\n",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"
    );
    for row in &rows {
        let created = row
            .created
            .map(|t| {
                format!(
                    "{} ago",
                    human_duration(now.duration_since(t).unwrap_or_default())
                )
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<40} {:<12} {:<14} {:<24} {}\n",
            row.repository,
            row.tag,
            id_of(row),
            created,
            row.size.map(human).unwrap_or_default()
        ));
    }
    print!("{out}");
    Ok(0)
}
