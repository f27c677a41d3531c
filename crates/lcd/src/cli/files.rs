//! The options of the commands that read or write a container's files: `cp`, `diff`, `export`.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Follow a symbolic link given as the source (its target is copied).
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Keep the files' owners (uid/gid) instead of giving them to root or to you.
    #[arg(short, long)]
    pub archive: bool,
    /// CONTAINER:PATH, a host path, or - (a tar stream on stdin).
    #[arg(value_name = "SRC")]
    pub source: String,
    /// CONTAINER:PATH, a host path, or - (a tar stream on stdout).
    #[arg(value_name = "DEST")]
    pub destination: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Container id.
    pub id: String,
}
