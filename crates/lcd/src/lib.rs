//! `lcd` as a library: the command line's argument types and every command, so that the `lcd`
//! binary stays a thin wrapper and the fuzz target can use the real types.

pub mod cli;
pub mod commands;
mod context;
pub mod exit;
mod flags;
mod session;
mod signals;
mod state;
mod tty;
