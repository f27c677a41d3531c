//! libcontainerd: a containerd client with the contract of Docker's `libcontainerd`.

pub mod error;
pub mod id;
pub mod spec;
pub mod supervisor;

pub use error::{Error, ErrorKind, Result};
pub use id::Id;
