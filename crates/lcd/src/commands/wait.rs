//! `lcd wait ID...`: block until each container stops, then print its exit code (one line per
//! container, in the order given), as `docker wait`. A container that is not running answers at
//! once: its last exit code, or 0 if it never ran.

use anyhow::Result;
use libcontainerd::{Container, ErrorKind, TaskStatus};

use crate::cli::IdsArgs;
use crate::context::Ctx;
use crate::exit::for_each_id;
use crate::state::{self, State};

/// `lcd wait`.
pub async fn wait(ctx: &Ctx, args: IdsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            let recorded = |container: &Container| match State::of(container.labels(), None) {
                State::Exited { code, .. } => code,
                _ => 0,
            };
            let code = match task {
                // The task's own wait: it answers at once for a task that has stopped already.
                // The task is left for whoever started it to reap (an attached `lcd run` does).
                Some((task, status)) if status != TaskStatus::Created => {
                    match crate::outage::wait_task(&task).await {
                        Ok(status) => status.code,
                        // Reaped meanwhile (lcd's agent, for a detached container), which
                        // recorded the exit on the container first.
                        Err(e) if e.kind() == ErrorKind::NotFound => {
                            recorded(&state::load(&client, &id).await?)
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => recorded(&container),
            };
            println!("{code}");
            Ok(())
        }
    })
    .await
}
