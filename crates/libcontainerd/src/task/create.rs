//! Creating a container's task: FIFOs made and opened in the order the shim needs, the create and
//! start RPCs, and the guarantee that a failed or abandoned start leaves no task behind. Also the
//! client's task lookups.

use std::path::Path;

use containerd_client::services::v1::{CreateTaskRequest, ListTasksRequest};

use super::Task;
use crate::cancel::CleanupGuard;
use crate::checkpoint::RestoreSource;
use crate::client::Client;
use crate::container::Container;
use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::id::Id;
use crate::io::{self, DirectIo, PreparedIo, StdioConfig, StdioPaths};
use crate::status::{TaskInfo, TaskStatus};

impl Container {
    /// Create the task (the init process) without starting it: FIFOs are made and opened in the right
    /// order; the returned handles are live. Whether the process has a terminal comes from the spec.
    ///
    /// If the caller drops the returned future, the task is removed again (killed, deleted, its
    /// FIFOs removed) once containerd has answered: a dropped create leaves nothing behind.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %self.id()))]
    pub async fn create_task(
        &self,
        checkpoint_dir: Option<&Path>,
        stdio: &StdioConfig,
    ) -> Result<(Task, DirectIo)> {
        let (task, io, guard) = self.create_task_guarded(checkpoint_dir, stdio).await?;
        guard.disarm();
        Ok((task, io))
    }

    /// Create the task in a detached task of its own; the guard removes it unless disarmed.
    async fn create_task_guarded(
        &self,
        checkpoint_dir: Option<&Path>,
        stdio: &StdioConfig,
    ) -> Result<(Task, DirectIo, CleanupGuard)> {
        let this = self.clone();
        let checkpoint_dir = checkpoint_dir.map(Path::to_path_buf);
        let stdio = stdio.clone();
        crate::cancel::detached("create task", async move {
            let (task, io) = this
                .create_task_now(checkpoint_dir.as_deref(), &stdio)
                .await?;
            let guard = task.removal_guard();
            Ok((task, io, guard))
        })
        .await
    }

    async fn create_task_now(
        &self,
        checkpoint_dir: Option<&Path>,
        stdio: &StdioConfig,
    ) -> Result<(Task, DirectIo)> {
        // The snapshot's mounts first: a container whose snapshot is gone fails before anything
        // is made or uploaded.
        let rootfs = match self.snapshot() {
            Some(snapshot) => crate::snapshot::snapshot_mounts(self.client(), snapshot)
                .await
                .map_err(|e| e.context(format!("create task of container {}", self.id())))?,
            None => Vec::new(),
        };
        // Then the checkpoint: a directory that is not one fails before any FIFO is made.
        let restore = match checkpoint_dir {
            Some(dir) => Some(
                crate::checkpoint::restore_source(self.client(), self.id(), self.bundle_dir(), dir)
                    .await
                    .map_err(|e| e.context(format!("restore container {}", self.id())))?,
            ),
            None => None,
        };
        let config = StdioConfig {
            terminal: self.terminal(),
            ..stdio.clone()
        };
        let prepared = match crate::container::make_bundle_dir(self.bundle_dir()).and_then(|_| {
            self.task_will_be_created();
            PreparedIo::prepare(self.bundle_dir(), self.id().as_str(), &config)
        }) {
            Ok(prepared) => prepared,
            Err(e) => {
                // The restore's blob or work directory is not needed after all.
                if let Some(restore) = restore {
                    restore.finish(self.id()).await;
                }
                return Err(e);
            }
        };
        let StdioPaths {
            stdin,
            stdout,
            stderr,
            terminal,
        } = prepared.paths.clone();
        let request = CreateTaskRequest {
            container_id: self.id().to_string(),
            stdin,
            stdout,
            stderr,
            terminal,
            checkpoint: match &restore {
                Some(RestoreSource::Blob(blob)) => Some(blob.descriptor().clone()),
                _ => None,
            },
            options: match &restore {
                Some(RestoreSource::InPlace { options, .. }) => Some(options.clone()),
                _ => None,
            },
            rootfs,
            ..Default::default()
        };
        let mut created = self
            .client()
            .tasks()
            .create(self.client().request(request.clone()))
            .await;
        // Already exists, yet Get finds no task: a ghost (see `remove_ghost_task`).
        if matches!(&created, Err(s) if s.code() == tonic::Code::AlreadyExists)
            && matches!(self.client().get_process(self.id(), "").await, Err(e) if e.kind() == ErrorKind::NotFound)
            && self.remove_ghost_task().await
        {
            created = self
                .client()
                .tasks()
                .create(self.client().request(request))
                .await;
        }
        // CRIU has restored the task by now (or failed): the blob or work directory has done its job.
        if let Some(restore) = restore {
            restore.finish(self.id()).await;
        }
        let pid = match created {
            Ok(response) => response.into_inner().pid,
            Err(status) => {
                prepared.abandon();
                return Err(self.create_error(status));
            }
        };
        let task = Task::new(self.clone(), pid);
        let closer = prepared.closer.clone();
        let fifos = prepared.fifos.clone();
        let io = match prepared.finish() {
            Ok(io) => io,
            Err(e) => {
                let _ = task.force_delete().await;
                let _ = fifos.remove();
                return Err(e);
            }
        };
        closer.process_ready(self.close_target()).await?;
        Ok((task, io))
    }

    /// Create and start the task. `attach` receives the stdio handles after the process exists and
    /// before it runs (the reference's `StdioCallback`); if it or the start fails, the task is removed.
    /// So is it if the caller drops the returned future: a dropped start leaves no task behind.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %self.id()))]
    pub async fn start(
        &self,
        checkpoint_dir: Option<&Path>,
        stdio: &StdioConfig,
        attach: impl FnOnce(DirectIo) -> Result<(), BoxError>,
    ) -> Result<Task> {
        let (task, io, guard) = self.create_task_guarded(checkpoint_dir, stdio).await?;
        let (started, guard) = match attach(io) {
            Ok(()) => {
                // The guard rides along with the start: should the caller go away meanwhile, the
                // task is removed once the start has finished, not while it is under way.
                let starting = task.clone();
                crate::cancel::detached("start task", async move {
                    let started = starting.start().await;
                    Ok((started, guard))
                })
                .await?
            }
            Err(e) => (
                Err(Error::from_callback(
                    format!("attach stdio of container {}", self.id()),
                    e,
                )),
                guard,
            ),
        };
        guard.disarm();
        match started {
            Ok(_) => Ok(task),
            Err(e) => {
                if let Err(cleanup) = task.force_delete().await {
                    tracing::warn!(container = %self.id(), error = %cleanup, "removing a task that failed to start");
                }
                Err(e)
            }
        }
    }

    /// Create and start the task and hand back its stdio: [`Container::start`] without a callback,
    /// with the same guarantees (the handles exist before the process runs; a failed start or a
    /// dropped future leaves no task). Output the caller never reads is drained, see
    /// [`OutputReader`](crate::OutputReader).
    pub async fn spawn(
        &self,
        checkpoint_dir: Option<&Path>,
        stdio: &StdioConfig,
    ) -> Result<(Task, DirectIo)> {
        let mut handles = None;
        let task = self
            .start(checkpoint_dir, stdio, |io| {
                handles = Some(io);
                Ok(())
            })
            .await?;
        Ok((task, handles.unwrap_or_default()))
    }

    /// The container's current task. [`ErrorKind::NotFound`] if it has none.
    pub async fn task(&self) -> Result<Task> {
        let process = self.client().get_process(self.id(), "").await?;
        Ok(Task::new(self.clone(), process.pid))
    }

    /// Re-open the stdio of the running task (e.g. after the caller restarted) and hand it to `attach`.
    /// Only one reader may be attached at a time.
    pub async fn attach_task(
        &self,
        attach: impl FnOnce(DirectIo) -> Result<(), BoxError>,
    ) -> Result<Task> {
        let process = self.client().get_process(self.id(), "").await?;
        if !self.bundle_dir().is_dir() {
            return Err(Error::not_found(format!(
                "cannot re-attach to container {}: its bundle dir {} is gone",
                self.id(),
                self.bundle_dir().display()
            )));
        }
        let paths = StdioPaths {
            stdin: process.stdin.clone(),
            stdout: process.stdout.clone(),
            stderr: process.stderr.clone(),
            terminal: process.terminal,
        };
        let io = io::reopen(&paths, self.close_target())?;
        attach(io).map_err(|e| {
            Error::from_callback(format!("attach stdio of container {}", self.id()), e)
        })?;
        Ok(Task::new(self.clone(), process.pid))
    }

    fn create_error(&self, status: tonic::Status) -> Error {
        if status.code() == tonic::Code::AlreadyExists {
            return Error::new(
                ErrorKind::AlreadyExists,
                format!("container {} already has a task", self.id()),
            )
            .with_source(status);
        }
        crate::task::start_error(
            format!("create task of container {}", self.id()),
            self.spec_command(),
            status,
        )
    }
}

/// Tasks, found through the client.
impl Client {
    /// [`load_container`](Self::load_container) and [`Container::task`] in one round trip: both
    /// lookups go out at once, which saves one RPC's latency for every command that acts on a
    /// container's task (exec, kill, pause...). The task comes with its status as containerd gave
    /// it, and is `None` when the container has none. Unknown ids are [`ErrorKind::NotFound`] ("no
    /// such container"), as with `load_container`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn load_container_and_task(
        &self,
        id: &Id,
    ) -> Result<(Container, Option<(Task, TaskStatus)>)> {
        let (container, process) = tokio::join!(self.load_container(id), self.get_process(id, ""));
        // The container's error comes first: without a record, the task lookup's answer is moot.
        let container = container?;
        let task = match process {
            Ok(process) => Some((
                Task::new(container.clone(), process.pid),
                TaskStatus::from_proto(process.status),
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok((container, task))
    }

    /// Every task (and its state) in the namespace, in one call.
    pub async fn list_tasks(&self) -> Result<Vec<TaskInfo>> {
        let response = self
            .tasks()
            .list(self.request(ListTasksRequest {
                filter: String::new(),
            }))
            .await
            .map_err(|s| Error::from_status("list tasks", s))?
            .into_inner();
        Ok(response.tasks.iter().map(TaskInfo::from_process).collect())
    }
}
