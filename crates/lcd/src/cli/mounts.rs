//! The mount options of `run` and `create` (`-v`, `--mount`, `--tmpfs`) and `lcd volume`'s
//! subcommands, with docker's names and value forms.

use clap::{Args, Subcommand};

/// `run`'s and `create`'s mounts (flattened into [`CreateArgs`](super::CreateArgs)).
#[derive(Debug, Args, Clone, Default)]
pub struct MountArgs {
    /// A bind mount /HOST:/CTR[:ro|rw][,z] (a missing host directory is created), a named volume
    /// NAME:/CTR (created and filled from the image on first use), or /CTR (an anonymous volume);
    /// repeatable.
    #[arg(short = 'v', long = "volume", value_name = "[SRC:]DST[:MODES]")]
    pub volume: Vec<String>,
    /// A mount: type=bind|volume|tmpfs,source=SRC,target=DST, and readonly, bind-propagation=,
    /// volume-nocopy, tmpfs-size=BYTES, tmpfs-mode=OCTAL; a missing bind source is an error;
    /// repeatable.
    #[arg(long, value_name = "type=TYPE,source=SRC,target=DST")]
    pub mount: Vec<String>,
    /// A tmpfs at DST (noexec,nosuid,nodev plus OPTIONS, e.g. size=64m,mode=1777); repeatable.
    #[arg(long, value_name = "DST[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// The binds and volumes of container ID, read-only or read-write as there unless :ro or :rw
    /// says otherwise; repeatable.
    #[arg(long, value_name = "ID[:ro|rw]")]
    pub volumes_from: Vec<String>,
}

/// `lcd volume`.
#[derive(Debug, Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub action: VolumeAction,
}

#[derive(Debug, Subcommand)]
pub enum VolumeAction {
    /// Create a volume (a generated name when none is given); prints its name.
    Create {
        /// [a-zA-Z0-9][a-zA-Z0-9_.-]+
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only names.
        #[arg(short, long)]
        quiet: bool,
        /// table or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Volumes' details as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one).
    #[command(alias = "remove")]
    Rm {
        /// Accepted for docker's sake: a volume in use is refused either way.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove anonymous volumes no container uses (with -a, named ones too).
    Prune {
        /// Named volumes too.
        #[arg(short, long)]
        all: bool,
        /// Do not ask (lcd never asks).
        #[arg(short, long)]
        force: bool,
    },
}
