//! Images for libcontainerd: pull them from registries and push them back (with docker's logins),
//! import docker-save and OCI layout archives into containerd's content store and save them back,
//! unpack them into a snapshotter, and turn an image's config into what a container needs.
//!
//! Everything goes through containerd 1.6's gRPC services (content, images, leases, snapshots,
//! diff), so containerd 1.6 and 1.7 behave the same. Work that creates content runs under a lease,
//! which is deleted at the end, so a failure leaves nothing for the garbage collector to keep.

pub mod change;
pub mod commit;
pub mod config;
pub mod container;
mod content;
pub mod copy_out;
pub mod digest;
pub mod gc;
mod grpc;
pub mod history;
pub mod import;
pub mod import_rootfs;
pub mod lease;
pub mod media;
mod mount;
pub mod oci;
pub mod platform;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
mod resolve;
pub mod rootfs;
pub mod save;
mod snapshots;
pub mod snapshotter;
pub mod store;
pub mod unpack;
pub mod user;

pub use change::Change;
pub use commit::{Commit, CommitOptions, Committed};
pub use config::{ContainerConfig, ImageConfig};
pub use container::{prepare, PreparedContainer, RunOptions};
pub use copy_out::{copy_dir_in_root, copy_from_snapshot};
pub use import::{import, ImportOptions, ImportedImage};
pub use import_rootfs::{import_rootfs, RootfsSource};
pub use lease::Lease;
pub use oci::Descriptor;
pub use platform::Platform;
pub use pull::{pull, Credentials, Progress, ProgressState, PullOptions, PulledImage};
pub use push::{push, PushOptions, PushedImage};
pub use reference::Reference;
pub use save::{save, SaveOptions};
pub use unpack::{unpack, Unpacked};
pub use user::User;
