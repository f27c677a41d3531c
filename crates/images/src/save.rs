//! Export images to a tar archive as `docker save` (25+) writes it: every blob under
//! `blobs/sha256/<hex>`, an OCI `index.json` and `oci-layout`, and docker's `manifest.json`
//! (`[{Config, RepoTags, Layers}]`, paths into `blobs/`), so that `docker load`, containerd and our
//! own import all read it.
//!
//! Blobs stream from the content store to the writer in chunks through a small channel: the `tar`
//! crate is blocking and runs on a blocking thread, so a multi-GiB layer never sits in memory.
//! Layers keep the compression they have in the store (docker load and import detect it).
//!
//! For an image whose target is an index, the index and the chain down to the manifest for the
//! platform are saved, not the other platforms' manifests (the store rarely has them): `index.json`
//! names the target itself, so a round trip gives back the same target digest.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};

use libcontainerd::{Client, Error, Result};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::content::{info, read_small};
use crate::grpc::Services;
use crate::media;
use crate::oci::REF_NAME_ANNOTATION;
use crate::oci::{parse, to_json, Descriptor, Index, CONTAINERD_NAME_ANNOTATION};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::resolve::{choose, resolve, unknown_type};
use crate::store::{find_name, get_record};

/// How many chunks may wait between the content store and the tar thread.
const PIPE_DEPTH: usize = 2;

/// How to save.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// The platform whose manifest is saved from a multi-platform image (default: this host's).
    pub platform: Platform,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            platform: Platform::host(),
        }
    }
}

/// One entry of docker's `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// What the archive will hold, planned before a byte is written.
#[derive(Default)]
struct Plan {
    /// Blobs in the order they are written, each once.
    blobs: Vec<Descriptor>,
    seen: HashSet<String>,
    index: Vec<Descriptor>,
    docker: Vec<DockerEntry>,
}

impl Plan {
    fn add_blob(&mut self, descriptor: &Descriptor) {
        if self.seen.insert(descriptor.digest.clone()) {
            self.blobs.push(descriptor.clone());
        }
    }
}

/// Write images `names` (stored names or references) as one docker-save archive to `writer`,
/// which is handed back when the archive is complete. Fails, naming the image, if one is missing
/// or has no manifest for the platform; then nothing has been written.
pub async fn save<W: Write + Send + 'static>(
    client: &Client,
    names: &[&str],
    writer: W,
    options: &SaveOptions,
) -> Result<W> {
    let services = Services::new(client)?;
    let plan = plan(&services, names, &options.platform).await?;
    let (sender, receiver) = mpsc::channel(PIPE_DEPTH);
    let tar_thread = tokio::task::spawn_blocking(move || write_tar(writer, receiver));
    let streamed = async {
        stream_blobs(&services, &plan, &sender).await?;
        for (path, data) in metadata(&plan)? {
            sender
                .send(Item::Small(path, data))
                .await
                .map_err(|_| stopped())?;
        }
        sender.send(Item::Finish).await.map_err(|_| stopped())
    }
    .await;
    // Without Finish the tar thread stops at the closed channel and leaves the archive unfinished.
    drop(sender);
    let written = tar_thread
        .await
        .map_err(|e| Error::internal(format!("save: the tar thread failed: {e}")))?;
    match (streamed, written) {
        (_, Err(e)) => Err(Error::io("save: write the archive", e)),
        (Err(e), _) => Err(e),
        (Ok(()), Ok(writer)) => Ok(writer),
    }
}

/// Resolve each name down to its manifest for `platform`, collecting blobs and entries.
async fn plan(services: &Services, names: &[&str], platform: &Platform) -> Result<Plan> {
    let mut plan = Plan::default();
    // Names saved per target, so that one image with several names is one docker entry.
    let mut entries: BTreeMap<String, usize> = BTreeMap::new();
    let mut saved = HashSet::new();
    for input in names {
        let name = find_name(services, input)
            .await
            .map_err(|e| e.context("save"))?;
        if !saved.insert(name.clone()) {
            continue;
        }
        let record = get_record(services, &name).await?;
        let resolved = resolve(services, &record.target, platform, &name)
            .await
            .map_err(|e| e.context("save"))?;
        let mut target = record.target.clone();
        let reference = Reference::parse(&name).ok();
        let tag = reference.as_ref().and_then(|r| r.tag().map(str::to_string));
        target
            .annotations
            .insert(CONTAINERD_NAME_ANNOTATION.to_string(), name.clone());
        if let Some(tag) = &tag {
            target
                .annotations
                .insert(REF_NAME_ANNOTATION.to_string(), tag.clone());
        }
        plan.index.push(target);
        for descriptor in
            indexes_down_to_manifest(services, &record.target, platform, &name).await?
        {
            plan.add_blob(&descriptor);
        }
        let manifest = &resolved.manifest;
        plan.add_blob(&manifest.config);
        for layer in &manifest.layers {
            // Checked now, so that a missing layer fails the save before a byte is written.
            crate::digest::check(&layer.digest, &format!("save {name}"))?;
            match info(services, &layer.digest).await? {
                Some(i) if i.size == layer.size => {}
                _ => {
                    return Err(Error::not_found(format!(
                        "save {name}: layer {} is not in the content store (or not whole)",
                        layer.digest
                    )))
                }
            }
            plan.add_blob(layer);
        }
        let repo_tag = reference
            .filter(|r| r.tag().is_some() && r.digest().is_none())
            .map(|r| r.familiar());
        let slot = *entries
            .entry(resolved.manifest_descriptor.digest.clone())
            .or_insert_with(|| {
                plan.docker.push(DockerEntry {
                    config: blob_path(&manifest.config.digest),
                    repo_tags: vec![],
                    layers: manifest
                        .layers
                        .iter()
                        .map(|l| blob_path(&l.digest))
                        .collect(),
                });
                plan.docker.len() - 1
            });
        if let Some(tag) = repo_tag {
            if !plan.docker[slot].repo_tags.contains(&tag) {
                plan.docker[slot].repo_tags.push(tag);
            }
        }
    }
    Ok(plan)
}

/// The target and, through indexes, the manifest for `platform`: every document on the way.
async fn indexes_down_to_manifest(
    services: &Services,
    target: &Descriptor,
    platform: &Platform,
    image: &str,
) -> Result<Vec<Descriptor>> {
    let mut chain = vec![];
    let mut descriptor = target.clone();
    for _ in 0..4 {
        chain.push(descriptor.clone());
        if media::is_manifest(&descriptor.media_type) {
            return Ok(chain);
        }
        if !media::is_index(&descriptor.media_type) {
            return Err(unknown_type(image, "manifest", &descriptor).context("save"));
        }
        let data = read_small(services, &format!("index of {image}"), &descriptor.digest).await?;
        let index: Index = parse(&format!("index {} of {image}", descriptor.digest), &data)?;
        descriptor = choose(&index, platform, image)?.clone();
    }
    Err(Error::invalid(format!(
        "save {image}: indexes nest too deeply to find a manifest"
    )))
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// `index.json`, `manifest.json` and `oci-layout`.
fn metadata(plan: &Plan) -> Result<Vec<(String, Vec<u8>)>> {
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: plan.index.clone(),
        annotations: BTreeMap::new(),
    };
    Ok(vec![
        ("index.json".to_string(), to_json("index.json", &index)?),
        (
            "manifest.json".to_string(),
            to_json("manifest.json", &plan.docker)?,
        ),
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
    ])
}

/// Messages to the tar thread.
enum Item {
    /// A blob of this size follows as Data chunks.
    Blob(String, u64),
    Data(Vec<u8>),
    /// A small file, whole.
    Small(String, Vec<u8>),
    Finish,
}

fn stopped() -> Error {
    Error::internal("save: the tar thread stopped")
}

async fn stream_blobs(services: &Services, plan: &Plan, sender: &mpsc::Sender<Item>) -> Result<()> {
    for blob in &plan.blobs {
        crate::digest::check(&blob.digest, "save")?;
        let context = || format!("save: read blob {} from the content store", blob.digest);
        let mut stream = crate::content::read_stream(services, &blob.digest, &context()).await?;
        let size = blob.size.max(0) as u64;
        sender
            .send(Item::Blob(blob_path(&blob.digest), size))
            .await
            .map_err(|_| stopped())?;
        let mut sent = 0u64;
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|s| libcontainerd::raw::error_from_status(context(), s))?
        {
            sent += chunk.data.len() as u64;
            if sent > size {
                break;
            }
            sender
                .send(Item::Data(chunk.data))
                .await
                .map_err(|_| stopped())?;
        }
        if sent != size {
            return Err(Error::internal(format!(
                "{}: it has {sent} bytes, its descriptor says {size}",
                context()
            )));
        }
    }
    Ok(())
}

/// The blocking side: write the tar from the messages. Returns the writer once `Finish` came.
fn write_tar<W: Write>(writer: W, mut items: mpsc::Receiver<Item>) -> std::io::Result<W> {
    let mut builder = tar::Builder::new(writer);
    let stopped = || std::io::Error::other("save stopped");
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = header(0, 0o755);
        header.set_entry_type(tar::EntryType::Directory);
        builder.append_data(&mut header, dir, std::io::empty())?;
    }
    loop {
        match items.blocking_recv().ok_or_else(stopped)? {
            Item::Blob(path, size) => {
                let mut reader = ChunkReader {
                    items: &mut items,
                    current: Vec::new(),
                    position: 0,
                    left: size,
                };
                builder.append_data(&mut header(size, 0o444), &path, &mut reader)?;
            }
            Item::Small(path, data) => {
                builder.append_data(&mut header(data.len() as u64, 0o444), &path, &data[..])?;
            }
            Item::Data(_) => return Err(std::io::Error::other("save: data outside a blob")),
            Item::Finish => return builder.into_inner(),
        }
    }
}

fn header(size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// Reads one blob's Data chunks from the channel, exactly `left` bytes.
struct ChunkReader<'a> {
    items: &'a mut mpsc::Receiver<Item>,
    current: Vec<u8>,
    position: usize,
    left: u64,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        while self.position == self.current.len() {
            match self.items.blocking_recv() {
                Some(Item::Data(data)) => {
                    self.current = data;
                    self.position = 0;
                }
                // The sender failed mid-blob: the archive is abandoned.
                _ => {
                    return Err(std::io::Error::other(
                        "save stopped in the middle of a blob",
                    ))
                }
            }
        }
        let available = self.current.len() - self.position;
        let n = buf
            .len()
            .min(available)
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        self.left -= n as u64;
        Ok(n)
    }
}
