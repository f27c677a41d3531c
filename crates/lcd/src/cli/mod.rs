//! The command line, in docker's shape: `lcd [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]`. Only the
//! argument types (and the duration parser clap calls): the commands take these structs as they are,
//! so this module imports nothing of lcd's and the fuzz target parses exactly what `lcd` parses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod container;
mod files;
mod images;
mod management;
mod metadata;
mod mounts;
mod network;
mod system;

pub use container::*;
pub use files::*;
pub use images::*;
pub use management::*;
pub use metadata::*;
pub use mounts::*;
pub use network::*;
pub use system::*;

/// The help section of the options every command takes, apart from each command's own.
const GLOBAL: &str = "Global Options";

/// A docker-style command line for containerd.
#[derive(Debug, Parser)]
#[command(name = "lcd", version, about, propagate_version = true)]
pub struct Cli {
    /// containerd's socket; without it, lcd uses (and starts) its own managed containerd.
    #[arg(long, global = true, help_heading = GLOBAL, env = "LCD_ADDRESS")]
    pub address: Option<PathBuf>,
    /// containerd namespace.
    #[arg(long, global = true, help_heading = GLOBAL, env = "LCD_NAMESPACE", default_value = "lcd")]
    pub namespace: String,
    /// Persistent files: the managed containerd's root, container logs.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "LCD_DATA_ROOT",
        default_value = "/var/lib/lcd"
    )]
    pub data_root: PathBuf,
    /// Runtime files: the managed containerd's state and socket, bundle dirs.
    #[arg(long, global = true, help_heading = GLOBAL, env = "LCD_EXEC_ROOT", default_value = "/run/lcd")]
    pub exec_root: PathBuf,
    /// The containerd binary that the managed daemon runs.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "LCD_CONTAINERD",
        default_value = "containerd"
    )]
    pub containerd: PathBuf,
    /// Log debug messages to stderr.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub debug: bool,
    /// Let stop, kill, rm, pause, update, start and checkpoint change containers that Kubernetes
    /// manages (made by containerd's CRI plugin, namespace k8s.io), which they refuse otherwise:
    /// the kubelet restarts, recreates or misreports what lcd changes behind its back.
    #[arg(long, global = true)]
    pub force_kubernetes: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a container from an image or a root filesystem directory.
    Run(RunArgs),
    /// Create a container without starting it; prints its id.
    Create(CreateArgs),
    /// Start a created or stopped container.
    Start(StartArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Attach to a running container started with -i or -t (Ctrl-P Ctrl-Q detaches).
    Attach(AttachArgs),
    /// List containers.
    Ps(PsArgs),
    /// Show containers' details as JSON (or through a Go template: -f '{{.State.Status}}').
    Inspect(InspectArgs),
    /// Send a signal to containers (default SIGKILL).
    Kill(KillArgs),
    /// Stop containers: SIGTERM, then SIGKILL after a grace period.
    Stop(StopArgs),
    /// Restart containers: stop them as `stop` does, then start them detached.
    Restart(StopArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Print a detached container's output.
    Logs(LogsArgs),
    /// Stream containers' events (create, start, exit, oom, ...) as they happen.
    Events(EventsArgs),
    /// Freeze containers' processes.
    Pause(IdsArgs),
    /// Thaw paused containers.
    Unpause(IdsArgs),
    /// Live resource usage of containers.
    Stats(StatsArgs),
    /// List a container's processes.
    Top(TopArgs),
    /// Change containers' resource limits (a running one's at once, and for later starts).
    Update(UpdateArgs),
    /// Checkpoint containers with CRIU.
    Checkpoint(CheckpointArgs),
    /// Manage lcd's own containerd.
    Daemon(DaemonArgs),
    /// lcd's agent, which lcd starts beside its managed containerd (not for users).
    #[command(hide = true)]
    Agent,
    /// Show lcd's and containerd's versions.
    Version(FormatArgs),
    /// Make root filesystems.
    Rootfs(RootfsArgs),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Push an image to a registry.
    Push(PushArgs),
    /// Log in to a registry (credentials kept in docker's config.json).
    Login(LoginArgs),
    /// Log out from a registry.
    Logout(LogoutArgs),
    /// Load images from a tar archive (docker-save or OCI layout) or stdin.
    Load(LoadArgs),
    /// Make an image of a root filesystem (a directory, a tar archive or stdin).
    Import(ImportArgs),
    /// Save images to a tar archive (docker-save format).
    Save(SaveArgs),
    /// List images.
    Images(ImagesArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Remove images.
    Rmi(RmiArgs),
    /// Manage images.
    Image(ImageArgs),
    /// Make an image of a container's changes.
    Commit(CommitArgs),
    /// Show an image's history.
    History(HistoryArgs),
    /// Manage volumes.
    Volume(VolumeArgs),
    /// Load-test containerd through the library, like containerd-stress.
    Stress(StressArgs),
    /// Manage networks.
    Network(NetworkCmdArgs),
    /// List a container's published ports.
    Port(PortArgs),
    /// The OCI hook that sets up and tears down a container's network (run by runc).
    #[command(hide = true, name = "network-hook")]
    NetworkHook(NetworkHookArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(IdsArgs),
    /// Copy files between a container and the host (- for a tar stream).
    Cp(CpArgs),
    /// List the files a container from an image changed (A added, C changed, D deleted).
    Diff(DiffArgs),
    /// Write a container's filesystem as a tar archive.
    Export(ExportArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Manage containers.
    Container(ContainerArgs),
    /// Show system-wide information.
    Info(InfoArgs),
    /// Manage lcd: disk usage, pruning, information.
    System(SystemArgs),
    /// Print a shell completion script (bash, zsh, fish).
    Completion(CompletionArgs),
    /// Print lcd's man page, generated from its command-line definitions.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StressArgs {
    #[command(subcommand)]
    pub mode: Option<StressMode>,
    /// Workers running at once.
    #[arg(short, long, default_value_t = 1)]
    pub concurrency: usize,
    /// How long to run (e.g. 30s, 2m).
    #[arg(short, long, default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Loop execs of /bin/true in one long-running container instead of whole containers.
    #[arg(long)]
    pub exec: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Root filesystem to run (default: a busybox one in a temp dir).
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StressMode {
    /// Start N idle containers and report each shim's RSS and PSS.
    Density {
        /// How many containers.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Root filesystem to run (default: a busybox one in a temp dir).
        #[arg(long)]
        rootfs: Option<PathBuf>,
    },
}

/// "500ms", "30s", "2m", "1h", or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 30s, 2m, 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open and forward it.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Start the command and return at once (its output is discarded).
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable (K=V, or K to copy lcd's own).
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name or uid, optionally :group or :gid, looked up in the container.
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Container id.
    pub container: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Output format: text, json (one object per line) or a Go template ({{.Action}} {{.ID}}).
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Only some events; supported: container=ID.
    #[arg(long)]
    pub filter: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: table, json, or a Go template (`{{.Name}} {{.CPUPerc}}`).
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: all running).
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Container id.
    pub id: String,
}

#[derive(Debug, Default, Args)]
pub struct UpdateArgs {
    /// Memory limit (e.g. 64m).
    #[arg(short, long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit.
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long, allow_negative_numbers = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, allow_negative_numbers = true)]
    pub cpu_shares: Option<u64>,
    /// CPUs allowed (e.g. 0-1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (0 or less: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(subcommand)]
    pub action: CheckpointAction,
}

#[derive(Debug, Subcommand)]
pub enum CheckpointAction {
    /// Checkpoint a running container with CRIU (it stops, unless --leave-running).
    Create {
        /// Keep the container running after the checkpoint.
        #[arg(long)]
        leave_running: bool,
        /// Where checkpoints are kept (default: the container's own directory under the data root).
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        /// Container id.
        container: String,
        /// Checkpoint name.
        name: String,
    },
    /// List a container's checkpoints.
    #[command(visible_alias = "list")]
    Ls {
        /// Where checkpoints are kept (default: the container's own directory under the data root).
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        /// Container id.
        container: String,
    },
    /// Remove a checkpoint.
    #[command(visible_alias = "remove")]
    Rm {
        /// Where checkpoints are kept (default: the container's own directory under the data root).
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        /// Container id.
        container: String,
        /// Checkpoint name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The key sequence that detaches, docker's format.
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach stdout/stderr and wait for the container to exit.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin (with -a).
    #[arg(short, long)]
    pub interactive: bool,
    /// Restore from this checkpoint (made by `lcd checkpoint create`).
    #[arg(long, value_name = "NAME")]
    pub checkpoint: Option<String>,
    /// Where the checkpoint is kept (default: the container's own directory under the data root).
    #[arg(long, value_name = "DIR", requires = "checkpoint")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Container ids (one with -a or --checkpoint).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only print ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, or a Go template (`table {{.ID}}\t{{.Names}}`).
    #[arg(long)]
    pub format: Option<String>,
    /// Only containers matching KEY=VALUE: status, name, id, label, ancestor, exited; repeatable.
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Show the N last created containers (all states).
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Show the latest created container (all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Show the containers' sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print each container through a Go template (`{{.State.Pid}}`), or `json` (one per line).
    #[arg(short, long)]
    pub format: Option<String>,
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
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
    #[arg(short, long, default_value = "KILL", allow_negative_numbers = true)]
    pub signal: String,
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL (default: the container's --stop-timeout, else 10; -1 waits
    /// forever).
    #[arg(short = 't', long = "time", allow_negative_numbers = true)]
    pub time: Option<i64>,
    /// The signal to send first (default: the container's --stop-signal, else SIGTERM).
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all": every line).
    #[arg(short = 'n', long, default_value = "all", allow_hyphen_values = true)]
    pub tail: String,
    /// Only output since a time: 2026-11-30T05:45:00Z, 2026-11-30, a Unix time, or a duration
    /// ago (10m, 1h30m).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only output before a time (the same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Start each line with the time it was written.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Start each line with the log's extra attributes (lcd's logs have none).
    #[arg(long)]
    pub details: bool,
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
    /// Output format: text, json, or a Go template (`{{.Server.Version}}`).
    #[arg(short, long)]
    pub format: Option<String>,
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
