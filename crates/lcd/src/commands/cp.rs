//! `lcd cp`: copy files between a container and the host, with docker's rules:
//! `CONTAINER:SRC DEST` and `SRC CONTAINER:DEST`; `-` as DEST writes a tar stream of SRC to
//! stdout, `-` as SRC unpacks a tar stream from stdin into the directory DEST. The container may
//! run (its files as its processes see them, mounts included) or not (its directory, or its
//! snapshot mounted for the copy). A directory goes inside an existing directory DEST, or becomes
//! DEST; `SRC/.` copies what is inside SRC. What lands in the container belongs to root, what lands
//! on the host to whoever runs lcd, unless `-a` keeps the owners.
//!
//! Each side runs in a thread whose root is that side's root (see `tarball`), joined by a pipe
//! carrying a tar stream, so that a container's symbolic links never lead out of it.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::cli::CpArgs;
use crate::container_fs::ContainerRoot;
use crate::context::Ctx;
use crate::state;
use crate::tarball::{self, Kind};

/// One side of a copy, as the user wrote it.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    Stream,
    Host(PathBuf),
    Container { id: String, path: String },
}

/// docker's rule: `NAME:PATH` is in a container when the colon comes before any slash; a host
/// path with a colon is written `./a:b`.
fn place(arg: &str) -> Place {
    if arg == "-" {
        return Place::Stream;
    }
    match arg.split_once(':') {
        Some((id, path)) if !id.is_empty() && !id.contains('/') => Place::Container {
            id: id.to_string(),
            path: path.to_string(),
        },
        _ => Place::Host(PathBuf::from(arg)),
    }
}

/// `lcd cp`.
pub async fn cp(ctx: &Ctx, args: CpArgs) -> Result<i32> {
    let keep_owners = args.archive;
    match (place(&args.source), place(&args.destination)) {
        (Place::Container { .. }, Place::Container { .. }) => {
            bail!("copying between containers is not supported")
        }
        (Place::Container { id, path }, destination) => {
            let client = ctx.client().await?;
            let container = state::load(&client, &id).await?;
            let root = ContainerRoot::live(&client, &container).await?;
            let source = container_path(&path, &id)?;
            copy_out(
                root.path(),
                &source,
                &id,
                destination,
                args.follow_link,
                keep_owners,
            )
            .await
        }
        (source, Place::Container { id, path }) => {
            let client = ctx.client().await?;
            let container = state::load(&client, &id).await?;
            let root = ContainerRoot::live(&client, &container).await?;
            let destination = container_path(&path, &id)?;
            copy_in(
                source,
                root.path(),
                &destination,
                args.follow_link,
                keep_owners,
            )
            .await
        }
        _ => bail!("must specify at least one container source (CONTAINER:PATH)"),
    }
}

/// A path in a container: absolute (relative ones are from its `/`, as docker takes them).
fn container_path(path: &str, id: &str) -> Result<PathBuf> {
    if path.is_empty() {
        bail!("no path given in {id}: (use {id}:/PATH)");
    }
    Ok(Path::new("/").join(path))
}

/// Copy `source` out of the container rooted at `root`.
async fn copy_out(
    root: &Path,
    source: &Path,
    id: &str,
    destination: Place,
    follow: bool,
    keep_owners: bool,
) -> Result<i32> {
    let src = source.to_path_buf();
    let kind = in_root(root, move || tarball::kind_of(&src, follow)).await?;
    let Some(kind) = kind else {
        bail!(
            "could not find the file {} in container {id}",
            source.display()
        );
    };
    let (unpack_dir, name) = match destination {
        Place::Stream => {
            let src = source.to_path_buf();
            let name = top_name(source);
            in_root(root, move || {
                let stdout = std::io::BufWriter::new(std::io::stdout().lock());
                tarball::write_tree(stdout, &src, &name, follow)
            })
            .await?;
            return Ok(0);
        }
        Place::Host(path) => {
            let path = std::path::absolute(&path)
                .with_context(|| format!("resolve {}", path.display()))?;
            target(&path, source, kind)?
        }
        Place::Container { .. } => unreachable!("checked by the caller"),
    };
    let (reader, writer) = tarball::pipe()?;
    let src = source.to_path_buf();
    let producer = in_root(root, move || {
        tarball::write_tree(writer, &src, &name, follow)
    });
    let consumer = in_root(Path::new("/"), move || {
        tarball::unpack(reader, &unpack_dir, keep_owners)
    });
    let (produced, consumed) = tokio::join!(producer, consumer);
    consumed.and(produced)?;
    Ok(0)
}

/// Copy `source` (a host path or a tar stream on stdin) into the container rooted at `root`.
async fn copy_in(
    source: Place,
    root: &Path,
    destination: &Path,
    follow: bool,
    keep_owners: bool,
) -> Result<i32> {
    let dest = destination.to_path_buf();
    let dest_kind = in_root(root, move || tarball::kind_of(&dest, true)).await?;
    let host = match source {
        Place::Stream => {
            if dest_kind != Some(Kind::Directory) {
                bail!(
                    "destination {} must be a directory in the container to unpack a tar stream into",
                    destination.display()
                );
            }
            let dest = destination.to_path_buf();
            in_root(root, move || {
                tarball::unpack(std::io::stdin().lock(), &dest, keep_owners)
            })
            .await?;
            return Ok(0);
        }
        Place::Host(path) => {
            std::path::absolute(&path).with_context(|| format!("resolve {}", path.display()))?
        }
        Place::Container { .. } => unreachable!("checked by the caller"),
    };
    let Some(kind) = tarball::kind_of(&host, follow)? else {
        bail!("no such file or directory: {}", host.display());
    };
    let dest = destination.to_path_buf();
    let named = host.clone();
    let (unpack_dir, name) = in_root(root, move || target(&dest, &named, kind))
        .await
        .map_err(|e| e.context("in the container"))?;
    let (reader, writer) = tarball::pipe()?;
    let src = host.clone();
    let producer = in_root(Path::new("/"), move || {
        tarball::write_tree(writer, &src, &name, follow)
    });
    let consumer = in_root(root, move || {
        tarball::unpack(reader, &unpack_dir, keep_owners)
    });
    let (produced, consumed) = tokio::join!(producer, consumer);
    consumed.and(produced)?;
    Ok(0)
}

/// Where to unpack, and the name of the top entry, for copying `source` (of `kind`) to
/// `destination`, in the root the caller runs in: into an existing directory under the source's
/// name (or its contents, for `SRC/.`); else as `destination` itself.
fn target(destination: &Path, source: &Path, kind: Kind) -> Result<(PathBuf, PathBuf)> {
    let contents = kind == Kind::Directory && ends_with_dot(source);
    match tarball::kind_of(destination, true)? {
        Some(Kind::Directory) => {
            let name = if contents {
                PathBuf::new()
            } else {
                top_name(source)
            };
            Ok((destination.to_path_buf(), name))
        }
        Some(Kind::Other) if kind == Kind::Directory => bail!(
            "cannot overwrite non-directory {} with directory {}",
            destination.display(),
            source.display()
        ),
        _ if destination.as_os_str().to_string_lossy().ends_with('/') => {
            bail!("no such directory: {}", destination.display())
        }
        existing => {
            let (Some(parent), Some(name)) = (destination.parent(), destination.file_name()) else {
                bail!("invalid destination {}", destination.display());
            };
            if existing.is_none() && tarball::kind_of(parent, true)? != Some(Kind::Directory) {
                bail!("no such directory: {}", parent.display());
            }
            Ok((parent.to_path_buf(), PathBuf::from(name)))
        }
    }
}

/// `dir/.` (or `/`): copy what is inside.
fn ends_with_dot(path: &Path) -> bool {
    let text = path.as_os_str().to_string_lossy();
    text.ends_with("/.") || path.components().next_back() == Some(Component::RootDir)
}

/// The name a source has in the stream: its last component (nothing for `/`: its contents).
fn top_name(source: &Path) -> PathBuf {
    source
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            _ => None,
        })
        .next_back()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(OsString::new()))
}

/// `tarball::in_root` off the async runtime's threads.
async fn in_root<T, F>(root: &Path, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || tarball::in_root(&root, work))
        .await
        .context("a file copier task failed")?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn places_follow_dockers_colon_rule() {
        assert_eq!(place("-"), Place::Stream);
        assert_eq!(
            place("web:/etc/hosts"),
            Place::Container {
                id: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(place("./a:b"), Place::Host("./a:b".into()));
        assert_eq!(place("/tmp/x"), Place::Host("/tmp/x".into()));
    }

    #[test]
    fn top_names_and_contents() {
        assert_eq!(top_name(Path::new("/a/b/")), PathBuf::from("b"));
        assert_eq!(top_name(Path::new("/")), PathBuf::new());
        assert!(ends_with_dot(Path::new("/a/.")));
        assert!(!ends_with_dot(Path::new("/a")));
    }
}
