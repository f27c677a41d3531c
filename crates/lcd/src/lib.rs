//! `lcd` as a library: the command line's argument types and every command. The `lcd` binary
//! (src/main.rs) is a thin wrapper on it, and the fuzz target parses with the same types.
//!
//! Modules import only those below them, so there is no circle:
//! - [`commands`]: one module per command, and `dispatch`;
//! - what commands share: `context` (where containerd is, lcd's directories), `state` (labels,
//!   states, loading), `names` (docker's names on containerd's ids), `session` (an attached
//!   session), `tty`, `signals`, `flags` (`--format`, `-e`), `template` (`--format` Go templates),
//!   `runtimes` (`--runtime`) and [`exit`] (exit statuses, the one-line error);
//! - `agent` (the process that outlives the CLI and acts on detached containers' exits) and
//!   `launch` (a detached start, shared by the commands and the agent), above `restart` (docker's
//!   restart policies) and the support modules; `fault` (crash points for the fault tests);
//! - [`cli`]: the argument types, which import nothing of lcd's.

pub mod cli;
pub mod commands;
pub mod exit;

mod agent;
mod container_fs;
mod container_lock;
mod context;
mod cri;
mod fault;
mod flags;
mod inventory;
mod launch;
mod log_format;
mod log_reader;
mod log_tee;
mod metadata;
mod mounts;
mod names;
mod network;
mod options;
mod outage;
mod restart;
mod run_config;
mod runtimes;
mod session;
mod signals;
mod state;
mod tarball;
mod template;
mod tty;
mod volumes;
