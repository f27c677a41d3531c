//! The network options of `run` and `create` (flattened into [`super::CreateArgs`]), and the
//! `network`, `port` and hook commands' arguments, with docker's names.

use clap::{Args, Subcommand};

/// `run`'s and `create`'s network options. `--hostname` is among the container options.
#[derive(Debug, Args, Clone, Default)]
pub struct NetworkArgs {
    /// Connect to a network: bridge (the default), none, host or a network's name.
    #[arg(
        long = "network",
        alias = "net",
        value_name = "NETWORK",
        env = "LCD_NETWORK",
        default_value = "bridge"
    )]
    pub network: String,
    /// Publish a container's port on the host: [IP:][HOST:]CONTAINER[/tcp|udp], or CONTAINER for
    /// a free host port; repeatable.
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:CONTAINER")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on free host ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// A DNS server in place of the host's; repeatable.
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// An /etc/hosts entry NAME:IP; repeatable.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkCmdArgs {
    #[command(subcommand)]
    pub action: NetworkAction,
}

#[derive(Debug, Subcommand)]
pub enum NetworkAction {
    /// Create a bridge network.
    Create {
        /// Its subnet in CIDR form (default: the next free 10.X.0.0/16).
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// The network's name.
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only print names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks' details as JSON.
    Inspect {
        /// Network names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container uses one).
    #[command(alias = "remove")]
    Rm {
        /// Network names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// Container id.
    pub id: String,
    /// Only this container port: PORT[/PROTO].
    pub port: Option<String>,
}

/// The OCI hook lcd puts in a networked container's spec (runc runs it with the container's state
/// on stdin); not for users.
#[derive(Debug, Args)]
pub struct NetworkHookArgs {
    /// attach (createRuntime) or detach (postStop).
    #[arg(value_parser = ["attach", "detach"])]
    pub phase: String,
    /// Where to write the hook's error too: runc quotes a failed hook's stderr in its own error,
    /// crun keeps none of it, so lcd reads the reason from here.
    #[arg(long, value_name = "FILE")]
    pub error_file: Option<std::path::PathBuf>,
}
