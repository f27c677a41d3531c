//! `lcd` as a library: the command line's argument types and every command. The `lcd` binary
//! (src/main.rs) is a thin wrapper on it, and the fuzz target parses with the same types.
//!
//! Modules import only those below them, so there is no circle:
//! - [`commands`]: one module per command, and `dispatch`;
//! - what commands share: `context` (where containerd is, lcd's directories), `state` (labels,
//!   states, loading), `session` (an attached session), `tty`, `signals`, `flags` (`--format`,
//!   `-e`) and [`exit`] (exit statuses, the one-line error);
//! - [`cli`]: the argument types, which import nothing of lcd's.

pub mod cli;
pub mod commands;
pub mod exit;

mod container_fs;
mod context;
mod flags;
mod inventory;
mod log_format;
mod log_reader;
mod log_tee;
mod metadata;
mod options;
mod outage;
mod session;
mod signals;
mod state;
mod tarball;
mod tty;
