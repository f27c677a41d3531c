//! `lcd push`: upload a stored image to the registry its name names, as `docker push`: a progress
//! line per layer on a terminal (nothing but the result when piped or with `-q`), then docker's
//! `TAG: digest: sha256:... size: N` on stdout. `--all-tags` pushes every tag of the repository.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{bail, Result};
use libcontainerd::Client;
use libcontainerd_images::push::{push as push_image, PushOptions, PushProgress, PushState};
use libcontainerd_images::{store, Reference};

use super::bars::{meter, short, Bars};
use super::pull::parse_platform;
use crate::cli::PushArgs;
use crate::context::Ctx;

/// `lcd push`.
pub async fn push(ctx: &Ctx, args: PushArgs) -> Result<i32> {
    let mut options = PushOptions {
        plain_http: args.plain_http,
        ..PushOptions::default()
    };
    if let Some(platform) = &args.platform {
        options.platform = parse_platform(platform)?;
    }
    let client = ctx.client().await?;
    let names = if args.all_tags {
        every_tag(&client, &args.name).await?
    } else {
        vec![args.name.clone()]
    };
    for name in names {
        push_one(&client, &name, &options, args.quiet).await?;
    }
    Ok(0)
}

/// The stored names of `name`'s repository that have a tag, sorted.
async fn every_tag(client: &Client, name: &str) -> Result<Vec<String>> {
    let wanted = Reference::parse(name)?;
    if wanted.tag().is_some() || wanted.digest().is_some() {
        // The parser gives every name a tag; only one the user typed is refused, as docker.
        let typed_tag = name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
        if typed_tag || wanted.digest().is_some() {
            bail!("tag can't be used with --all-tags/-a");
        }
    }
    let mut names: Vec<String> = store::list(client)
        .await?
        .into_iter()
        .filter_map(|record| {
            let reference = Reference::parse(&record.name).ok()?;
            let same = reference.domain() == wanted.domain() && reference.path() == wanted.path();
            (same && reference.tag().is_some() && reference.digest().is_none())
                .then_some(record.name)
        })
        .collect();
    names.sort();
    if names.is_empty() {
        bail!(
            "an image does not exist locally with the tag: {}",
            wanted.name()
        );
    }
    Ok(names)
}

async fn push_one(client: &Client, name: &str, options: &PushOptions, quiet: bool) -> Result<()> {
    let mut options = options.clone();
    let bars = (!quiet && std::io::stderr().is_terminal()).then(Bars::default);
    if let Some(bars) = &bars {
        if let Ok(reference) = Reference::parse(name) {
            eprintln!(
                "The push refers to repository [{}/{}]",
                reference.domain(),
                reference.path()
            );
        }
        let bars = bars.clone();
        options.progress = Some(Arc::new(move |p: &PushProgress| {
            bars.update(p.layer, line(p))
        }));
    }
    let pushed = push_image(client, name, &options).await?;
    println!(
        "{}: digest: {} size: {}",
        pushed.reference, pushed.pushed.digest, pushed.pushed.size
    );
    Ok(())
}

fn line(p: &PushProgress) -> String {
    let short = short(&p.digest);
    match p.state {
        PushState::Waiting => format!("{short}: Waiting"),
        PushState::Pushing => format!("{short}: Pushing {}", meter(p.done, p.total)),
        PushState::Exists => format!("{short}: Layer already exists"),
        PushState::Done => format!("{short}: Pushed"),
    }
}
