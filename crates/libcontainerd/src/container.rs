//! A containerd container: its record, its bundle directory and the creation of its task.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use containerd_client::services::v1::{
    CreateContainerRequest, DeleteContainerRequest, DeleteTaskRequest, GetContainerRequest,
    ListContainersRequest, UpdateContainerRequest,
};
use oci_spec::runtime::Spec;

use crate::client::{no_such_container, Client};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::io::CloseTarget;
use crate::runtime::Runtime;
pub use crate::snapshot::Snapshot;
use crate::snapshot::{check_snapshot_rootfs, remove_snapshot};
use crate::time::from_timestamp;

/// The label that records a container's bundle directory, so that it survives a restart of the caller.
pub const BUNDLE_LABEL: &str = "io.libcontainerd.bundle";

/// How long after deleting its task a container's delete trusts that no task is left.
const TASK_DELETE_FRESH: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A container known to containerd.
#[derive(Clone)]
pub struct Container {
    client: Client,
    id: Id,
    bundle: PathBuf,
    labels: Arc<HashMap<String, String>>,
    spec: Arc<Spec>,
    snapshot: Option<Arc<Snapshot>>,
    /// When this handle (or a clone, or one of its tasks) last deleted the container's task; cleared
    /// when it creates one. A `delete` right after skips asking containerd whether a task is left:
    /// two RPCs of the five a `run --rm` needs once its task has exited.
    task_deleted: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.id)
            .field("bundle", &self.bundle)
            .finish()
    }
}

/// What `list_containers` reports of each container.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    /// The container's id.
    pub id: Id,
    /// Its labels, including [`BUNDLE_LABEL`].
    pub labels: HashMap<String, String>,
    /// When containerd created it.
    pub created_at: Option<SystemTime>,
    /// Its runtime.
    pub runtime: Runtime,
    /// Its OCI spec.
    pub spec: Option<Spec>,
    /// Its root filesystem's snapshot, for a container made from an image.
    pub snapshot: Option<Snapshot>,
}

impl ContainerInfo {
    pub(crate) fn from_record(record: containerd_client::services::v1::Container) -> Result<Self> {
        let id = Id::new(record.id.clone())
            .map_err(|e| e.context("containerd returned a container with an invalid id"))?;
        let spec = record
            .spec
            .as_ref()
            .map(crate::spec::from_any)
            .transpose()?;
        let snapshot = (!record.snapshot_key.is_empty()).then(|| Snapshot {
            snapshotter: record.snapshotter.clone(),
            key: record.snapshot_key.clone(),
            image: (!record.image.is_empty()).then(|| record.image.clone()),
        });
        Ok(ContainerInfo {
            id,
            snapshot,
            runtime: Runtime::from_proto(record.runtime.as_ref()),
            created_at: record.created_at.as_ref().and_then(from_timestamp),
            labels: record.labels,
            spec,
        })
    }
}

impl Container {
    pub(crate) async fn create(
        client: &Client,
        id: &Id,
        spec: &Spec,
        runtime: &Runtime,
        labels: &HashMap<String, String>,
        snapshot: Option<&Snapshot>,
    ) -> Result<Container> {
        let spec = &crate::spec::for_container(spec, client.namespace(), id)
            .and_then(|spec| match snapshot {
                Some(snapshot) => check_snapshot_rootfs(&spec, snapshot).map(|()| spec),
                None => check_rootfs(&spec).map(|()| spec),
            })
            .map_err(|e| e.context(format!("create container {id}")))?;
        let bundle = client.default_bundle_dir(id);
        let mut labels = labels.clone();
        labels.insert(
            BUNDLE_LABEL.to_string(),
            bundle.to_string_lossy().into_owned(),
        );
        let record = containerd_client::services::v1::Container {
            id: id.to_string(),
            labels: labels.clone(),
            runtime: Some(runtime.to_proto()),
            spec: Some(crate::spec::to_any(spec)?),
            image: snapshot.and_then(|s| s.image.clone()).unwrap_or_default(),
            snapshotter: snapshot.map(|s| s.snapshotter.clone()).unwrap_or_default(),
            snapshot_key: snapshot.map(|s| s.key.clone()).unwrap_or_default(),
            ..Default::default()
        };
        let message = CreateContainerRequest {
            container: Some(record),
        };
        // tonic fails an oversized request by resetting the stream, which reads as a lost
        // connection: check the size first.
        crate::client::check_message_size(&message, || format!("create container {id}"))?;
        // The bundle dir comes first: a record must never exist without it, also when containerd
        // dies (or the caller gives up) after storing the record but before answering.
        let made_dir = make_bundle_dir(&bundle)?;
        let request = client.request(message);
        let (rpc_client, rpc_id, rpc_bundle) = (client.clone(), id.clone(), bundle.clone());
        crate::cancel::detached("create container", async move {
            let result = rpc_client.containers_service().create(request).await;
            let Err(status) = result else {
                return Ok(());
            };
            let error = if status.code() == tonic::Code::AlreadyExists {
                Error::new(
                    ErrorKind::AlreadyExists,
                    format!("create container {rpc_id}: the id is already in use"),
                )
                .with_source(status)
            } else {
                Error::from_status(format!("create container {rpc_id}"), status)
            };
            // Remove the dir only if this call made it, and only if containerd surely has no record
            // for the id: not on a conflict (the dir belongs to the container holding the id, maybe
            // made by a concurrent create), and not when the connection broke mid-call (the record
            // may exist, and a record without its bundle dir is worse than an empty dir, which a
            // retry with the same id reuses).
            if made_dir && !error.outcome_unknown() && error.kind() != ErrorKind::AlreadyExists {
                let _ = std::fs::remove_dir(&rpc_bundle);
            }
            Err(error)
        })
        .await?;
        Ok(Container {
            client: client.clone(),
            id: id.clone(),
            bundle,
            labels: Arc::new(labels),
            spec: Arc::new(spec.clone()),
            snapshot: snapshot.cloned().map(Arc::new),
            task_deleted: Arc::default(),
        })
    }

    pub(crate) fn from_record(
        client: &Client,
        record: containerd_client::services::v1::Container,
    ) -> Result<Container> {
        let info = ContainerInfo::from_record(record)?;
        let bundle = info
            .labels
            .get(BUNDLE_LABEL)
            .map(PathBuf::from)
            .unwrap_or_else(|| client.default_bundle_dir(&info.id));
        let spec = info.spec.ok_or_else(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                format!("container {} has no OCI spec", info.id),
            )
        })?;
        Ok(Container {
            client: client.clone(),
            id: info.id,
            bundle,
            labels: Arc::new(info.labels),
            spec: Arc::new(spec),
            snapshot: info.snapshot.map(Arc::new),
            task_deleted: Arc::default(),
        })
    }

    /// The container's id.
    pub fn id(&self) -> &Id {
        &self.id
    }

    /// Its bundle directory (FIFOs and per-container files).
    pub fn bundle_dir(&self) -> &Path {
        &self.bundle
    }

    /// Its labels.
    pub fn labels(&self) -> &HashMap<String, String> {
        &self.labels
    }

    /// Its OCI runtime spec.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The command its init process runs (`args[0]`), for naming it in errors.
    pub(crate) fn spec_command(&self) -> Option<&str> {
        let process = self.spec.process().as_ref()?;
        process.args().as_ref()?.first().map(String::as_str)
    }

    /// Its root filesystem's snapshot, for a container made from an image.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_deref()
    }

    /// The client it belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    }

    /// Remove the container: its containerd record and its bundle directory. A container that still
    /// has a task is [`ErrorKind::FailedPrecondition`]; one that is gone already is
    /// [`ErrorKind::NotFound`] (a stale bundle dir is removed all the same). Runs to completion if
    /// the caller stops waiting: record and dir go together.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %self.id))]
    pub async fn delete(&self) -> Result<()> {
        let this = self.clone();
        crate::cancel::detached("delete container", async move { this.delete_now().await }).await
    }

    async fn delete_now(&self) -> Result<()> {
        // Just deleted the task ourselves: nothing is left of it (a ghost comes only from a create
        // that containerd lost). containerd deletes a record whatever its task, so a task another
        // client created since would be orphaned: hence "just" (containerd's Go client has the same
        // gap, one round trip between its check and the delete).
        let just_deleted =
            lock(&self.task_deleted).is_some_and(|at| at.elapsed() < TASK_DELETE_FRESH);
        if !just_deleted {
            self.check_no_task().await?;
        }
        let deleted = self.delete_record().await;
        match &deleted {
            Ok(()) => {}
            // Gone already (e.g. a retry after containerd died during an earlier delete): the dir
            // is stale, remove it too, and say the container was not there.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(_) => return deleted,
        }
        // After the record, which protected the snapshot from containerd's collector.
        if let Some(snapshot) = &self.snapshot {
            remove_snapshot(&self.client, snapshot)
                .await
                .map_err(|e| e.context(format!("delete container {}", self.id)))?;
        }
        match std::fs::remove_dir_all(&self.bundle) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("remove bundle dir {}", self.bundle.display()),
                    e,
                ))
            }
        }
        deleted
    }

    /// Refuse while the container has a task; remove a ghost task (see `remove_ghost_task`).
    async fn check_no_task(&self) -> Result<()> {
        match self.client.get_process(&self.id, "").await {
            Ok(process) => {
                let status = crate::status::TaskStatus::from_proto(process.status);
                Err(Error::new(
                    ErrorKind::FailedPrecondition,
                    format!(
                        "cannot remove container {}: its task is {status}; stop and delete it first",
                        self.id
                    ),
                ))
            }
            // No task; but containerd may still hold the shim of a task that was never created.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.remove_ghost_task().await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Called before creating a task: a delete must ask containerd again.
    pub(crate) fn task_will_be_created(&self) {
        *lock(&self.task_deleted) = None;
    }

    /// Called by the container's task once containerd has deleted it.
    pub(crate) fn task_was_deleted(&self) {
        *lock(&self.task_deleted) = Some(Instant::now());
    }

    /// Set (or, with an empty value, remove) labels on the container's record, leaving the others.
    pub async fn set_labels(&mut self, changes: &HashMap<String, String>) -> Result<()> {
        let mut labels = (*self.labels).clone();
        for (key, value) in changes {
            if value.is_empty() {
                labels.remove(key);
            } else {
                labels.insert(key.clone(), value.clone());
            }
        }
        // Only the named labels are written: a concurrent update of other labels is not undone.
        let paths = changes.keys().map(|k| format!("labels.{k}")).collect();
        let record = containerd_client::services::v1::Container {
            id: self.id.to_string(),
            labels: changes
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Default::default()
        };
        self.client
            .containers_service()
            .update(self.client.request(UpdateContainerRequest {
                container: Some(record),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(|s| no_such_container(&self.id, s))?;
        self.labels = Arc::new(labels);
        Ok(())
    }

    /// Replace the resource limits in the container's stored spec, so that its next task starts
    /// with them (as docker keeps `docker update`'s limits for the next start); a running task's
    /// are changed with [`Task::update_resources`](crate::Task::update_resources). Only the spec
    /// is written: a concurrent change of the labels is not undone.
    pub async fn set_resources(
        &mut self,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<()> {
        let mut spec = (*self.spec).clone();
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_resources(Some(resources.clone()));
        spec.set_linux(Some(linux));
        let record = containerd_client::services::v1::Container {
            id: self.id.to_string(),
            spec: Some(crate::spec::to_any(&spec)?),
            ..Default::default()
        };
        self.client
            .containers_service()
            .update(self.client.request(UpdateContainerRequest {
                container: Some(record),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["spec".to_string()],
                }),
            }))
            .await
            .map_err(|s| no_such_container(&self.id, s))?;
        self.spec = Arc::new(spec);
        Ok(())
    }

    /// Remove a "ghost" task: when containerd dies during `Tasks.Create`, the shim abandons the
    /// create, and the restarted containerd loads that shim as the container's task although it has
    /// no container. `Tasks.Get` then says not found, `Tasks.Create` says already exists, and the shim
    /// process lives on; only a `Tasks.Delete` (which answers not found) removes it. Call only when
    /// `Tasks.Get` said not found. True if there is no task now.
    pub(crate) async fn remove_ghost_task(&self) -> bool {
        let deleted = self
            .client
            .tasks()
            .delete(self.client.request(DeleteTaskRequest {
                container_id: self.id.to_string(),
            }))
            .await;
        match deleted {
            Ok(_) => {
                tracing::info!(container = %self.id, "removed a task containerd held without a container");
                true
            }
            Err(s) if s.code() == tonic::Code::NotFound => true,
            Err(s) => {
                tracing::debug!(container = %self.id, error = %s.message(), "removing a ghost task");
                false
            }
        }
    }

    async fn delete_record(&self) -> Result<()> {
        self.client
            .containers_service()
            .delete(self.client.request(DeleteContainerRequest {
                id: self.id.to_string(),
            }))
            .await
            .map_err(|s| {
                if s.code() == tonic::Code::NotFound {
                    Error::not_found(format!("no such container: {}", self.id)).with_source(s)
                } else {
                    Error::from_status(format!("delete container {}", self.id), s)
                }
            })?;
        Ok(())
    }

    pub(crate) fn close_target(&self) -> CloseTarget {
        CloseTarget {
            client: self.client.clone(),
            container_id: self.id.to_string(),
            exec_id: String::new(),
        }
    }
}

/// Containers, created and found through the client.
impl Client {
    /// Create container `id` from an OCI runtime `spec`, run by `runtime` (shim and its options).
    ///
    /// `labels` are stored with the record (the bundle dir label is added). The rootfs named by the
    /// spec must exist. An id already in use is [`ErrorKind::AlreadyExists`]. The stored spec is
    /// [`spec::for_container`](crate::spec::for_container)'s: the cgroups path and default hostname
    /// come from `id` and the client's namespace.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn new_container(
        &self,
        id: &Id,
        spec: &oci_spec::runtime::Spec,
        runtime: &Runtime,
        labels: &std::collections::HashMap<String, String>,
    ) -> Result<Container> {
        Container::create(self, id, spec, runtime, labels, None).await
    }

    /// [`new_container`](Self::new_container) for a root filesystem in `snapshot`, an active
    /// snapshot the caller prepared (key: by convention the container id). The spec's root path
    /// must be relative (`rootfs`); the runtime mounts the snapshot there when the task is created,
    /// and [`Container::delete`] removes the snapshot with the record.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn new_container_on_snapshot(
        &self,
        id: &Id,
        spec: &oci_spec::runtime::Spec,
        runtime: &Runtime,
        labels: &std::collections::HashMap<String, String>,
        snapshot: &Snapshot,
    ) -> Result<Container> {
        Container::create(self, id, spec, runtime, labels, Some(snapshot)).await
    }

    /// Load an existing container, e.g. after the daemon restarted. Unknown ids are
    /// [`ErrorKind::NotFound`] ("no such container").
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn load_container(&self, id: &Id) -> Result<Container> {
        let response = self
            .containers_service()
            .get(self.request(GetContainerRequest { id: id.to_string() }))
            .await
            .map_err(|s| no_such_container(id, s))?
            .into_inner();
        let record = response
            .container
            .ok_or_else(|| Error::internal(format!("containerd returned no record for {id}")))?;
        Container::from_record(self, record)
    }

    /// Every container in the namespace.
    pub async fn list_containers(&self) -> Result<Vec<ContainerInfo>> {
        self.list_containers_matching(&[]).await
    }

    /// The containers in the namespace that match any of `filters`, in containerd's filter syntax
    /// (`labels."io.example.name"=="web"`, `id~="^f5"`; within one filter a comma means AND, the
    /// filters are ORed). No filter lists every container. containerd selects them, so only the
    /// matching records come back. A malformed filter is [`ErrorKind::InvalidArgument`].
    pub async fn list_containers_matching(&self, filters: &[String]) -> Result<Vec<ContainerInfo>> {
        // One record per message: a plain List answers with all records in one message, which
        // fails for everyone once the namespace's specs add up to 16 MiB.
        let mut stream = self
            .containers_service()
            .list_stream(self.request(ListContainersRequest {
                filters: filters.to_vec(),
            }))
            .await
            .map_err(|s| Error::from_status("list containers", s))?
            .into_inner();
        let mut containers = Vec::new();
        while let Some(message) = stream
            .message()
            .await
            .map_err(|s| Error::from_status("list containers", s))?
        {
            if let Some(record) = message.container {
                containers.push(ContainerInfo::from_record(record)?);
            }
        }
        Ok(containers)
    }
}

/// The rootfs named by `spec` must be an existing directory, or runc fails late with an obscure error.
fn check_rootfs(spec: &Spec) -> Result<()> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::invalid("the spec has no root filesystem"))?;
    let path = root.path();
    if !path.is_absolute() {
        return Err(Error::invalid(format!(
            "rootfs {} must be an absolute path",
            path.display()
        )));
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => check_no_symlink(path),
        Ok(_) => Err(Error::invalid(format!(
            "rootfs {} is not a directory",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::not_found(format!(
            "rootfs {} does not exist",
            path.display()
        ))),
        Err(e) => Err(Error::io(format!("rootfs {}", path.display()), e)),
    }
}

/// runc refuses a rootfs that is, or lies under, a symlink ("invalid rootfs: not an absolute path, or
/// a symlink"), but only when the task is created. Say so now, with the path to give instead. `..`
/// components are fine (runc cleans them the same way).
fn check_no_symlink(path: &Path) -> Result<()> {
    let mut lexical = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            std::path::Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let real = std::fs::canonicalize(path)
        .map_err(|e| Error::io(format!("rootfs {}", path.display()), e))?;
    // The host's own root would give the container the whole host, writable; runc fails on it
    // only by accident (pivot_root), so refuse it by name, however it is spelled.
    if real == Path::new("/") {
        return Err(Error::invalid(format!(
            "rootfs {} is the host's root directory /: give a directory holding the container's own root filesystem",
            path.display()
        )));
    }
    if real != lexical {
        return Err(Error::invalid(format!(
            "rootfs {} is a symlink or lies under one, which runc refuses: give its real path {}",
            path.display(),
            real.display()
        )));
    }
    Ok(())
}

/// Make the bundle dir (and its parents) unless it exists; true if this call made it.
pub(crate) fn make_bundle_dir(path: &Path) -> Result<bool> {
    let fail = |e| Error::io(format!("create bundle dir {}", path.display()), e);
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(parent)
            .map_err(fail)?;
    }
    match std::fs::DirBuilder::new().mode(0o711).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
        Err(e) => Err(fail(e)),
    }
}
