//! `lcd history [-H=BOOL] [--no-trunc] [-q] [--format json|TEMPLATE] IMAGE` (and `lcd image
//! history`): docker's columns IMAGE, CREATED, CREATED BY, SIZE, COMMENT, newest step first. The
//! image's ID stands on the newest step, `<missing>` on the others (their images are not stored
//! apart, as in docker's containerd store); a step that made no layer is 0B, a layer's size is its
//! blob's, as `images` counts them.

use std::time::SystemTime;

use anyhow::Result;
use libcontainerd_images::history::history as image_history;
use libcontainerd_images::Platform;

use super::pull::human;
use crate::cli::HistoryArgs;
use crate::context::Ctx;
use crate::log_format::parse_time;
use crate::state::human_duration;
use crate::template::{Format, Template};

/// docker's CREATED BY is cut to this many characters (with an ellipsis) unless `--no-trunc`.
const CREATED_BY_WIDTH: usize = 45;

/// Column titles of the `history` fields in a `table` template, as docker's.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
];

/// `lcd history`.
pub async fn history(ctx: &Ctx, args: HistoryArgs) -> Result<i32> {
    let format = Format::parse(args.format.as_deref(), "table")?;
    let client = ctx.client().await?;
    let history = image_history(&client, &args.image, &Platform::host()).await?;
    let id = if args.no_trunc {
        history.id.clone()
    } else {
        history
            .id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect()
    };
    let now = SystemTime::now();
    let rows: Vec<serde_json::Value> = history
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let created = step.created.as_deref().and_then(|t| parse_time(t, now));
            let since = created
                .map(|t| {
                    let ago = now.duration_since(t).unwrap_or_default();
                    format!("{} ago", human_duration(ago))
                })
                .unwrap_or_else(|| "N/A".to_string());
            let at = created.map(rfc3339_seconds).unwrap_or_default();
            let created_by = step.created_by.replace('\t', " ");
            let created_by = if args.no_trunc {
                created_by
            } else {
                ellipsis(&created_by, CREATED_BY_WIDTH)
            };
            let bytes = step.layer.as_ref().map_or(0, |l| l.size.max(0) as u64);
            let size = if args.human {
                human(bytes)
            } else {
                bytes.to_string()
            };
            serde_json::json!({
                "ID": if i == 0 { id.as_str() } else { "<missing>" },
                "CreatedSince": since,
                "CreatedAt": at,
                "CreatedBy": created_by,
                "Size": size,
                "Comment": step.comment,
            })
        })
        .collect();
    if args.quiet {
        for row in &rows {
            println!("{}", row["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    if let Some(text) = format.render(&rows, HEADERS)? {
        print!("{text}");
        return Ok(0);
    }
    let created = if args.human {
        "{{.CreatedSince}}"
    } else {
        "{{.CreatedAt}}"
    };
    let table = Template::parse(&format!(
        "table {{{{.ID}}}}\t{created}\t{{{{.CreatedBy}}}}\t{{{{.Size}}}}\t{{{{.Comment}}}}"
    ))?;
    print!("{}", table.render_rows(&rows, HEADERS)?);
    Ok(0)
}

/// `text` cut to `width` characters, the last an ellipsis, as docker's CLI cuts it.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// RFC 3339 in whole seconds (`2024-05-01T10:00:00Z`), as `-H=false` prints times.
fn rfc3339_seconds(time: SystemTime) -> String {
    let full = libcontainerd::time::rfc3339(time);
    format!("{}Z", &full[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_by_is_cut_like_dockers() {
        assert_eq!(ellipsis("short", 45), "short");
        let long = "x".repeat(50);
        let cut = ellipsis(&long, 45);
        assert_eq!(cut.chars().count(), 45);
        assert!(cut.ends_with('…'));
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339_seconds(t), "2023-11-14T22:13:20Z");
    }
}
