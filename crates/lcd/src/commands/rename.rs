//! `lcd rename OLD NEW`: refused, with the reason. A container's name in lcd is its containerd id
//! (`--name` picks it), and containerd never changes an id: it names the container's record, its
//! task, its cgroup, its bundle directory, its snapshot and its log file. A rename would have to
//! be an alias beside the id that every command resolves; until lcd has one, `lcd rename` says so
//! instead of pretending.

use anyhow::{bail, Result};

use crate::cli::RenameArgs;
use crate::context::Ctx;
use crate::state;

/// `lcd rename`: checks that the container exists, then refuses.
pub async fn rename(ctx: &Ctx, args: RenameArgs) -> Result<i32> {
    libcontainerd::Id::new(args.new_name.as_str())?;
    let client = ctx.client().await?;
    let container = state::load(&client, &args.container).await?;
    bail!(
        "cannot rename container {} to {}: a container's name is its containerd id, which never changes (create a new container with --name {})",
        container.id(),
        args.new_name,
        args.new_name
    )
}
