//! `docker import`: a root filesystem (a directory or a tar archive of one) becomes a one-layer
//! image, so that containers can run on copy-on-write snapshots of it instead of in the directory
//! itself.
//!
//! The layer is written to a temporary file while its sha256 (the diff ID) is computed, then
//! wrapped in a docker-save archive (the layer, a config naming the diff ID, `manifest.json`) that
//! goes through [`import`], so the content, GC labels, lease and failure handling are the same as
//! for any archive. Disk holds the layer twice for a moment; memory holds one buffer.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use libcontainerd::{Client, Error, ErrorKind, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::import::{import, ImportOptions, ImportedImage};
use crate::platform::Platform;
use crate::reference::Reference;

/// What to make an image of.
#[derive(Debug, Clone)]
pub enum RootfsSource {
    /// A directory: its tree becomes the layer (symlinks kept as symlinks, owners and modes kept).
    Directory(PathBuf),
    /// A tar archive of a root filesystem, plain or gzip (as `docker import` takes it).
    Archive(PathBuf),
}

/// Make image `name` from `source`, with an empty run config (like `docker import` without
/// `--change`: the command is given at run time). Returns the image as stored.
pub async fn import_rootfs(
    client: &Client,
    source: &RootfsSource,
    name: &str,
) -> Result<ImportedImage> {
    let reference = Reference::parse(name)?;
    let tag = match (reference.tag(), reference.digest()) {
        (_, Some(_)) => {
            return Err(Error::invalid(format!(
                "import {name}: an imported image is named by a tag, not a digest"
            )))
        }
        (Some(tag), None) => tag.to_string(),
        (None, None) => "latest".to_string(),
    };
    let repo_tag = format!("{}:{tag}", reference.name());
    let source = source.clone();
    let platform = Platform::host();
    let work = tempfile_dir()?;
    let archive_path = work.join("image.tar");
    let built_path = archive_path.clone();
    // Tar and hash on a blocking thread: it is all file IO.
    tokio::task::spawn_blocking(move || build_archive(&source, &platform, &repo_tag, &built_path))
        .await
        .map_err(|e| {
            Error::internal(format!("import {name}: the archive builder failed: {e}"))
        })??;
    let archive = File::open(&archive_path)
        .map_err(|e| Error::io(format!("import {name}: open {}", archive_path.display()), e));
    let result = match archive {
        Ok(file) => import(client, BufReader::new(file), &ImportOptions::default()).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&work);
    let mut images = result.map_err(|e| e.context(format!("import {name}")))?;
    images
        .pop()
        .ok_or_else(|| Error::internal(format!("import {name}: the archive held no image")))
}

/// A private scratch directory for the archive being built.
fn tempfile_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    let dir = base.join(format!(
        "lcd-import-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    Ok(dir)
}

/// Write a docker-save archive holding one image whose only layer is `source`.
fn build_archive(
    source: &RootfsSource,
    platform: &Platform,
    repo_tag: &str,
    out: &Path,
) -> Result<()> {
    let layer_path = out.with_file_name("layer.tar");
    let diff_id = write_layer(source, &layer_path)?;
    let hex = diff_id.trim_start_matches("sha256:");
    let created = libcontainerd::time::rfc3339(std::time::SystemTime::now());
    let config = serde_json::to_vec(&json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": created,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "comment": "imported by lcd"}],
    }))
    .map_err(|e| Error::internal(format!("encode image config: {e}")))?;
    let config_name = format!("{}.json", hex_of(&config));
    let layer_name = format!("{hex}/layer.tar");
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": [layer_name],
    }]))
    .map_err(|e| Error::internal(format!("encode manifest.json: {e}")))?;

    let fail = |e: std::io::Error| Error::io(format!("write {}", out.display()), e);
    let file = File::create(out).map_err(fail)?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let mut layer = File::open(&layer_path).map_err(fail)?;
    let size = layer.metadata().map_err(fail)?.len();
    tar.append_data(&mut file_header(size), &layer_name, &mut layer)
        .map_err(fail)?;
    tar.append_data(
        &mut file_header(config.len() as u64),
        &config_name,
        &config[..],
    )
    .map_err(fail)?;
    tar.append_data(
        &mut file_header(manifest.len() as u64),
        "manifest.json",
        &manifest[..],
    )
    .map_err(fail)?;
    tar.into_inner().and_then(|mut w| w.flush()).map_err(fail)?;
    let _ = std::fs::remove_file(&layer_path);
    Ok(())
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn hex_of(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// Write the uncompressed layer tar to `path`; its `sha256:` digest (the diff ID).
fn write_layer(source: &RootfsSource, path: &Path) -> Result<String> {
    let fail = |e: std::io::Error| Error::io(format!("write layer {}", path.display()), e);
    let file = File::create(path).map_err(fail)?;
    let mut hashed = HashingWriter::new(BufWriter::new(file));
    match source {
        RootfsSource::Directory(dir) => {
            let meta = std::fs::metadata(dir)
                .map_err(|e| Error::io(format!("rootfs {}", dir.display()), e))?;
            if !meta.is_dir() {
                return Err(Error::invalid(format!(
                    "rootfs {} is not a directory",
                    dir.display()
                )));
            }
            let mut tar = tar::Builder::new(&mut hashed);
            // A root filesystem's symlinks point inside it (`/bin/sh -> busybox`): keep them.
            tar.follow_symlinks(false);
            tar.append_dir_all(".", dir)
                .map_err(|e| Error::io(format!("tar rootfs {}", dir.display()), e))?;
            tar.finish().map_err(fail)?;
        }
        RootfsSource::Archive(file) => copy_archive(file, &mut hashed)?,
    }
    hashed.flush().map_err(fail)?;
    Ok(format!("sha256:{:x}", hashed.hasher.finalize()))
}

/// Copy a rootfs archive into the layer, decompressing gzip (a diff ID is the plain tar's).
fn copy_archive(path: &Path, to: &mut impl Write) -> Result<()> {
    let fail = |e: std::io::Error| Error::io(format!("read archive {}", path.display()), e);
    let mut file = File::open(path).map_err(fail)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(fail)?;
    file.rewind().map_err(fail)?;
    let copied = if n == 2 && magic == [0x1f, 0x8b] {
        std::io::copy(&mut flate2::read::GzDecoder::new(BufReader::new(file)), to)
    } else {
        std::io::copy(&mut BufReader::new(file), to)
    };
    let copied = copied.map_err(fail)?;
    if copied < 1024 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "archive {} is not a tar archive of a root filesystem ({copied} bytes)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
