#![warn(missing_docs)]
//! libcontainerd: a containerd client with the contract of Docker's `libcontainerd`.
//!
//! [`Client`] connects to containerd in one namespace; [`Client::new_container`] and
//! [`Client::load_container`] give a [`Container`], whose [`Container::start`] gives a [`Task`].
//! Process stdio is a [`DirectIo`] of async FIFO handles. [`supervisor`] runs a private containerd.

mod cancel;
pub mod checkpoint;
pub mod client;
pub mod container;
pub mod control;
pub mod error;
pub mod events;
pub mod id;
pub mod io;
pub mod process;
pub mod raw;
pub mod rootfs;
pub mod runtime;
pub mod signal;
pub mod spec;
pub mod stats;
pub mod status;
pub mod supervisor;
pub mod task;
pub mod time;

pub use checkpoint::{RestoreBlob, CRIU_CHECKPOINT_MEDIA_TYPE};
pub use client::{Client, ClientConfig, Version};
pub use container::{Container, ContainerInfo, Snapshot, BUNDLE_LABEL};
pub use control::{ProcessInfo, ProcessSummary};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use events::{
    Backend, BackendError, EventInfo, EventMonitor, EventType, ExitWait, MonitorOptions,
    MonitorState,
};
pub use id::Id;
pub use io::{DirectIo, Output, OutputReader, Stdin, StdioConfig};
pub use oci_spec;
pub use process::{exec_process, ExecProcessBuilder, Process};
pub use runtime::{RuncOptions, Runtime};
pub use signal::Signal;
pub use spec::SpecBuilder;
pub use stats::Stats;
pub use task::{ExecFailure, ExitStatus, Task, TaskInfo, TaskStatus};
