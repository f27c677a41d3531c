//! Containers that Kubernetes made through containerd's CRI plugin (namespace `k8s.io` on a node):
//! how lcd recognises them, names them, reads their logs, and why it refuses to change them.
//!
//! CRI marks every container it makes with the label `io.cri-containerd.kind` (`sandbox` for a
//! pod's pause container, `container` for the others) and copies the kubelet's labels onto it
//! (`io.kubernetes.pod.name`, `.pod.namespace`, `.container.name`). Its own record of a container,
//! including the log file the kubelet asked for, is a JSON document in the container extension
//! `io.cri-containerd.container.metadata`. A CRI container's output never reaches lcd's logger: the
//! CRI plugin reads the container's FIFOs itself and writes the log file in the CRI format, which
//! is the format of lcd's own logs too (`crate::log_format`), so `lcd logs` reads it as it reads
//! lcd's; only the file differs ([`log_path`]). CRI deletes a container's task when it exits and keeps the exit in a file of its own
//! (`status`).
//!
//! The kubelet owns these containers: it restarts what lcd stops or kills, recreates what lcd
//! removes, and its view goes stale when lcd pauses or updates them. So those commands refuse a CRI
//! container unless `--force-kubernetes` is given ([`refuse_change`]).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use libcontainerd::raw::protos::services::v1::containers_client::ContainersClient;
use libcontainerd::raw::protos::services::v1::GetContainerRequest;
use libcontainerd::{Client, Container};
use libcontainerd_images::store::ImageSummary;
use libcontainerd_images::Platform;
use serde_json::json;

use crate::state;

mod status;

pub use status::recorded_exits;

/// The namespace the CRI plugin keeps pods and images in.
pub const K8S_NAMESPACE: &str = "k8s.io";
/// CRI's mark on its containers: `sandbox` or `container`.
pub const LABEL_KIND: &str = "io.cri-containerd.kind";
/// The kubelet's labels, copied onto the containerd container by CRI.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// CRI's record of a container (JSON in a containerd container extension).
const CONTAINER_METADATA: &str = "io.cri-containerd.container.metadata";

/// What CRI says about one of its containers, from its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kube {
    /// `sandbox` (the pod's pause container) or `container`.
    pub kind: String,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    /// The container's name in the pod (none for a sandbox).
    pub container: Option<String>,
}

impl Kube {
    /// Whether these labels are a CRI container's; None for lcd's (and anyone else's).
    pub fn of(labels: &HashMap<String, String>) -> Option<Kube> {
        let kind = labels.get(LABEL_KIND)?.clone();
        Some(Kube {
            kind,
            pod: labels.get(LABEL_POD_NAME).cloned(),
            namespace: labels.get(LABEL_POD_NAMESPACE).cloned(),
            container: labels.get(LABEL_CONTAINER_NAME).cloned(),
        })
    }

    /// nerdctl's name for it: `k8s://NAMESPACE/POD/CONTAINER`, `k8s://NAMESPACE/POD` for a sandbox.
    pub fn name(&self) -> String {
        let mut name = format!(
            "k8s://{}/{}",
            self.namespace.as_deref().unwrap_or("?"),
            self.pod.as_deref().unwrap_or("?")
        );
        if self.kind != "sandbox" {
            name.push('/');
            name.push_str(self.container.as_deref().unwrap_or("?"));
        }
        name
    }

    pub fn is_sandbox(&self) -> bool {
        self.kind == "sandbox"
    }

    /// For `ps --format json` and `inspect`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "Kind": self.kind,
            "Pod": self.pod,
            "PodNamespace": self.namespace,
            "Container": self.container,
            "Name": self.name(),
        })
    }
}

/// The NAMES column of `ps`: the Kubernetes name, empty for other containers.
pub fn name_of(labels: &HashMap<String, String>) -> String {
    Kube::of(labels).map(|k| k.name()).unwrap_or_default()
}

/// CRI names every image it knows by its ID too (`sha256:<config digest>`, the name the kubelet
/// uses): in a list, that alias only repeats an image that has a name, so it goes; an image known
/// only by it is shown as docker shows an untagged image.
pub fn hide_id_aliases(rows: &mut Vec<ImageSummary>) {
    let is_alias = |name: &str| {
        name.strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let named: HashSet<String> = rows
        .iter()
        .filter(|r| !is_alias(&r.name))
        .map(|r| r.digest.clone())
        .collect();
    rows.retain(|r| !(is_alias(&r.name) && named.contains(&r.digest)));
    for row in rows.iter_mut().filter(|r| is_alias(&r.name)) {
        row.repository = "<none>".into();
        row.tag = "<none>".into();
    }
}

/// Unpack images just stored in `k8s.io` (by `lcd load`) into the snapshotter pods use, as a pull
/// through CRI would, so that the first pod starts without unpacking; elsewhere images stay packed
/// until a container needs them, as before.
pub async fn unpack_for_pods(client: &Client, namespace: &str, names: &[String]) -> Result<()> {
    if namespace != K8S_NAMESPACE {
        return Ok(());
    }
    let snapshotter = libcontainerd_images::snapshotter::choose(client).await?;
    for name in names {
        libcontainerd_images::unpack::unpack(client, name, &snapshotter, &Platform::host())
            .await
            .with_context(|| format!("unpack {name} for Kubernetes' pods"))?;
    }
    Ok(())
}

/// Refuse `action` (a verb: "stop", "remove"...) on a container Kubernetes manages, unless
/// `forced`: one line saying who owns it and how to go on.
pub fn refuse_change(container: &Container, action: &str, forced: bool) -> Result<()> {
    let Some(kube) = Kube::of(container.labels()) else {
        return Ok(());
    };
    if forced {
        return Ok(());
    }
    let what = if kube.is_sandbox() {
        "the sandbox of Kubernetes pod"
    } else {
        "Kubernetes container"
    };
    bail!(
        "refusing to {action} container {}: it is {what} {} and the kubelet would undo it (use kubectl, or --force-kubernetes)",
        container.id(),
        kube.name().trim_start_matches("k8s://")
    )
}

/// Removes, when dropped, the directory lcd made for an exec's FIFOs in a CRI container (lcd
/// never removes a Kubernetes container, so nothing else would): only if it is empty, so another
/// exec's FIFOs keep it.
pub struct ExecDirCleanup(Option<PathBuf>);

impl ExecDirCleanup {
    pub fn new(container: &Container) -> ExecDirCleanup {
        ExecDirCleanup(Kube::of(container.labels()).map(|_| container.bundle_dir().to_path_buf()))
    }
}

impl Drop for ExecDirCleanup {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Whether the container's task runs, for `logs -f`. CRI deletes a task as soon as it exits, and
/// the kubelet may remove the container: gone between two looks is not running, not an error.
pub async fn still_running(container: &Container) -> Result<bool> {
    match state::task_with_status(container).await {
        Ok(task) => Ok(state::running(container.id(), task).is_ok()),
        Err(e)
            if e.downcast_ref::<libcontainerd::Error>()
                .is_some_and(|e| e.kind() == libcontainerd::ErrorKind::NotFound) =>
        {
            Ok(false)
        }
        // containerd restarting: the container and its logger live on, so does the follower.
        Err(e)
            if e.downcast_ref::<libcontainerd::Error>()
                .is_some_and(|e| e.kind() == libcontainerd::ErrorKind::Unavailable) =>
        {
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// The CRI log file of a CRI container; None for a container CRI did not make. A sandbox has no
/// log, and a container without a recorded log file is an error too: lcd's own log is not it.
pub async fn log_path(client: &Client, container: &Container) -> Result<Option<PathBuf>> {
    let Some(kube) = Kube::of(container.labels()) else {
        return Ok(None);
    };
    if kube.is_sandbox() {
        bail!(
            "container {} is the sandbox of Kubernetes pod {}: a sandbox has no log, its containers do",
            container.id(),
            kube.name().trim_start_matches("k8s://")
        );
    }
    let request = libcontainerd::raw::request(
        client,
        GetContainerRequest {
            id: container.id().to_string(),
        },
    );
    let record = ContainersClient::new(libcontainerd::raw::channel(client))
        .get(request)
        .await
        .map_err(|s| libcontainerd::raw::error_from_status("get container", s))?
        .into_inner()
        .container;
    let metadata = record
        .as_ref()
        .and_then(|c| c.extensions.get(CONTAINER_METADATA))
        .map(|any| any.value.as_slice());
    match metadata.and_then(log_path_in) {
        Some(path) => Ok(Some(path)),
        None => bail!(
            "container {} is Kubernetes container {}, but CRI recorded no log file for it",
            container.id(),
            kube.name().trim_start_matches("k8s://")
        ),
    }
}

/// `LogPath` of CRI's container metadata: `{"Version":"v1","Metadata":{...,"LogPath":"..."}}`.
fn log_path_in(metadata: &[u8]) -> Option<PathBuf> {
    let value: serde_json::Value = serde_json::from_slice(metadata).ok()?;
    let path = value.get("Metadata")?.get("LogPath")?.as_str()?;
    (!path.is_empty()).then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_kubelets_labels() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(Kube::of(&labels(&[("io.lcd.rootfs", "/x")])), None);
        let app = labels(&[
            (LABEL_KIND, "container"),
            (LABEL_POD_NAME, "web"),
            (LABEL_POD_NAMESPACE, "default"),
            (LABEL_CONTAINER_NAME, "app"),
        ]);
        assert_eq!(name_of(&app), "k8s://default/web/app");
        let sandbox = labels(&[(LABEL_KIND, "sandbox"), (LABEL_POD_NAME, "web")]);
        assert_eq!(name_of(&sandbox), "k8s://?/web");
    }

    #[test]
    fn the_log_path_is_in_cris_metadata() {
        let metadata =
            br#"{"Version":"v1","Metadata":{"ID":"abc","LogPath":"/var/log/pods/x/app/0.log"}}"#;
        assert_eq!(
            log_path_in(metadata),
            Some(PathBuf::from("/var/log/pods/x/app/0.log"))
        );
        assert_eq!(
            log_path_in(br#"{"Version":"v1","Metadata":{"LogPath":""}}"#),
            None
        );
        assert_eq!(log_path_in(b"not json"), None);
    }
}
