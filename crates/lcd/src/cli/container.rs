//! The options of `run` and `create`: a container's command, environment, limits and security
//! settings, with docker's names and value forms.

use clap::{ArgAction, Args};

/// The options `run` and `create` share (docker's names). `-h` is the hostname, as in docker, so
/// help is `--help` only.
#[derive(Debug, Args, Clone)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Name the container (its id too, unless a renamed container has that id).
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal (with -i on a terminal: raw mode, Ctrl-P Ctrl-Q detaches).
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (K=V, or K to copy lcd's own).
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name or uid, optionally :group or :gid, looked up in the rootfs or image.
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// An additional group (name or gid) for the process; repeatable.
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Container hostname.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 64m, 1g; 0 is unlimited).
    #[arg(short, long, value_name = "BYTES", allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit (e.g. 128m; -1 is unlimited swap).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit (e.g. 32m).
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Disable the OOM killer (cgroup v1).
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// The process's OOM score adjustment (-1000 to 1000).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub oom_score_adj: Option<i32>,
    /// Size of /dev/shm (e.g. 128m; default 64m).
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub shm_size: Option<String>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long, allow_negative_numbers = true)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight, default 1024).
    #[arg(short = 'c', long, allow_negative_numbers = true)]
    pub cpu_shares: Option<u64>,
    /// CPUs the container may run on (e.g. 0-1, 0,2).
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (0 or -1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Security options: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false],
    /// apparmor=PROFILE; repeatable.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Add a Linux capability (NET_ADMIN, CAP_SYS_PTRACE, ALL); repeatable.
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (or ALL); repeatable.
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give the container every capability, every host device and no seccomp filter.
    #[arg(long)]
    pub privileged: bool,
    /// Give the container a host device: HOST[:CONTAINER][:PERMS] (PERMS some of rwm); repeatable.
    #[arg(long, value_name = "HOST[:CONTAINER][:PERMS]")]
    pub device: Vec<String>,
    /// A resource limit NAME=SOFT[:HARD] (e.g. nofile=1024:2048); repeatable.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// A namespaced kernel parameter K=V (net.*, fs.mqueue.*, kernel.shm*/msg*/sem); repeatable.
    #[arg(long, value_name = "K=V")]
    pub sysctl: Vec<String>,
    /// Run an init (the host's tini-static) as PID 1 that forwards signals and reaps zombies.
    #[arg(long)]
    pub init: bool,
    /// The signal `lcd stop` sends first (default: the image's StopSignal, else SIGTERM).
    #[arg(long, value_name = "SIGNAL", allow_negative_numbers = true)]
    pub stop_signal: Option<String>,
    /// Seconds `lcd stop` waits before SIGKILL (default 10; -1 waits forever).
    #[arg(long, allow_negative_numbers = true, value_name = "SECONDS")]
    pub stop_timeout: Option<i64>,
    /// Run this instead of the image's entrypoint (drops its Cmd too; "" clears it).
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Restart policy: no, on-failure[:MAX], always or unless-stopped (needs -d).
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub restart: String,
    /// The OCI runtime: runc (default), a runc-compatible binary by name or path (crun), or a
    /// shim's runtime name (io.containerd.NAME.vN).
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Pull the image: missing (if not stored), always, or never.
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
    #[command(flatten)]
    pub metadata: super::MetadataArgs,
    #[command(flatten)]
    pub mounts: super::MountArgs,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub network: super::NetworkArgs,
    /// An image (busybox, 127.0.0.1:5000/app:1), or a root filesystem directory used in place
    /// (a path starting with / or ., e.g. ./rootfs).
    #[arg(value_name = "IMAGE|ROOTFS")]
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
