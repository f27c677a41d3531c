//! The options of the commands about lcd as a whole: `info`, `system df|prune`, `container prune`'s,
//! `rename`, `completion` and `man`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format: text, json, or a Go template ({{.ContainersRunning}}, {{json .}}).
    #[arg(short, long, default_value = "text")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub action: SystemAction,
}

#[derive(Debug, Subcommand)]
pub enum SystemAction {
    /// Show disk usage: images, containers, logs.
    Df(SystemDfArgs),
    /// Remove stopped containers, their logs and dangling images (with -a: every unused image).
    Prune(SystemPruneArgs),
    /// Same as `lcd info`.
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub struct SystemDfArgs {
    /// Show each image and container.
    #[arg(short, long)]
    pub verbose: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove every image no container uses, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container.
    pub container: String,
    /// Its new name.
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_parser = ["bash", "zsh", "fish", "elvish", "powershell"])]
    pub shell: String,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write lcd.1 and one page per command (lcd-run.1...) into this directory; without it, lcd.1
    /// goes to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
