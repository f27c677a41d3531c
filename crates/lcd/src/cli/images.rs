//! The image commands' arguments (docker's names): `pull`, `push`, `login`, `logout`, `load`,
//! `import`, `save`, `images`, `tag`, `rmi`, `commit`, `history`, and `image SUBCOMMAND` for the
//! same under one roof (and `image prune`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args, Clone)]
pub struct PullArgs {
    /// Platform to pull from a multi-platform image (os/arch[/variant]; default: this host's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image's name.
    #[arg(short, long)]
    pub quiet: bool,
    /// Speak plain HTTP to the registry (loopback registries fall back to it anyway).
    #[arg(long)]
    pub plain_http: bool,
    /// The image: NAME[:TAG] or NAME@DIGEST.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push every tag of the image's repository (NAME without a tag).
    #[arg(short, long)]
    pub all_tags: bool,
    /// Print only the pushed digest's line.
    #[arg(short, long)]
    pub quiet: bool,
    /// Speak plain HTTP to the registry (loopback registries fall back to it anyway).
    #[arg(long)]
    pub plain_http: bool,
    /// The platform pushed when the store lacks some of a multi-platform image's manifests
    /// (os/arch[/variant]; default: this host's).
    #[arg(long)]
    pub platform: Option<String>,
    /// The image: NAME[:TAG], named for the registry it goes to (`127.0.0.1:5000/app:1`).
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name (asked for on a terminal when missing).
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password or token (insecure: it shows in the process list and shell history).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Speak plain HTTP to the registry (loopback registries fall back to it anyway).
    #[arg(long)]
    pub plain_http: bool,
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this tar archive instead of stdin (docker-save or OCI layout, plain or gzip).
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print only the loaded images' names.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A root filesystem: a directory, a tar archive (plain or gzip), or - for stdin.
    pub source: String,
    /// The image's name: NAME[:TAG].
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The images.
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only the image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Full image IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format: table, json, or a Go template (`{{.Repository}}:{{.Tag}}`).
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository (NAME or NAME:TAG).
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image to name again.
    pub source: String,
    /// The new name: NAME[:TAG].
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove the image even when containers use it.
    #[arg(short, long)]
    pub force: bool,
    /// The images.
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Commit message (the history entry's comment).
    #[arg(short, long, default_value = "")]
    pub message: String,
    /// Author (e.g. "Jane Doe <jane@example.com>").
    #[arg(short, long, default_value = "")]
    pub author: String,
    /// Apply a Dockerfile instruction to the image's config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    /// USER, WORKDIR, VOLUME or STOPSIGNAL (repeatable).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Pause the container while its changes are read (--pause=false to leave it running).
    #[arg(
        short,
        long,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub pause: bool,
    /// The container (made from an image).
    pub container: String,
    /// The new image's name: REPO[:TAG]; without it the image is known by its ID only.
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human-readable form (-H=false: bytes and RFC 3339 times).
    #[arg(
        short = 'H',
        long,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub human: bool,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only the image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, or a Go template (`{{.CreatedBy}}`).
    #[arg(long)]
    pub format: Option<String>,
    /// The image.
    pub image: String,
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    /// The images.
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show images' details as JSON.
    Inspect(ImageInspectArgs),
    /// Remove images.
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Push an image to a registry.
    Push(PushArgs),
    /// Load images from a tar archive.
    Load(LoadArgs),
    /// Save images to a tar archive.
    Save(SaveArgs),
    /// Make an image of a root filesystem.
    Import(ImportArgs),
    /// Show an image's history.
    History(HistoryArgs),
    /// Remove dangling images (with -a: every image no container uses).
    Prune(ImagePruneArgs),
}
