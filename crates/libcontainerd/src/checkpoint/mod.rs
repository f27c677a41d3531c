//! Checkpoints (CRIU images) and their round trip through containerd's content store.
//!
//! Create ([`Task::create_checkpoint`](crate::Task::create_checkpoint)): `Tasks.Checkpoint` has runc
//! dump the task; containerd tars the images into its content store and answers with their
//! descriptors. We find the one of type [`CRIU_CHECKPOINT_MEDIA_TYPE`], stream it out with
//! `Content.Read`, untar it into the caller's directory and delete the blobs. The blobs are held by a
//! short-lived lease meanwhile, so containerd's garbage collector cannot take them before we read
//! them, and collects them if we crash.
//!
//! Restore: [`restore_descriptor`] tars a checkpoint directory into the content store (labelled as a
//! GC root) and gives the descriptor to pass as `CreateTaskRequest.checkpoint`; the blob is deleted
//! once the task exists.
//!
//! Directories come from users: paths with `..` components are refused (moby#28769), and archive
//! entries that would land outside the directory are skipped.
//!
//! One job per module, and imports point one way: `create` and `restore` use `archive` (directories
//! and tar) and `content` (containerd's content store and leases); those two use neither.

mod archive;
mod content;
mod create;
mod restore;

pub use archive::{check_dir, CRIU_INVENTORY};
pub use content::CRIU_CHECKPOINT_MEDIA_TYPE;
// `extract_checkpoint` and `RestoreBlob::descriptor` take or give containerd's `Descriptor`: users
// reach them through `raw`.
pub(crate) use create::{checkpoint_task, extract_checkpoint};
pub use restore::{restore_descriptor, RestoreBlob};
