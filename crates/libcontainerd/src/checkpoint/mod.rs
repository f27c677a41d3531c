//! Checkpoints (CRIU images) and their round trip through containerd's content store.
//!
//! Create ([`Task::create_checkpoint`](crate::Task::create_checkpoint)): `Tasks.Checkpoint` has runc
//! dump the task with CRIU straight into the caller's directory (the runc options' `image_path`;
//! containerd then keeps nothing in its content store). A containerd that ignored `image_path` tars
//! the images into its content store and answers with their descriptors instead: we find the one of
//! type [`CRIU_CHECKPOINT_MEDIA_TYPE`], stream it out with `Content.Read`, untar it into the
//! directory and delete the blobs, held meanwhile by a short-lived lease so containerd's garbage
//! collector cannot take them before we read them, and collects them if we crash.
//!
//! Which criu runs: the container's [`RuncOptions::criu_path`](crate::RuncOptions::criu_path)
//! ([`Runtime::with_criu`](crate::Runtime::with_criu); containerd 1.6 honours it, 1.7 does not),
//! else `criu` in the shim's `PATH`;
//! [`check_criu`] says whether one works here. Pre-dumps and incremental checkpoints
//! (`parent_checkpoint`) are not offered: they need the kernel's soft-dirty memory tracking.
//!
//! Restore: for the runc shim, the task is created with the container's runc options plus
//! `criu_image_path` naming the checkpoint directory, and CRIU reads the images where they are
//! (containerd uses that path when the request carries no checkpoint blob). For other runtimes,
//! [`restore_descriptor`] tars the directory into the content store (labelled as a GC root) and
//! gives the descriptor to pass as `CreateTaskRequest.checkpoint`; the blob is deleted once the
//! task exists.
//!
//! Directories come from users: paths with `..` components are refused (moby#28769), and archive
//! entries that would land outside the directory are skipped.
//!
//! One job per module, and imports point one way: `create` and `restore` use `archive` (directories
//! and tar) and `content` (containerd's content store and leases), `create` also `criu` (the
//! binary and its logs); those three use none of the others.

mod archive;
mod content;
mod create;
mod criu;
mod restore;

pub use archive::{check_dir, CRIU_INVENTORY};
pub use content::CRIU_CHECKPOINT_MEDIA_TYPE;
pub use criu::{check_criu, find_criu};
// `extract_checkpoint` and `RestoreBlob::descriptor` take or give containerd's `Descriptor`: users
// reach them through `raw`.
pub(crate) use create::{checkpoint_task, extract_checkpoint};
pub use restore::{restore_descriptor, RestoreBlob};
pub(crate) use restore::{restore_source, RestoreSource};
