//! `lcd agent` (run by lcd itself, see the module above): take the lock, follow the namespace's
//! exits through an `EventMonitor`, catch up on what happened while no agent ran, then act on each
//! exit until the containerd it serves exits.
//!
//! Every decision is made from containerd's state at the time, not from the event alone, so a
//! repeated or late exit (the monitor's start-up list and the stream may both name one) does
//! nothing twice: an exit is recorded only while the task it names is stopped and still there, a
//! restart happens only while the container has no task.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use libcontainerd::events::{EventInfo, EventType};
use libcontainerd::supervisor::DaemonStatus;
use libcontainerd::{Client, ClientConfig, Container, ErrorKind, EventMonitor, Id, TaskStatus};
use tokio::sync::mpsc;

use super::lock;
use super::watch::Instance;
use super::Files;
use crate::container_lock::ContainerLock;
use crate::context::Ctx;
use crate::launch;
use crate::restart::LABEL_STOPPED_BY_USER;
use crate::restart::{self, Policy, LABEL_AUTO_REMOVE, LABEL_DETACHED, LABEL_RESTART_COUNT};
use crate::state::{self, LABEL_EXIT_CODE, LABEL_STDIN};

/// What the agent does next, one at a time.
#[derive(Debug)]
enum Job {
    /// The init process of a container exited (pid 0: whichever task it has, found stopped).
    Exited { id: String, pid: u32 },
    /// A restart's delay is over (`boot`: by the daemon-start rule).
    Restart { id: String, boot: bool },
}

/// What the agent knows of a container's runs: for the backoff, and to act once per exit.
#[derive(Default)]
struct Run {
    /// When the agent last started it (None: not the agent).
    started: Option<Instant>,
    /// The last delay before a restart.
    delay: Option<Duration>,
    /// The pid of the last exit the agent acted on.
    last_exit: Option<u32>,
}

/// The agent's main: returns the exit status of `lcd agent`.
pub async fn serve(ctx: &Ctx) -> Result<i32> {
    let files = Files::of(ctx);
    std::fs::create_dir_all(&files.dir)
        .with_context(|| format!("create {}", files.dir.display()))?;
    let Some(mut lock) = lock::acquire(&files.pid_file())? else {
        say("busy");
        return Ok(0);
    };
    say("ready");
    let containerd = match ctx.daemon().status() {
        DaemonStatus::Running { pid } => Instance::of(pid),
        _ => None,
    };
    let Some(containerd) = containerd else {
        tracing::info!("the managed containerd is not running: nothing to serve");
        return Ok(0);
    };
    lock::note_containerd(&mut lock, containerd.pid)?;
    let client = Client::connect(ClientConfig::new(
        ctx.daemon().config().socket(),
        ctx.namespace.clone(),
        ctx.bundles_dir(),
    ))
    .await?;
    let (jobs, mut next) = mpsc::unbounded_channel();
    let exits = jobs.clone();
    let backend = move |id: &str, event: EventType, info: EventInfo| {
        if event == EventType::Exit && info.is_init() {
            let _ = exits.send(Job::Exited {
                id: id.to_string(),
                pid: info.pid,
            });
        }
        Ok(())
    };
    let monitor = EventMonitor::start(client.clone(), Arc::new(backend));
    monitor.ready().await?;
    let mut agent = Agent {
        ctx: ctx.clone(),
        client,
        jobs,
        runs: HashMap::new(),
    };
    let boot = !containerd.was_served(&files.served_file());
    agent.catch_up(boot).await?;
    containerd.mark_served(&files.served_file())?;
    let gone = containerd.exited();
    tokio::pin!(gone);
    loop {
        tokio::select! {
            _ = &mut gone => {
                tracing::info!(pid = containerd.pid, "containerd exited; the agent goes with it");
                return Ok(0);
            }
            Some(job) = next.recv() => {
                let what = format!("{job:?}");
                if let Err(e) = agent.handle(job).await {
                    tracing::warn!(job = what, error = %format!("{e:#}"), "agent");
                }
            }
        }
    }
}

/// Tell the lcd that started us how it went, then let go of its pipe.
fn say(word: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{word}");
    let _ = out.flush();
    if let Ok(null) = std::fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 of an open descriptor over our stdout, which nothing else uses any more.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
        }
    }
}

struct Agent {
    ctx: Ctx,
    client: Client,
    jobs: mpsc::UnboundedSender<Job>,
    runs: HashMap<String, Run>,
}

impl Agent {
    /// What happened while no agent ran: exits not recorded, removals and restarts owed, and (at
    /// `boot`, a containerd the agent did not serve before) docker's daemon-start restarts.
    async fn catch_up(&mut self, boot: bool) -> Result<()> {
        let (containers, tasks) =
            tokio::try_join!(self.client.list_containers(), self.client.list_tasks())?;
        let tasks: HashMap<String, TaskStatus> = tasks
            .into_iter()
            .map(|t| (t.container_id, t.status))
            .collect();
        for info in containers {
            let labels = &info.labels;
            if !labels.contains_key(LABEL_DETACHED) {
                continue;
            }
            let id = info.id.to_string();
            match tasks.get(&id) {
                Some(TaskStatus::Stopped) => self.queue(Job::Exited { id, pid: 0 }),
                Some(_) => {}
                None if !labels.contains_key(LABEL_EXIT_CODE) => {}
                None if labels.contains_key(LABEL_AUTO_REMOVE) => {
                    self.queue(Job::Exited { id, pid: 0 })
                }
                None => {
                    let (policy, code, stopped, count) = restart_facts(labels);
                    if boot && policy.restarts_at_boot(code, stopped, count) {
                        self.queue(Job::Restart { id, boot: true });
                    } else if policy.restarts_after_exit(code, stopped, count) {
                        self.queue(Job::Restart { id, boot: false });
                    }
                }
            }
        }
        Ok(())
    }

    fn queue(&self, job: Job) {
        let _ = self.jobs.send(job);
    }

    async fn handle(&mut self, job: Job) -> Result<()> {
        match job {
            Job::Exited { id, pid } => self.exited(&id, pid).await,
            Job::Restart { id, boot } => self.restart(&id, boot).await,
        }
    }

    /// Record the exit and delete the task (the shim and logger go), then remove the container or
    /// schedule its restart as its labels say.
    async fn exited(&mut self, id: &str, pid: u32) -> Result<()> {
        // The container alone first: most exits on a busy machine are attached runs', which
        // record their own (and a `run --rm` one is usually gone already).
        let Ok(checked) = Id::new(id) else {
            return Ok(());
        };
        let container = match self.client.load_container(&checked).await {
            Ok(container) => container,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.runs.remove(id);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if !container.labels().contains_key(LABEL_DETACHED) {
            return Ok(());
        }
        // A racing `lcd rm -f` or `start` finishes first (see crate::container_lock).
        let lock = ContainerLock::acquire(&self.ctx, id).await?;
        let container = match self.load(id).await? {
            Some((container, _)) => container,
            // Removed while we waited: its lock file goes too.
            None => {
                lock.remove();
                return Ok(());
            }
        };
        let last_exit = self.runs.get(id).and_then(|run| run.last_exit);
        match state::task_with_status(&container).await? {
            Some((task, TaskStatus::Stopped)) if pid == 0 || task.pid() == pid => {
                state::reap_if_present(&lock, &container, &task, None).await?;
                self.runs.entry(id.to_string()).or_default().last_exit = Some(task.pid());
            }
            // Running again (a newer task), or not stopped yet: not this exit's business.
            Some(_) => return Ok(()),
            // The start-up list's name for an exit the stream delivered first, or an exit the
            // agent acted on already.
            None if pid == 0 || last_exit == Some(pid) => return Ok(()),
            // Recorded and deleted by someone else (`lcd stop`); what follows is still ours.
            None => {
                self.runs.entry(id.to_string()).or_default().last_exit = Some(pid);
            }
        }
        let container = match self.load(id).await? {
            Some((container, None)) => container,
            _ => return Ok(()),
        };
        let labels = container.labels();
        if labels.contains_key(LABEL_AUTO_REMOVE) {
            return self.remove(lock, &container).await;
        }
        let (policy, code, stopped, count) = restart_facts(labels);
        if !policy.restarts_after_exit(code, stopped, count) {
            self.runs.remove(id);
            return Ok(());
        }
        let run = self.runs.entry(id.to_string()).or_default();
        let ran_for = run
            .started
            .map_or(Duration::ZERO, |started| started.elapsed());
        let delay = restart::next_delay(run.delay, ran_for);
        run.delay = Some(delay);
        let jobs = self.jobs.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = jobs.send(Job::Restart { id, boot: false });
        });
        Ok(())
    }

    /// Start the container again if it still has no task and its policy (read again: the user may
    /// have stopped or removed it meanwhile) still says so.
    async fn restart(&mut self, id: &str, boot: bool) -> Result<()> {
        let lock = ContainerLock::acquire(&self.ctx, id).await?;
        let Some((container, task)) = self.load(id).await? else {
            // Removed while we waited: its lock file goes too.
            lock.remove();
            return Ok(());
        };
        if task.is_some() {
            return Ok(());
        }
        let labels = container.labels();
        if !labels.contains_key(LABEL_DETACHED) {
            return Ok(());
        }
        let (policy, code, stopped, count) = restart_facts(labels);
        let wanted = if boot {
            policy.restarts_at_boot(code, stopped, count)
        } else {
            policy.restarts_after_exit(code, stopped, count)
        };
        if !wanted {
            return Ok(());
        }
        let mut counted = container.clone();
        let changes = HashMap::from([
            (LABEL_RESTART_COUNT.to_string(), (count + 1).to_string()),
            (LABEL_STOPPED_BY_USER.to_string(), String::new()),
        ]);
        counted.set_labels(&changes).await?;
        let stdin = counted.labels().contains_key(LABEL_STDIN);
        launch::start_detached(&self.ctx, &counted, stdin).await?;
        self.runs.entry(id.to_string()).or_default().started = Some(Instant::now());
        tracing::info!(container = id, restarts = count + 1, "restarted");
        Ok(())
    }

    /// `run -d --rm`: the container and its log go once it has exited.
    async fn remove(&mut self, lock: ContainerLock, container: &Container) -> Result<()> {
        self.runs.remove(container.id().as_str());
        match container.delete().await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        // What `lcd rm -v` would release besides: its network record and files, and its
        // anonymous volumes (docker's `run --rm` takes those too).
        crate::network::forget(&self.ctx, container.id())?;
        let records = crate::volumes::mounts_of(container.labels());
        if records.iter().any(|r| r.name.is_some()) {
            crate::mounts::remove_anonymous(&self.ctx, &self.client, &records).await?;
        }
        let log = self.ctx.log_path(container.id());
        match std::fs::remove_file(&log) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("remove {}", log.display()));
            }
            _ => {}
        }
        lock.remove();
        Ok(())
    }

    /// The container and its task, or None if the container is gone.
    async fn load(
        &mut self,
        id: &str,
    ) -> Result<Option<(Container, Option<(libcontainerd::Task, TaskStatus)>)>> {
        let Ok(id) = Id::new(id) else {
            return Ok(None);
        };
        match self.client.load_container_and_task(&id).await {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.runs.remove(id.as_str());
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The policy, the last exit code, whether the user stopped the container, and its restart count.
fn restart_facts(labels: &HashMap<String, String>) -> (Policy, u32, bool, u32) {
    (
        Policy::of(labels),
        labels
            .get(LABEL_EXIT_CODE)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        labels.contains_key(LABEL_STOPPED_BY_USER),
        restart::count(labels),
    )
}
