//! `lcd pause ID...` and `lcd unpause ID...`: freeze and thaw every process of containers (the
//! cgroup freezer, through containerd).

use anyhow::Result;

use crate::cli::IdsArgs;
use crate::context::Ctx;
use crate::cri;
use crate::exit::for_each_id;
use crate::state;

/// `lcd pause ID...`: freeze every process of each container.
pub async fn pause(ctx: &Ctx, args: IdsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            let task = state::running_task(&client, &id).await?;
            cri::refuse_change(task.container(), "pause", ctx.force_kubernetes)?;
            task.pause().await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

/// `lcd unpause ID...`: thaw paused containers.
pub async fn unpause(ctx: &Ctx, args: IdsArgs) -> Result<i32> {
    let client = ctx.client().await?;
    for_each_id(&args.ids, |id| {
        let client = client.clone();
        async move {
            state::running_task(&client, &id).await?.resume().await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}
