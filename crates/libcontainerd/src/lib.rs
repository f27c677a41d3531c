//! libcontainerd: a containerd client with the contract of Docker's `libcontainerd`.
//!
//! [`Client`] connects to containerd in one namespace; [`Client::new_container`] and
//! [`Client::load_container`] give a [`Container`], whose [`Container::start`] gives a [`Task`].
//! Process stdio is a [`DirectIo`] of async FIFO handles. [`supervisor`] runs a private containerd.

pub mod client;
pub mod container;
pub mod error;
pub mod id;
pub mod io;
pub mod rootfs;
pub mod runtime;
pub mod spec;
pub mod supervisor;
pub mod task;
pub mod time;

pub use oci_spec;
pub use client::{Client, ClientConfig, Version};
pub use container::{Container, ContainerInfo, BUNDLE_LABEL};
pub use error::{Error, ErrorKind, Result};
pub use id::Id;
pub use io::{DirectIo, Output, Stdin, StdioConfig};
pub use runtime::{RuncOptions, Runtime};
pub use task::{ExecFailure, ExitStatus, Task, TaskInfo, TaskStatus};
