//! The command line, in docker's shape: `lcd [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]`.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// A docker-style command line for containerd.
#[derive(Debug, Parser)]
#[command(name = "lcd", version, about, propagate_version = true)]
pub struct Cli {
    /// containerd's socket; without it, lcd uses (and starts) its own managed containerd.
    #[arg(long, global = true, env = "LCD_ADDRESS")]
    pub address: Option<PathBuf>,
    /// containerd namespace.
    #[arg(long, global = true, env = "LCD_NAMESPACE", default_value = "lcd")]
    pub namespace: String,
    /// Persistent files: the managed containerd's root, container logs.
    #[arg(
        long,
        global = true,
        env = "LCD_DATA_ROOT",
        default_value = "/var/lib/lcd"
    )]
    pub data_root: PathBuf,
    /// Runtime files: the managed containerd's state and socket, bundle dirs.
    #[arg(long, global = true, env = "LCD_EXEC_ROOT", default_value = "/run/lcd")]
    pub exec_root: PathBuf,
    /// The containerd binary that the managed daemon runs.
    #[arg(
        long,
        global = true,
        env = "LCD_CONTAINERD",
        default_value = "containerd"
    )]
    pub containerd: PathBuf,
    /// Log debug messages to stderr.
    #[arg(long, global = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a container from a root filesystem directory.
    Run(RunArgs),
    /// Create a container without starting it; prints its id.
    Create(CreateArgs),
    /// Start a created or stopped container.
    Start(StartArgs),
    /// List containers.
    Ps(PsArgs),
    /// Show containers' details as JSON.
    Inspect(IdsArgs),
    /// Send a signal to containers (default SIGKILL).
    Kill(KillArgs),
    /// Stop containers: SIGTERM, then SIGKILL after a grace period.
    Stop(StopArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Print a detached container's output.
    Logs(LogsArgs),
    /// Manage lcd's own containerd.
    Daemon(DaemonArgs),
    /// Show lcd's and containerd's versions.
    Version(FormatArgs),
    /// Make root filesystems.
    Rootfs(RootfsArgs),
}

/// The options `run` and `create` share (docker's names). `-h` is the hostname, as in docker, so
/// help is `--help` only.
#[derive(Debug, Args, Clone)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Container id (generated when absent).
    #[arg(long)]
    pub name: Option<String>,
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Set an environment variable (K=V, or K to copy lcd's own).
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// UID[:GID] to run as.
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Container hostname.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short, long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Maximum number of processes.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The root filesystem: a directory path (it must contain a '/', e.g. ./rootfs).
    pub rootfs: String,
    /// The command and its arguments (default: sh).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id; output goes to `lcd logs`.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach stdout/stderr and wait for the container to exit.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin (with -a).
    #[arg(short, long)]
    pub interactive: bool,
    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only print ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct IdsArgs {
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short, long)]
    pub force: bool,
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub action: DaemonAction,
}

#[derive(Debug, Subcommand)]
pub enum DaemonAction {
    /// Start the managed containerd (no-op if it runs).
    Start,
    /// Stop the managed containerd.
    Stop,
    /// Say whether the managed containerd runs.
    Status,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format: text or json.
    #[arg(long, default_value = "text")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct RootfsArgs {
    #[command(subcommand)]
    pub kind: RootfsKind,
}

#[derive(Debug, Subcommand)]
pub enum RootfsKind {
    /// A minimal rootfs from the host's static busybox.
    Busybox {
        /// The directory to create (new or empty).
        dir: PathBuf,
        /// The busybox binary to copy.
        #[arg(long, default_value = libcontainerd::rootfs::DEFAULT_BUSYBOX)]
        busybox: PathBuf,
    },
}
