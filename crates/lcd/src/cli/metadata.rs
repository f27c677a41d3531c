//! `run`/`create` options that add to a container's environment and labels from the command line
//! and from files (docker's `--env-file`, `--label`, `--label-file`).

use std::path::PathBuf;

use clap::Args;

/// Environment files and labels, flattened into `CreateArgs`.
#[derive(Debug, Args, Clone, Default)]
pub struct MetadataArgs {
    /// Read environment variables from a file (lines K=V, or K to copy lcd's own; # comments);
    /// repeatable, -e wins over it.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Set a container label K=V; repeatable.
    #[arg(short = 'l', long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Read labels from a file (lines K=V; # comments); repeatable, --label wins over it.
    #[arg(long, value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
}
