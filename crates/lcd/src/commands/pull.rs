//! `lcd pull`: fetch an image from a registry and unpack it, with a progress line per layer on a
//! terminal (nothing but the result when piped), as docker prints it.
//!
//! Ctrl-C (SIGINT) during the pull cancels it: the pull's lease is deleted with a synchronous
//! garbage collection before `lcd` exits with 130, as docker's CLI does when interrupted (128 +
//! SIGINT), so nothing half-pulled stays behind (blobs a retry could reuse go too).

use std::io::IsTerminal;
use std::sync::Arc;

use std::time::Duration;

use anyhow::{Context as _, Result};
use libcontainerd::Client;
use libcontainerd_images::lease;
use libcontainerd_images::pull::{pull as pull_image, Progress, ProgressState, PullOptions};
use libcontainerd_images::{Platform, Reference};

use super::bars::{meter, short, Bars};
use crate::cli::PullArgs;
use crate::context::Ctx;

/// Exit status after Ctrl-C: 128 + SIGINT, as docker's.
const INTERRUPTED: i32 = 130;
/// How long an interrupted pull waits for containerd to delete its lease.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// `lcd pull`.
pub async fn pull(ctx: &Ctx, args: PullArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let name = fetch(
        &client,
        &args.name,
        args.platform.as_deref(),
        args.plain_http,
        args.quiet,
    )
    .await?;
    println!("{name}");
    Ok(0)
}

/// Pull `reference`, drawing progress on stderr unless `quiet` or stderr is not a terminal; the
/// stored name. Also what `run --pull` calls.
pub async fn fetch(
    client: &Client,
    reference: &str,
    platform: Option<&str>,
    plain_http: bool,
    quiet: bool,
) -> Result<String> {
    let parsed = Reference::parse(reference)?;
    let mut options = PullOptions {
        plain_http,
        ..PullOptions::default()
    };
    if let Some(platform) = platform {
        options.platform = parse_platform(platform)?;
    }
    let bars = (!quiet && std::io::stderr().is_terminal()).then(Bars::default);
    if let Some(bars) = &bars {
        eprintln!(
            "{}: Pulling from {}",
            parsed.tag().unwrap_or("latest"),
            parsed.path()
        );
        let bars = bars.clone();
        options.progress = Some(Arc::new(move |p: &Progress| bars.update(p.layer, line(p))));
    }
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("listen for SIGINT")?;
    let pulled = tokio::select! {
        pulled = pull_image(client, reference, &options) => pulled?,
        _ = interrupt.recv() => {
            // The pull future is dropped here: its lease is remembered, deleted now.
            let flushed = tokio::time::timeout(FLUSH_TIMEOUT, lease::flush(client)).await;
            if let Ok(Err(e)) = flushed {
                eprintln!("lcd: pull interrupted: {e}");
            }
            std::process::exit(INTERRUPTED);
        }
    };
    if bars.is_some() {
        let status = if pulled.downloaded == 0 {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        eprintln!("Digest: {}", pulled.target.digest);
        eprintln!("Status: {status} {}", parsed.familiar());
    }
    Ok(pulled.name)
}

/// `os/arch[/variant]`.
pub fn parse_platform(text: &str) -> Result<Platform> {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform::new(os, arch, None)),
        [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
            Ok(Platform::new(os, arch, Some(variant)))
        }
        _ => anyhow::bail!("invalid platform {text:?}: give os/arch[/variant], e.g. linux/amd64"),
    }
}

fn line(p: &Progress) -> String {
    let short = short(&p.digest);
    match p.state {
        ProgressState::Waiting => format!("{short}: Waiting"),
        ProgressState::Present => format!("{short}: Already exists"),
        ProgressState::Done => format!("{short}: Pull complete"),
        ProgressState::Downloading => format!("{short}: Downloading {}", meter(p.done, p.total)),
        ProgressState::Resuming => format!("{short}: Resuming    {}", meter(p.done, p.total)),
    }
}

/// Docker's sizes: decimal units, three significant digits.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(999), "999B");
        assert_eq!(human(1_234_567), "1.235MB");
        assert_eq!(human(4_000_000), "4MB");
    }

    #[test]
    fn platforms_parse() {
        assert_eq!(
            parse_platform("linux/amd64").unwrap(),
            Platform::new("linux", "amd64", None)
        );
        assert_eq!(
            parse_platform("linux/arm/v7").unwrap(),
            Platform::new("linux", "arm", Some("v7"))
        );
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(parse_platform(bad).is_err(), "{bad}");
        }
    }
}
