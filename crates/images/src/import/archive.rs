//! Stream a tar archive into the content store, one entry at a time.
//!
//! tar entries can only be read in order, and a docker-save archive names its layers in
//! `manifest.json`, usually its last entry. So every regular file is written to the content store as
//! it streams past (containerd hashes it on the way; never held in memory whole), and the archive's
//! metadata files are kept in memory for the importer to read at the end. A blob's commit (a sync
//! and a database transaction in containerd) goes on while the next file streams. The `tar` crate is blocking: it runs on a
//! blocking thread and hands chunks to the async side through a small channel.

use std::collections::HashMap;
use std::io::Read;

use libcontainerd::{Error, Result};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::content::{BlobWriter, Open, Written, CHUNK, HEAD_LEN, MAX_METADATA};
use crate::grpc::Services;

/// Files read into memory instead of the content store.
const METADATA: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

/// How many chunks may wait between the tar thread and the content store.
const PIPE_DEPTH: usize = 4;

/// A file of the archive now in the content store.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub digest: String,
    pub size: u64,
    /// The first bytes, to tell a plain tar layer from a compressed one.
    pub head: Vec<u8>,
}

/// What an archive held, by path inside it.
#[derive(Debug, Default)]
pub(crate) struct Archive {
    pub files: HashMap<String, StoredFile>,
    pub metadata: HashMap<String, Vec<u8>>,
    /// Links (docker save links identical layers): path to the path it points at.
    pub links: HashMap<String, String>,
}

impl Archive {
    /// The stored file at `path`, following links.
    pub(crate) fn file(&self, path: &str) -> Option<&StoredFile> {
        let mut path = clean(path);
        for _ in 0..16 {
            match self.links.get(&path) {
                Some(target) => path = target.clone(),
                None => break,
            }
        }
        self.files.get(&path)
    }
}

enum Item {
    File { path: String, size: u64 },
    Link { path: String, target: String },
    Data(Vec<u8>),
    EndOfFile,
    Failed(std::io::Error),
    Finished,
}

/// Blob commits under way, each with the path of its file: containerd syncs and records one blob
/// while the next streams in.
type Commits = JoinSet<(String, Result<Written>)>;

/// Read the archive from `reader`, storing its files (blobs) under the services' lease.
pub(crate) async fn store<R: Read + Send + 'static>(
    services: &Services,
    reader: R,
) -> Result<Archive> {
    let mut commits = Commits::new();
    let stored = async {
        let mut archive = read(services, reader, &mut commits).await?;
        while let Some(joined) = commits.join_next().await {
            let (path, written) = joined
                .map_err(|e| Error::internal(format!("import: a blob's commit failed: {e}")))?;
            let written = written?;
            if let Some(file) = archive.files.get_mut(&path) {
                file.digest = written.digest;
            }
        }
        Ok(archive)
    }
    .await;
    if stored.is_err() {
        // Gone before the caller deletes the lease.
        commits.shutdown().await;
    }
    stored
}

async fn read<R: Read + Send + 'static>(
    services: &Services,
    reader: R,
    commits: &mut Commits,
) -> Result<Archive> {
    let (sender, mut items) = mpsc::channel(PIPE_DEPTH);
    // If we stop early the receiver goes away and the thread's next send fails: it stops too.
    tokio::task::spawn_blocking(move || {
        if let Err(e) = read_entries(reader, &sender) {
            let _ = sender.blocking_send(Item::Failed(e));
        }
    });
    let mut archive = Archive::default();
    let mut entries = 0usize;
    loop {
        match next(&mut items).await? {
            Item::Finished => break,
            Item::Link { path, target } => {
                archive.links.insert(path, target);
            }
            Item::File { path, size } => {
                entries += 1;
                if METADATA.contains(&path.as_str()) {
                    let data = collect(&mut items, &path, size).await?;
                    archive.metadata.insert(path, data);
                } else if is_legacy_metadata(&path) {
                    drain(&mut items).await?;
                } else {
                    let file = store_file(services, &mut items, &path, size, commits).await?;
                    archive.files.insert(path, file);
                }
            }
            Item::Data(_) | Item::EndOfFile => {
                return Err(Error::internal("read archive: data outside an entry"));
            }
            Item::Failed(e) => return Err(read_error(e)),
        }
    }
    if entries == 0 {
        return Err(Error::invalid(
            "read archive: it has no files; give a tar made by `docker save` or an OCI image layout",
        ));
    }
    Ok(archive)
}

async fn next(items: &mut mpsc::Receiver<Item>) -> Result<Item> {
    items
        .recv()
        .await
        .ok_or_else(|| Error::internal("read archive: the reader thread stopped"))
}

fn read_error(e: std::io::Error) -> Error {
    Error::io("read archive", e).context("import")
}

/// Data of the current entry until its end.
async fn chunk(items: &mut mpsc::Receiver<Item>) -> Result<Option<Vec<u8>>> {
    match next(items).await? {
        Item::Data(data) => Ok(Some(data)),
        Item::EndOfFile => Ok(None),
        Item::Failed(e) => Err(read_error(e)),
        _ => Err(Error::internal("read archive: entry ended without its end")),
    }
}

async fn drain(items: &mut mpsc::Receiver<Item>) -> Result<()> {
    while chunk(items).await?.is_some() {}
    Ok(())
}

async fn collect(items: &mut mpsc::Receiver<Item>, path: &str, size: u64) -> Result<Vec<u8>> {
    if size > MAX_METADATA {
        return Err(Error::invalid(format!(
            "import: {path} in the archive is {size} bytes, too large for image metadata"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    while let Some(chunk) = chunk(items).await? {
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// The digest a file's path promises: `blobs/<algorithm>/<hex>` in an OCI layout.
fn expected_digest(path: &str) -> Result<Option<String>> {
    let Some(rest) = path.strip_prefix("blobs/") else {
        return Ok(None);
    };
    let Some((algorithm, hex)) = rest.split_once('/') else {
        return Ok(None);
    };
    let digest = format!("{algorithm}:{hex}");
    crate::digest::check(&digest, &format!("import: blob {path} in the archive"))?;
    Ok(Some(digest))
}

/// Stream the current entry into the content store. Its commit is left running in `commits`,
/// which fills in the digest of the file returned.
async fn store_file(
    services: &Services,
    items: &mut mpsc::Receiver<Item>,
    path: &str,
    size: u64,
    commits: &mut Commits,
) -> Result<StoredFile> {
    let expected = expected_digest(path)?;
    let what = format!("{path} of the archive");
    let mut head = Vec::new();
    let keep_head = |head: &mut Vec<u8>, data: &[u8]| {
        let n = (HEAD_LEN - head.len().min(HEAD_LEN)).min(data.len());
        head.extend_from_slice(&data[..n]);
    };
    let opened = BlobWriter::open(services, &what, expected.as_deref(), Some(size))
        .await
        .map_err(|e| e.context("import"))?;
    match opened {
        Open::Present => {
            // Already stored (a re-import): read past it, keeping only its first bytes.
            while let Some(data) = chunk(items).await? {
                keep_head(&mut head, &data);
            }
            Ok(StoredFile {
                digest: expected.unwrap_or_default(),
                size,
                head,
            })
        }
        Open::Writer(mut writer) => {
            let streamed = async {
                while let Some(data) = chunk(items).await? {
                    keep_head(&mut head, &data);
                    writer.write(data).await.map_err(|e| e.context("import"))?;
                }
                Ok::<_, Error>(())
            }
            .await;
            if let Err(e) = streamed {
                writer.abort().await;
                return Err(e);
            }
            let written = writer.offset();
            let path = path.to_string();
            commits.spawn(async move {
                let committed = writer.commit(HashMap::new()).await;
                (path, committed.map_err(|e| e.context("import")))
            });
            Ok(StoredFile {
                // Filled in by `store` once the commit ends.
                digest: String::new(),
                size: written,
                head,
            })
        }
    }
}

/// Old docker-save files we do not need: `<layer id>/json` and `<layer id>/VERSION`.
fn is_legacy_metadata(path: &str) -> bool {
    match path.split_once('/') {
        Some((_, name)) => !name.contains('/') && (name == "json" || name == "VERSION"),
        None => false,
    }
}

/// `./a//b/` -> `a/b`.
pub(crate) fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The blocking side: walk the entries and send their data in chunks.
fn read_entries<R: Read>(reader: R, sender: &mpsc::Sender<Item>) -> std::io::Result<()> {
    let send = |item: Item| {
        sender
            .blocking_send(item)
            .map_err(|_| std::io::Error::other("import stopped"))
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = clean(&entry.path()?.to_string_lossy());
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let Some(target) = entry.link_name()? else {
                continue;
            };
            let target = target.to_string_lossy();
            // A symlink is relative to its directory; a hard link names an archive path.
            let target = match (kind.is_symlink(), path.rsplit_once('/')) {
                (true, Some((dir, _))) if !target.starts_with('/') => {
                    clean(&format!("{dir}/{target}"))
                }
                _ => clean(&target),
            };
            send(Item::Link { path, target })?;
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        send(Item::File {
            path: path.clone(),
            size,
        })?;
        let mut read = 0u64;
        loop {
            let mut buffer = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match entry.read(&mut buffer[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            if filled == 0 {
                break;
            }
            buffer.truncate(filled);
            read += filled as u64;
            send(Item::Data(buffer))?;
        }
        if read != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the archive is truncated: {path} has {read} of its {size} bytes"),
            ));
        }
        send(Item::EndOfFile)?;
    }
    send(Item::Finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(clean("./blobs//sha256/ab/"), "blobs/sha256/ab");
        assert_eq!(clean("a/../b"), "b");
        assert!(is_legacy_metadata("abc/json"));
        assert!(!is_legacy_metadata("abc/layer.tar"));
        assert!(!is_legacy_metadata("manifest.json"));
        assert_eq!(expected_digest("x/layer.tar").unwrap(), None);
        assert!(expected_digest("blobs/sha256/zz").is_err());
        let hex = "a".repeat(64);
        assert_eq!(
            expected_digest(&format!("blobs/sha256/{hex}")).unwrap(),
            Some(format!("sha256:{hex}"))
        );
    }
}
