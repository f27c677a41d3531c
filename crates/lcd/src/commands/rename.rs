//! `lcd rename CONTAINER NEW_NAME`: give a container, running or not, a new name. The containerd
//! id stays (its task, cgroup, bundle dir, snapshot, log and checkpoints are keyed by it); the
//! name goes into a label that every command resolves and shows (see [`crate::names`]), and the
//! old name is free for another container. Containers on its network reach it by the new name.

use std::collections::HashMap;

use anyhow::{bail, Result};

use crate::cli::RenameArgs;
use crate::context::Ctx;
use crate::cri;
use crate::names::{self, LABEL_NAME};
use crate::network;
use crate::state;

/// `lcd rename`: prints nothing, as docker.
pub async fn rename(ctx: &Ctx, args: RenameArgs) -> Result<i32> {
    let new_name = names::check(&args.new_name)?;
    let client = ctx.client().await?;
    let mut container = state::load(&client, &args.container).await?;
    cri::refuse_change(&container, "rename", ctx.force_kubernetes)?;
    let current = names::name_of(container.id().as_str(), container.labels());
    if current == new_name.as_str() {
        bail!("renaming a container with the same name as its current name ({current})");
    }
    let reservation = names::reserve(ctx, &client, &new_name, Some(container.id())).await?;
    // Back to its id: no label, as for a container that was never renamed.
    let label = if &new_name == container.id() {
        String::new()
    } else {
        new_name.to_string()
    };
    let changes = HashMap::from([(LABEL_NAME.to_string(), label)]);
    // Its network first: if the label cannot be set, the network is told the old name again.
    let renamed = match network::rename(ctx, container.id(), new_name.as_str()) {
        Ok(()) => match container.set_labels(&changes).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Err(undo) = network::rename(ctx, container.id(), &current) {
                    tracing::warn!(container = %container.id(), error = %undo, "restoring the network's name");
                }
                Err(e.into())
            }
        },
        Err(e) => Err(e.context("rename the container on its network")),
    };
    reservation.release();
    renamed.map(|()| 0)
}
