//! `lcd container COMMAND`: docker's management command for containers. Each of its commands is
//! the top-level one of the same name (`container ls` is `ps`, `container rm` is `rm`), as in
//! docker, whose scripts use either form; only `prune` is its own.

use clap::{Args, Subcommand};

use super::{
    AttachArgs, Command, CommitArgs, CpArgs, CreateArgs, DiffArgs, ExecArgs, ExportArgs, IdsArgs,
    InspectArgs, KillArgs, LogsArgs, PortArgs, PruneArgs, PsArgs, RenameArgs, RmArgs, RunArgs,
    StartArgs, StatsArgs, StopArgs, TopArgs, UpdateArgs,
};

#[derive(Debug, Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub action: ContainerAction,
}

#[derive(Debug, Subcommand)]
pub enum ContainerAction {
    /// Remove every stopped container.
    Prune(PruneArgs),
    /// List containers (`lcd ps`).
    #[command(visible_alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Create a container (`lcd create`).
    Create(CreateArgs),
    /// Create and run a container (`lcd run`).
    Run(RunArgs),
    /// Start containers (`lcd start`).
    Start(StartArgs),
    /// Stop containers (`lcd stop`).
    Stop(StopArgs),
    /// Restart containers (`lcd restart`).
    Restart(StopArgs),
    /// Send a signal to containers (`lcd kill`).
    Kill(KillArgs),
    /// Remove containers (`lcd rm`).
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Print a container's output (`lcd logs`).
    Logs(LogsArgs),
    /// Show containers' details (`lcd inspect`).
    Inspect(InspectArgs),
    /// Run a command in a running container (`lcd exec`).
    Exec(ExecArgs),
    /// Attach to a running container (`lcd attach`).
    Attach(AttachArgs),
    /// Freeze containers' processes (`lcd pause`).
    Pause(IdsArgs),
    /// Thaw paused containers (`lcd unpause`).
    Unpause(IdsArgs),
    /// List a container's processes (`lcd top`).
    Top(TopArgs),
    /// Live resource usage (`lcd stats`).
    Stats(StatsArgs),
    /// Wait for containers to stop (`lcd wait`).
    Wait(IdsArgs),
    /// Copy files between a container and the host (`lcd cp`).
    Cp(CpArgs),
    /// List a container's changed files (`lcd diff`).
    Diff(DiffArgs),
    /// Write a container's filesystem as a tar archive (`lcd export`).
    Export(ExportArgs),
    /// Rename a container (`lcd rename`).
    Rename(RenameArgs),
    /// Change containers' limits (`lcd update`).
    Update(UpdateArgs),
    /// List a container's published ports (`lcd port`).
    Port(PortArgs),
    /// Make an image of a container's changes (`lcd commit`).
    Commit(CommitArgs),
}

impl ContainerAction {
    /// The top-level command this one is, or `prune`'s arguments (the one that is its own).
    pub fn into_command(self) -> Result<Command, PruneArgs> {
        Ok(match self {
            ContainerAction::Prune(args) => return Err(args),
            ContainerAction::Ls(args) => Command::Ps(args),
            ContainerAction::Create(args) => Command::Create(args),
            ContainerAction::Run(args) => Command::Run(args),
            ContainerAction::Start(args) => Command::Start(args),
            ContainerAction::Stop(args) => Command::Stop(args),
            ContainerAction::Restart(args) => Command::Restart(args),
            ContainerAction::Kill(args) => Command::Kill(args),
            ContainerAction::Rm(args) => Command::Rm(args),
            ContainerAction::Logs(args) => Command::Logs(args),
            ContainerAction::Inspect(args) => Command::Inspect(args),
            ContainerAction::Exec(args) => Command::Exec(args),
            ContainerAction::Attach(args) => Command::Attach(args),
            ContainerAction::Pause(args) => Command::Pause(args),
            ContainerAction::Unpause(args) => Command::Unpause(args),
            ContainerAction::Top(args) => Command::Top(args),
            ContainerAction::Stats(args) => Command::Stats(args),
            ContainerAction::Wait(args) => Command::Wait(args),
            ContainerAction::Cp(args) => Command::Cp(args),
            ContainerAction::Diff(args) => Command::Diff(args),
            ContainerAction::Export(args) => Command::Export(args),
            ContainerAction::Rename(args) => Command::Rename(args),
            ContainerAction::Update(args) => Command::Update(args),
            ContainerAction::Port(args) => Command::Port(args),
            ContainerAction::Commit(args) => Command::Commit(args),
        })
    }
}
