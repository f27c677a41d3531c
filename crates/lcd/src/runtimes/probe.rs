//! What a runc-compatible runtime binary is: its `--version` line (which tells crun from runc) and
//! whether it takes runc's `--criu`. Asked by running it, and remembered under the exec root by the
//! binary's identity (device, inode, size, modification time), so that a create pays for running
//! it only once per installed binary: crun takes ~5 ms to answer `--version`, against the ~10 ms it
//! saves on a `run --rm`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

/// How long a runtime binary may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The file the answers are kept in, under the exec root.
const CACHE_FILE: &str = "runtime-probes.json";

/// What a runtime binary says of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The first line of `--version` ("runc version 1.1.5", "crun version 1.8.1").
    pub version: String,
    /// Whether it takes runc's `--criu PATH` (containerd 1.6's shim passes it when the options
    /// name a criu): runc does; crun refuses it ("unrecognized option"), so it would fail every
    /// command. `false` when lcd has no criu to give it.
    pub takes_criu: bool,
}

impl Probe {
    /// Whether it is crun.
    pub fn is_crun(&self) -> bool {
        self.version.starts_with("crun ")
    }

    /// Ask `binary` (an absolute path), or take the answer kept under `exec_root` if the binary
    /// and `criu` are the same as when it was asked. Fails if it does not answer `--version`.
    pub async fn of(binary: &Path, criu: Option<&Path>, exec_root: &Path) -> Result<Probe> {
        let stamp = Stamp::of(binary, criu);
        let cache = exec_root.join(CACHE_FILE);
        let mut kept = read_cache(&cache);
        let key = binary.to_string_lossy().into_owned();
        if let (Some(stamp), Some(entry)) = (&stamp, kept.get(&key)) {
            if &entry.stamp == stamp {
                return Ok(entry.probe.clone());
            }
        }
        let probe = ask(binary, criu).await?;
        if let Some(stamp) = stamp {
            kept.insert(
                key,
                Entry {
                    stamp,
                    probe: probe.clone(),
                },
            );
            if let Err(e) = write_cache(exec_root, &cache, &kept) {
                tracing::debug!(error = %e, "keeping the runtime probe");
            }
        }
        Ok(probe)
    }
}

/// Run the binary: `--version`, then `--criu CRIU --version` unless its version says.
async fn ask(binary: &Path, criu: Option<&Path>) -> Result<Probe> {
    let (ok, out, err) = run_bounded(binary, &["--version"]).await?;
    if !ok {
        bail!(
            "`{} --version` failed: {}",
            binary.display(),
            err.lines().next().unwrap_or("no output")
        );
    }
    let version = out.lines().next().unwrap_or_default().trim().to_string();
    let takes_criu = match criu {
        None => false,
        Some(_) if version.starts_with("runc ") => true,
        Some(_) if version.starts_with("crun ") => false,
        Some(criu) => {
            let criu = criu.to_string_lossy();
            matches!(
                run_bounded(binary, &["--criu", &criu, "--version"]).await,
                Ok((true, _, _))
            )
        }
    };
    Ok(Probe {
        version,
        takes_criu,
    })
}

/// Run `binary args` with no stdin; (success, stdout, stderr). Killed after [`TIMEOUT`].
async fn run_bounded(binary: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    let mut busy = 0;
    let out = loop {
        let child = tokio::process::Command::new(binary)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(TIMEOUT, child)
            .await
            .with_context(|| format!("`{}` did not answer in {TIMEOUT:?}", binary.display()))?
        {
            // A binary just written (an upgrade under way) is "busy" while any process still
            // holds it open for writing, even a child of another thread between its fork and exec.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && busy < 50 => {
                busy += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            done => break done.with_context(|| format!("run {}", binary.display()))?,
        }
    };
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Which file a binary is: replaced or upgraded, it is asked again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    criu: Option<PathBuf>,
}

impl Stamp {
    fn of(binary: &Path, criu: Option<&Path>) -> Option<Stamp> {
        let meta = std::fs::metadata(binary).ok()?;
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            criu: criu.map(Path::to_path_buf),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    probe: Probe,
}

fn read_cache(file: &Path) -> BTreeMap<String, Entry> {
    std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Replace the cache file: a new file (never one that exists, so never through a symlink) renamed
/// over it. Only into an exec root that exists: lcd checks it is private before making it.
fn write_cache(exec_root: &Path, file: &Path, kept: &BTreeMap<String, Entry>) -> Result<()> {
    if !exec_root.is_dir() {
        return Ok(());
    }
    let tmp = exec_root.join(format!(".{CACHE_FILE}.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&serde_json::to_vec(kept)?))
        .and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("write {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[tokio::test]
    async fn answers_are_kept_until_the_binary_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let count = dir.path().join("asked");
        let text = |version: &str| {
            format!(
                "#!/bin/sh\necho x >> '{}'\n[ \"$1\" = --criu ] && exit 64\necho '{version}'\n",
                count.display()
            )
        };
        let binary = script(dir.path(), "rt", &text("myrt version 1"));
        let criu = Path::new("/usr/sbin/criu");
        let asked = || {
            std::fs::read_to_string(&count)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let first = Probe::of(&binary, Some(criu), dir.path())
            .await
            .expect("probe");
        assert_eq!(
            first,
            Probe {
                version: "myrt version 1".into(),
                takes_criu: false
            }
        );
        assert_eq!(asked(), 2, "--version, then --criu");
        let again = Probe::of(&binary, Some(criu), dir.path())
            .await
            .expect("probe");
        assert_eq!(again, first);
        assert_eq!(asked(), 2, "the kept answer");
        // Another criu is another question.
        Probe::of(&binary, None, dir.path()).await.expect("probe");
        assert_eq!(asked(), 3);
        // Replaced (another inode): asked again.
        std::fs::remove_file(&binary).expect("rm");
        let binary = script(dir.path(), "rt", &text("myrt version 2"));
        let upgraded = Probe::of(&binary, None, dir.path()).await.expect("probe");
        assert_eq!(upgraded.version, "myrt version 2");
        assert_eq!(asked(), 4);
    }

    #[tokio::test]
    async fn runc_and_crun_are_known_by_their_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let criu = Path::new("/usr/sbin/criu");
        let runc = script(dir.path(), "a", "#!/bin/sh\necho 'runc version 1.1.5'\n");
        assert!(
            Probe::of(&runc, Some(criu), dir.path())
                .await
                .expect("runc")
                .takes_criu
        );
        let crun = script(dir.path(), "b", "#!/bin/sh\necho 'crun version 1.8.1'\n");
        let crun = Probe::of(&crun, Some(criu), dir.path())
            .await
            .expect("crun");
        assert!(crun.is_crun() && !crun.takes_criu);
        let broken = script(
            dir.path(),
            "c",
            "#!/bin/sh\necho 'no such thing' >&2\nexit 2\n",
        );
        let e = Probe::of(&broken, None, dir.path()).await.unwrap_err();
        assert!(format!("{e:#}").contains("no such thing"), "{e:#}");
    }
}
