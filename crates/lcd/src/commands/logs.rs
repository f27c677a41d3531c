//! `lcd logs [-f] [-n N] [--since T] [--until T] [-t] [--details] ID`: a container's output, from
//! the log file lcd-logger (detached containers) or the attached session (attached ones) appends
//! it to, or for a Kubernetes container the CRI log the kubelet asked for (see [`crate::cri`]);
//! stdout and stderr come back on their own streams.

use anyhow::Result;

use crate::cli::LogsArgs;
use crate::context::Ctx;
use crate::cri;
use crate::log_reader::{self, Options};
use crate::state;

/// `lcd logs`.
pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<i32> {
    let options = Options::parse(
        &args.tail,
        args.since.as_deref(),
        args.until.as_deref(),
        args.timestamps,
        args.details,
    )?;
    let client = ctx.client().await?;
    let container = state::load(&client, &args.id).await?;
    let path = match cri::log_path(&client, &container).await? {
        Some(path) => path,
        None => ctx.log_path(container.id()),
    };
    log_reader::print_log(&path, &options, args.follow, || {
        cri::still_running(&container)
    })
    .await?;
    Ok(0)
}
