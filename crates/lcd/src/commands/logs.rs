//! `lcd logs [-f] [-n N] [--since T] [--until T] [-t] [--details] ID`: a container's output, from
//! the log file lcd-logger (detached containers) or the attached session (attached ones) appends
//! it to; stdout and stderr come back on their own streams.

use anyhow::Result;

use crate::cli::LogsArgs;
use crate::context::Ctx;
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
    let path = ctx.log_path(container.id());
    log_reader::print_log(&path, &options, args.follow, || async {
        match state::task_with_status(&container).await {
            Ok(task) => Ok(state::running(container.id(), task).is_ok()),
            // containerd restarting: the container and its logger live on, so does the follower.
            Err(e)
                if e.downcast_ref::<libcontainerd::Error>()
                    .is_some_and(|e| e.kind() == libcontainerd::ErrorKind::Unavailable) =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    })
    .await?;
    Ok(0)
}
