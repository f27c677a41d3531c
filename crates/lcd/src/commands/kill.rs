//! `lcd kill [-s SIGNAL] ID...`: signal containers' init processes.

use anyhow::Result;

use crate::cli::KillArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::state;

/// `lcd kill`.
pub async fn kill(ctx: &Ctx, args: KillArgs) -> Result<i32> {
    let signal: libcontainerd::Signal = args.signal.parse()?;
    let client = ctx.client().await?;
    let force_kubernetes = ctx.force_kubernetes;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let (container, task) = state::load_with_task(&client, &id).await?;
            cri::refuse_change(&container, "kill", force_kubernetes)?;
            let task = state::running(container.id(), task)?;
            task.kill(signal).await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}
