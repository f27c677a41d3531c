//! A containerd client with the contract of Docker's `libcontainerd`.
//!
//! `libcontainerd` is the layer through which a container engine drives
//! [containerd](https://containerd.io): an async (tokio) client of a real containerd over its gRPC
//! socket, shaped like moby's `libcontainerd/types` (`Client`, `Container`, `Task`, `Process`,
//! `Backend`; see the table below). It creates containers from OCI runtime specs, runs their tasks
//! and execs with their stdio on FIFOs, delivers containerd's task events to a [`Backend`], and can
//! run a private containerd of its own ([`supervisor`]). The `lcd` command line is built on it.
//!
//! # Quick example
//!
//! Run `echo hi` in a root filesystem on the host and read its output (as root, with containerd
//! listening on its default socket):
//!
//! ```no_run
//! # async fn quick_example() -> Result<(), libcontainerd::BoxError> {
//! use libcontainerd::{Client, ClientConfig, Id, Runtime, SpecBuilder, StdioConfig};
//! use tokio::io::AsyncReadExt;
//!
//! let client = Client::connect(ClientConfig::new("/run/containerd/containerd.sock", "example", "/run/example")).await?;
//! let id = Id::new("hello")?; // containerd's id rule, checked once
//! let spec = SpecBuilder::new("/srv/rootfs").args(["echo", "hi"]).build()?;
//! // The cgroups path (/example/hello) and the hostname come from the id.
//! let container = client.new_container(&id, &spec, &Runtime::default(), &Default::default()).await?;
//! let (task, mut io) = container.spawn(None, &StdioConfig::default()).await?;
//! let mut out = String::new();
//! if let Some(stdout) = io.stdout.as_mut() {
//!     stdout.read_to_string(&mut out).await?; // "hi\n"; stderr, never read, is drained
//! }
//! let status = task.wait().await?;
//! task.delete().await?;
//! container.delete().await?;
//! # let _ = status;
//! # Ok(())
//! # }
//! ```
//!
//! The callback form of the reference is there too: [`Container::start`] hands the same
//! [`DirectIo`] to a closure before the process runs. `examples/` in the repository has complete
//! programs: a CI-runner-style engine (`ci_runner`), execs with stdin, a terminal and re-attaching
//! (`exec_attach`), and ordered events (`events`).
//!
//! # The reference contract, method by method
//!
//! | Reference (`libcontainerd/types`) | Here |
//! |---|---|
//! | `Client.Version` | [`Client::version`] |
//! | `Client.NewContainer(id, spec, shim, opts)` | [`Client::new_container`]`(&Id, &Spec, &Runtime, &labels)`; on a snapshot (an image's): [`Client::new_container_on_snapshot`] |
//! | `Client.LoadContainer` | [`Client::load_container`]; with its task in one round trip: [`Client::load_container_and_task`] |
//! | (list) | [`Client::list_containers`], [`Client::list_tasks`] |
//! | `Container.Start(checkpointDir, withStdin, attach)` | [`Container::start`]`(checkpoint, &StdioConfig, attach)`; without a callback: [`Container::spawn`] → `(Task, DirectIo)`; in two steps: [`Container::create_task`] + [`Task::start`] |
//! | `Container.Task` | [`Container::task`] |
//! | `Container.AttachTask` | [`Container::attach_task`] |
//! | `Container.Delete` | [`Container::delete`] (record, bundle dir, snapshot) |
//! | `Task.Pid` | [`Task::pid`] |
//! | `Task.Kill` | [`Task::kill`]`(Signal)`, [`Task::kill_all`] |
//! | `Task.Resize` | [`Task::resize`] |
//! | `Task.Delete` → exit status | [`Task::delete`] → [`ExitStatus`] |
//! | (wait) | [`Task::wait`]; from the event stream: [`EventMonitor::wait_init_exit`], [`EventMonitor::wait_exit`], [`EventMonitor::wait_exit_pid`] |
//! | `Task.Status` | [`Task::status`] → [`TaskStatus`] |
//! | `Task.ForceDelete` | [`Task::force_delete`] |
//! | `Task.Exec(id, spec, withStdin, attach)` | [`Task::exec`]`(&Id, oci Process, &StdioConfig, attach)` → [`Process`]; without a callback: [`Task::spawn_exec`] → `(Process, DirectIo)`; the spec from the container's: [`exec_process`] |
//! | `Process.Pid/Kill/Resize/Delete` (exec) | [`Process::pid`], [`Process::kill`], [`Process::resize`], [`Process::wait`], [`Process::delete`], [`Process::force_delete`] |
//! | (re-attach to an exec) | [`Task::load_process`], [`Task::attach_process`] |
//! | `Task.Pause` / `Resume` | [`Task::pause`], [`Task::resume`] |
//! | `Task.Stats` | [`Task::stats`] → [`Stats`] (cgroup v1 and v2) |
//! | `Task.Pids` / `Summary` | [`Task::pids`], [`Task::summary`] |
//! | `Task.UpdateResources` | [`Task::update_resources`] |
//! | `Task.CreateCheckpoint` | [`Task::create_checkpoint`]; restore: [`Container::start`] / [`Container::spawn`] with `Some(dir)` |
//! | `Backend.ProcessEvent`, `EventType`, `EventInfo` | [`Backend::process_event`], [`EventType`], [`EventInfo`], delivered by [`EventMonitor::start`] |
//! | `StdioCallback` | `FnOnce(DirectIo) -> Result<(), BoxError>`: any error type through `?` |
//!
//! # Guarantees
//!
//! - **Events in order, per container.** An [`EventMonitor`] hands the events of one container to
//!   the [`Backend`] one at a time, in the order containerd published them, from a worker of that
//!   container's own: a slow handler holds up only its own container.
//! - **Every exit exactly once.** Exits are deduplicated per (container, process). When the
//!   stream breaks, the monitor reconnects and reconciles with containerd's task list, so an exit
//!   that happened meanwhile is still delivered, once, with its real status while containerd has
//!   it ([`events::UNKNOWN_EXIT_CODE`] and [`EventInfo::error`] set when it was lost). An
//!   [`ExitWait`] resolves from the same decisions (when the exit is decided; the `Backend` may be
//!   handed it a moment later).
//! - **No blocked output.** The shim blocks a process whose output FIFO is full, so an
//!   [`OutputReader`] dropped unread keeps draining its stream until the process ends
//!   ([`OutputReader::detach`] to leave the output in the FIFO for a later reader);
//!   [`Output::PipeStdout`] / [`Output::PipeStderr`] discard the other stream, and
//!   [`Output::Null`], [`Output::File`] and [`Output::Binary`] need nobody attached.
//! - **Cleanup when a future is dropped.** A call whose future is dropped (a timeout, a `select!`)
//!   either finishes (the deletes) or is undone in a task of its own (create, start, spawn, exec):
//!   no task, exec, FIFO or bundle dir is left that nobody holds. A call cut off by containerd
//!   dying is [`ErrorKind::Unavailable`], never a made-up result.
//! - **One error type.** Every call fails with an [`Error`] whose [`Error::kind`] is in
//!   containerd's terms ([`ErrorKind`], `#[non_exhaustive]`); a duplicate container id, exec id or
//!   second task is [`ErrorKind::AlreadyExists`]. An attach callback's own error is kept as the
//!   source (kind [`ErrorKind::Unknown`] unless it is one of ours).
//!
//! # Modules
//!
//! From the bottom up:
//!
//! | Module | What |
//! |---|---|
//! | [`client`] | the connection: one shared gRPC channel, the namespace, the bundle directory root |
//! | [`container`] | container records, bundle directories, snapshots; creating, loading, listing, deleting |
//! | [`task`] | a container's task (init process): create, start, spawn, attach, kill, wait, delete |
//! | [`process`] | execs: [`Task::exec`], [`Task::spawn_exec`], [`Process`], the exec spec builder |
//! | [`io`] | stdio: [`StdioConfig`], [`Output`], FIFOs, [`DirectIo`], [`OutputReader`], [`Stdin`] |
//! | [`status`] | plain values: [`TaskStatus`], [`ExitStatus`], [`TaskInfo`] |
//! | [`runtime_failure`] | what runc's and crun's failures mean: [`ExecFailure`], refused hosts and memory limits |
//! | [`events`] | [`Backend`], [`EventType`], [`EventInfo`], [`EventMonitor`] |
//! | [`control`] | pause, resume, pids, summary, resource updates |
//! | [`stats`] | [`Stats`] from cgroup v1 or v2 metrics |
//! | [`checkpoint`] | CRIU checkpoints through containerd's content store |
//! | [`spec`] | [`SpecBuilder`] and the default Linux OCI spec; [`spec::for_container`] |
//! | [`runtime`] | the shim ([`Runtime`]) and runc options |
//! | [`signal`] | [`Signal`]: checked signal numbers, parsed from names |
//! | [`supervisor`] | a private containerd: start, adopt, stop ([`supervisor::Daemon`]) |
//! | [`rootfs`] | a busybox root filesystem, so a first container needs no image |
//! | [`raw`] | containerd's wire types (tonic, prost, generated clients) for what the library does not wrap |
//! | [`id`], [`error`], [`time`] | [`Id`], [`Error`], RFC 3339 times |

// Every public item is documented; .ci/run builds the docs with warnings as errors.
#![warn(missing_docs)]

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
pub mod runtime_failure;
pub mod signal;
mod snapshot;
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
pub use runtime_failure::ExecFailure;
pub use signal::Signal;
pub use spec::SpecBuilder;
pub use stats::Stats;
pub use task::{ExitStatus, Task, TaskInfo, TaskStatus};
