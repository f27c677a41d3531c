//! The subscription's life: subscribe, prove it live, reconcile, read; on any failure wait for
//! containerd and start over. One subscription at a time: the old stream is dropped (which cancels it
//! in containerd) before a new one is made.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::{PublishRequest, SubscribeRequest};
use containerd_client::types::Envelope;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tonic::codec::Streaming;

use super::decode::{decode, Decoded};
use super::dispatch::Dispatcher;
use super::table::{Key, Registered, Snapshot, Table};
use super::Backend;
use crate::client::{Client, ClientConfig, MAX_MESSAGE_SIZE};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::task::{ExitStatus, TaskInfo};

/// The monitor's private marker topic. Outside `/tasks/`, so subscribers of task events (Docker, `ctr
/// events`, other monitors) never see the markers.
const SYNC_TOPIC: &str = "/libcontainerd/sync";
/// The markers' payload type; the payload is the marker number (u64, little endian).
const SYNC_TYPE_URL: &str = "libcontainerd.events.Sync";
/// How often an unanswered marker is published again: one published before containerd registered the
/// subscription is lost.
const REPUBLISH: Duration = Duration::from_millis(100);
/// The first marker waits this long, so that containerd has usually registered the subscription
/// (a millisecond's work) and the first marker is not wasted.
const FIRST_MARKER: Duration = Duration::from_millis(5);
/// Bound on subscribing, proving the subscription live and reconciling; beyond it, start over.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on each unary call the monitor makes (probe, publish, list).
const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// How often ended workers and dropped waiters are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// First reconnect delay; doubled per failed attempt up to the configured maximum.
const MIN_BACKOFF: Duration = Duration::from_millis(50);

/// Tuning of an [`EventMonitor`].
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    worker_idle: Duration,
    queue_capacity: usize,
    max_backoff: Duration,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            worker_idle: Duration::from_secs(30),
            queue_capacity: 1024,
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl MonitorOptions {
    /// How long a container's worker waits for more events before it ends (default 30 s).
    pub fn worker_idle(mut self, idle: Duration) -> Self {
        self.worker_idle = idle;
        self
    }

    /// How many events may wait for one container's handler (default 1024). When full, reading the
    /// stream pauses until there is room: memory stays bounded, nothing is dropped (except repeated
    /// OOM events, which merge while one is queued).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// The longest pause between attempts to reach containerd again (default 1 s).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max.max(MIN_BACKOFF);
        self
    }
}

/// Where the monitor stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorState {
    /// A subscription is live and its reconcile is done: every event from now on is delivered.
    pub live: bool,
    /// How many subscriptions went live so far: 1 after the first connect, one more per reconnect.
    pub subscriptions: u64,
    /// [`EventMonitor::stop`] was called (or the monitor dropped).
    pub stopped: bool,
    /// Exits delivered without a `TaskExit` event: found after a reconnect (in the task list or an
    /// exec's state), taken from a delete, or synthesised with [`crate::events::UNKNOWN_EXIT_CODE`].
    pub recovered_exits: u64,
}

/// The event subscription of one client, delivering to a [`Backend`]. See the [module
/// docs](crate::events). Stops when dropped.
pub struct EventMonitor {
    shared: Arc<Shared>,
    state: watch::Receiver<MonitorState>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for EventMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventMonitor")
            .field("state", &*self.state.borrow())
            .finish()
    }
}

struct Shared {
    table: Mutex<Table>,
    active_workers: Arc<AtomicUsize>,
    /// Written by the reader task, and by `stop` (which cannot wait for the aborted reader to go).
    state: watch::Sender<MonitorState>,
}

impl Shared {
    /// The table. It is only poisoned by a bug in the table's own code; carrying on with what it holds
    /// (at worst a missed or repeated decision) beats failing every later event and wait.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventMonitor {
    /// Subscribe to `client`'s namespace and deliver its task events to `backend`, with default
    /// options. Must be called within a tokio runtime; returns at once (the subscription is made in
    /// the background: await [`EventMonitor::ready`] to know it is live).
    pub fn start(client: Client, backend: Arc<dyn Backend>) -> EventMonitor {
        EventMonitor::start_with(client, backend, MonitorOptions::default())
    }

    /// [`EventMonitor::start`] with `options`.
    pub fn start_with(
        client: Client,
        backend: Arc<dyn Backend>,
        options: MonitorOptions,
    ) -> EventMonitor {
        let (state_tx, state) = watch::channel(MonitorState::default());
        let shared = Arc::new(Shared {
            table: Mutex::new(Table::new()),
            active_workers: Arc::new(AtomicUsize::new(0)),
            state: state_tx,
        });
        let reader = Reader::new(client, backend, Arc::clone(&shared), &options);
        let task = tokio::spawn(reader.run());
        EventMonitor {
            shared,
            state,
            task,
        }
    }

    /// Wait until the subscription is live and reconciled (at first start, and again after each
    /// reconnect if called then). Fails with [`ErrorKind::Canceled`] once the monitor is stopped.
    pub async fn ready(&self) -> Result<()> {
        self.wait_state(|s| s.live).await.map(|_| ())
    }

    /// Wait until the monitor's state satisfies `condition`; returns that state.
    pub async fn wait_state(
        &self,
        condition: impl FnMut(&MonitorState) -> bool,
    ) -> Result<MonitorState> {
        let mut condition = condition;
        let mut state = self.state.clone();
        let result = state.wait_for(|s| s.stopped || condition(s)).await;
        match result {
            Ok(s) if !s.stopped => Ok(*s),
            _ => Err(stopped("wait for the event subscription")),
        }
    }

    /// The monitor's state now.
    pub fn state(&self) -> MonitorState {
        *self.state.borrow()
    }

    /// How many per-container workers are running (they end when idle).
    pub fn active_workers(&self) -> usize {
        self.shared.active_workers.load(Ordering::SeqCst)
    }

    /// Wait for the exit of process `process_id` (the container id for the init process) of container
    /// `container_id`, as delivered to the backend (deduplicated; including exits found after a
    /// reconnect). Registers at once, so a wait made before the process starts cannot miss its exit;
    /// resolves at once if the monitor already knows the process exited.
    ///
    /// "Already exited" is judged by the monitor's view, which trails containerd slightly: right
    /// after a task is deleted and re-created under the same id, use [`EventMonitor::wait_exit_pid`]
    /// with the new pid so the previous task's exit cannot be taken for it. An exit whose status was
    /// lost resolves with [`crate::events::UNKNOWN_EXIT_CODE`] and no time.
    pub fn wait_exit(&self, container_id: &Id, process_id: &Id) -> ExitWait {
        self.register(container_id.as_str(), process_id.as_str(), None)
    }

    /// [`EventMonitor::wait_exit`] for the init process (the task) of `container_id`.
    pub fn wait_init_exit(&self, container_id: &Id) -> ExitWait {
        self.wait_exit(container_id, container_id)
    }

    /// [`EventMonitor::wait_exit`] for the process with host pid `pid` only.
    pub fn wait_exit_pid(&self, container_id: &Id, process_id: &Id, pid: u32) -> ExitWait {
        self.register(container_id.as_str(), process_id.as_str(), Some(pid))
    }

    fn register(&self, container_id: &str, process_id: &str, pid: Option<u32>) -> ExitWait {
        let registered = self.shared.table().register(container_id, process_id, pid);
        ExitWait {
            state: match registered {
                Registered::Ready(status) => WaitState::Ready(Some(status)),
                Registered::Pending(rx) => WaitState::Pending(rx),
                Registered::Closed => WaitState::Closed,
            },
            what: format!("wait for process {process_id} of container {container_id}"),
        }
    }

    /// Stop: cancel the subscription and fail pending waits. Events already queued for the backend
    /// are still handed over. Idempotent; also done on drop.
    pub fn stop(&self) {
        self.task.abort();
        self.shared.table().close();
        self.shared.state.send_modify(|s| {
            s.live = false;
            s.stopped = true;
        });
    }
}

impl Drop for EventMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stopped(what: &str) -> Error {
    Error::new(
        ErrorKind::Canceled,
        format!("{what}: the event monitor has stopped"),
    )
}

/// The future of [`EventMonitor::wait_exit`]: the exit status, or [`ErrorKind::Canceled`] if the
/// monitor stops first.
#[derive(Debug)]
pub struct ExitWait {
    state: WaitState,
    what: String,
}

#[derive(Debug)]
enum WaitState {
    Ready(Option<ExitStatus>),
    Pending(oneshot::Receiver<ExitStatus>),
    Closed,
}

impl Future for ExitWait {
    type Output = Result<ExitStatus>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match &mut this.state {
            WaitState::Ready(status) => match status.take() {
                Some(s) => Poll::Ready(Ok(s)),
                None => Poll::Ready(Err(Error::internal(format!(
                    "{}: polled after completion",
                    this.what
                )))),
            },
            WaitState::Pending(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(s)) => Poll::Ready(Ok(s)),
                Poll::Ready(Err(_)) => Poll::Ready(Err(stopped(&this.what))),
                Poll::Pending => Poll::Pending,
            },
            WaitState::Closed => Poll::Ready(Err(stopped(&this.what))),
        }
    }
}

/// Aborts a spawned task when dropped: the pending Subscribe call must not outlive its session.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Capped exponential backoff.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Backoff {
        Backoff {
            next: MIN_BACKOFF,
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    fn reset(&mut self) {
        self.next = MIN_BACKOFF;
    }
}

/// Where a session is between subscribing and being live.
enum Phase {
    /// Waiting to read back `marker`: then the subscription is live.
    Syncing { marker: u64 },
    /// Listing the tasks; `since` is the table's sequence number when the subscription was live.
    Listing { since: u64 },
    /// The snapshot is in; waiting to read back `marker`, published after it was taken, so that
    /// every event that may predate the snapshot has been applied before it is.
    Settling {
        marker: u64,
        since: u64,
        snapshot: Snapshot,
    },
    /// Reconciled; events flow.
    Live,
}

type SnapshotFuture = Pin<Box<dyn Future<Output = Result<Snapshot>> + Send>>;

/// The background task: owns the stream, the dispatcher and the reconnect logic.
struct Reader {
    client: Client,
    shared: Arc<Shared>,
    dispatcher: Dispatcher,
    namespace: String,
    sync_topic: String,
    filters: Vec<String>,
    marker: u64,
    /// Whether a first snapshot was applied; before it, stopped tasks are history, not news.
    baseline_done: bool,
    max_backoff: Duration,
    last_sweep: Instant,
}

/// A topic component unique to this monitor (containerd's identifier rules apply to it).
fn monitor_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "m{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The subscription filters. The first is Docker's, fixed (moby#35896): a comma is AND, so only this
/// namespace's task events. The second, ORed, admits this monitor's own markers, also only in this
/// namespace.
fn filters(namespace: &str, sync_topic: &str) -> Vec<String> {
    vec![
        format!("namespace=={namespace},topic~=|^/tasks/|"),
        format!("namespace=={namespace},topic==\"{sync_topic}\""),
    ]
}

impl Reader {
    fn new(
        client: Client,
        backend: Arc<dyn Backend>,
        shared: Arc<Shared>,
        options: &MonitorOptions,
    ) -> Reader {
        let namespace = client.namespace().to_string();
        let sync_topic = format!("{SYNC_TOPIC}/{}", monitor_token());
        let dispatcher = Dispatcher::new(
            backend,
            options.worker_idle,
            options.queue_capacity,
            Arc::clone(&shared.active_workers),
        );
        Reader {
            filters: filters(&namespace, &sync_topic),
            client,
            shared,
            dispatcher,
            namespace,
            sync_topic,
            marker: 0,
            baseline_done: false,
            max_backoff: options.max_backoff,
            last_sweep: Instant::now(),
        }
    }

    async fn run(mut self) {
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            match self.session().await {
                Ok(()) => tracing::info!(
                    namespace = %self.namespace,
                    "containerd ended the event stream; reconnecting"
                ),
                Err(error) => tracing::warn!(
                    namespace = %self.namespace,
                    %error,
                    "event stream interrupted; reconnecting"
                ),
            }
            let was_live = self.shared.state.borrow().live;
            self.shared.state.send_modify(|s| s.live = false);
            if was_live {
                backoff.reset();
            }
            self.wait_until_serving(&mut backoff).await;
        }
    }

    /// One subscription, from subscribing until the stream ends.
    async fn session(&mut self) -> Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let marker = self.next_marker();
        let mut phase = Phase::Syncing { marker };
        let subscribe = AbortOnDrop(tokio::spawn(subscribe(
            self.client.clone(),
            self.filters.clone(),
        )));
        let mut stream = self.await_stream(subscribe, marker, deadline).await?;
        let mut snapshot: Option<SnapshotFuture> = None;
        let mut tick = tokio::time::interval(REPUBLISH);
        loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(envelope)) => self.on_envelope(envelope, &mut phase, &mut snapshot).await,
                    Ok(None) => return Ok(()),
                    Err(status) => return Err(Error::from_status("read containerd's event stream", status)),
                },
                taken = pending_or(&mut snapshot) => {
                    snapshot = None;
                    let since = match phase {
                        Phase::Listing { since } => since,
                        // Only the Listing phase starts a snapshot; this arm is never taken.
                        _ => self.shared.table().seq(),
                    };
                    let marker = self.next_marker();
                    self.publish_marker(marker).await;
                    phase = Phase::Settling { marker, since, snapshot: taken? };
                }
                _ = tick.tick() => self.on_tick(&phase, deadline).await?,
            }
        }
    }

    /// Wait for containerd to answer the Subscribe call, publishing `marker` until it does: containerd
    /// 1.6 answers only with the first event, and the marker is that event when nothing else happens.
    async fn await_stream(
        &self,
        mut subscribe: AbortOnDrop<Result<Streaming<Envelope>>>,
        marker: u64,
        deadline: Instant,
    ) -> Result<Streaming<Envelope>> {
        let mut tick = tokio::time::interval_at(Instant::now() + FIRST_MARKER, REPUBLISH);
        loop {
            tokio::select! {
                joined = &mut subscribe.0 => {
                    return joined.map_err(|e| Error::internal(format!("subscribe to containerd events: {e}")))?;
                }
                _ = tick.tick() => self.publish_marker(marker).await,
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::new(
                        ErrorKind::DeadlineExceeded,
                        format!("subscribe to containerd events: no answer within {SETTLE_TIMEOUT:?}"),
                    ));
                }
            }
        }
    }

    async fn on_envelope(
        &mut self,
        envelope: Envelope,
        phase: &mut Phase,
        snapshot: &mut Option<SnapshotFuture>,
    ) {
        if envelope.topic == self.sync_topic {
            self.on_marker(&envelope, phase, snapshot).await;
            return;
        }
        if envelope.namespace != self.namespace {
            tracing::warn!(namespace = %envelope.namespace, topic = %envelope.topic, "skipping an event of another namespace");
            return;
        }
        match decode(envelope.event.as_ref()) {
            Ok(Decoded::Task(event)) => {
                let deliveries = self.shared.table().apply(event);
                self.dispatch(deliveries).await;
            }
            Ok(Decoded::Ignored) => {}
            Err(error) => tracing::warn!(
                namespace = %envelope.namespace,
                topic = %envelope.topic,
                %error,
                "skipping an event that cannot be decoded"
            ),
        }
    }

    /// A marker came back: the subscription is live (start listing), or the snapshot can be applied.
    async fn on_marker(
        &mut self,
        envelope: &Envelope,
        phase: &mut Phase,
        snapshot: &mut Option<SnapshotFuture>,
    ) {
        let Some(marker) = parse_marker(envelope) else {
            tracing::warn!(topic = %envelope.topic, "skipping a malformed sync marker");
            return;
        };
        match phase {
            Phase::Syncing { marker: want } if marker >= *want => {
                let (since, execs) = {
                    let table = self.shared.table();
                    (table.seq(), table.alive_execs())
                };
                *snapshot = Some(Box::pin(take_snapshot(self.client.clone(), execs)));
                *phase = Phase::Listing { since };
            }
            Phase::Settling { marker: want, .. } if marker >= *want => {
                if let Phase::Settling {
                    since, snapshot, ..
                } = std::mem::replace(phase, Phase::Live)
                {
                    self.go_live(&snapshot, since).await;
                }
            }
            // A repeated or stale marker.
            _ => {}
        }
    }

    async fn go_live(&mut self, snapshot: &Snapshot, since: u64) {
        let deliveries = self
            .shared
            .table()
            .reconcile(snapshot, since, self.baseline_done);
        self.baseline_done = true;
        self.dispatch(deliveries).await;
        self.shared.state.send_modify(|s| {
            s.live = true;
            s.subscriptions += 1;
        });
        tracing::info!(
            namespace = %self.namespace,
            subscription = self.shared.state.borrow().subscriptions,
            tasks = snapshot.tasks.len(),
            "event subscription live"
        );
    }

    async fn on_tick(&mut self, phase: &Phase, deadline: Instant) -> Result<()> {
        match phase {
            Phase::Syncing { marker } | Phase::Settling { marker, .. } => {
                if Instant::now() >= deadline {
                    return Err(Error::new(
                        ErrorKind::DeadlineExceeded,
                        format!("event subscription not live within {SETTLE_TIMEOUT:?}"),
                    ));
                }
                self.publish_marker(*marker).await;
            }
            Phase::Listing { .. } | Phase::Live => {}
        }
        if self.last_sweep.elapsed() >= SWEEP_EVERY {
            self.last_sweep = Instant::now();
            self.dispatcher.sweep();
            self.shared.table().prune_waiters();
        }
        Ok(())
    }

    async fn dispatch(&mut self, deliveries: Vec<super::table::Delivery>) {
        let recovered = deliveries.iter().filter(|d| d.recovered).count() as u64;
        if recovered > 0 {
            self.shared
                .state
                .send_modify(|s| s.recovered_exits += recovered);
        }
        for delivery in deliveries {
            self.dispatcher.dispatch(delivery).await;
        }
    }

    fn next_marker(&mut self) -> u64 {
        self.marker += 1;
        self.marker
    }

    /// Best effort: a marker that does not come back is published again on the next tick.
    async fn publish_marker(&self, marker: u64) {
        let request = self.client.request(PublishRequest {
            topic: self.sync_topic.clone(),
            event: Some(prost_types::Any {
                type_url: SYNC_TYPE_URL.to_string(),
                value: marker.to_le_bytes().to_vec(),
            }),
        });
        let mut events = EventsClient::new(self.client.channel());
        match timeout(RPC_TIMEOUT, events.publish(request)).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => {
                tracing::debug!(error = %status.message(), "publishing a sync marker failed")
            }
            Err(_) => tracing::debug!("publishing a sync marker timed out"),
        }
    }

    /// Wait until containerd answers again. The client's channel reconnects by itself when containerd
    /// is back on the same socket; if it does not, a new connection is made to the same address.
    async fn wait_until_serving(&mut self, backoff: &mut Backoff) {
        loop {
            tokio::time::sleep(backoff.next()).await;
            if serves(&self.client).await {
                return;
            }
            if let Some(fresh) = self.fresh_client().await {
                tracing::info!(namespace = %self.namespace, "reconnected to containerd on a new connection");
                self.client = fresh;
                return;
            }
        }
    }

    async fn fresh_client(&self) -> Option<Client> {
        let mut config = ClientConfig::new(
            self.client.address(),
            self.namespace.as_str(),
            self.client.state_dir(),
        );
        config.connect_timeout = RPC_TIMEOUT;
        let client = Client::connect(config).await.ok()?;
        serves(&client).await.then_some(client)
    }
}

/// Whether containerd answers a Version call on `client`'s channel.
async fn serves(client: &Client) -> bool {
    matches!(timeout(RPC_TIMEOUT, client.version()).await, Ok(Ok(_)))
}

/// Resolves with the snapshot when there is one in flight; otherwise never.
async fn pending_or(snapshot: &mut Option<SnapshotFuture>) -> Result<Snapshot> {
    match snapshot {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

fn parse_marker(envelope: &Envelope) -> Option<u64> {
    let any = envelope.event.as_ref()?;
    let bytes: [u8; 8] = any.value.as_slice().try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Subscribe. On containerd 1.6 this returns only when the first event arrives, so it runs in a task
/// of its own while the session publishes markers.
async fn subscribe(client: Client, filters: Vec<String>) -> Result<Streaming<Envelope>> {
    EventsClient::new(client.channel())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .subscribe(client.request(SubscribeRequest { filters }))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| Error::from_status("subscribe to containerd events", s))
}

/// The namespace's tasks, and the state of the execs the monitor thinks are running.
async fn take_snapshot(client: Client, execs: Vec<Key>) -> Result<Snapshot> {
    let work = async {
        let tasks = client.list_tasks().await?;
        let mut states = HashMap::new();
        for key in execs {
            let state = exec_state(&client, &key).await?;
            states.insert(key, state);
        }
        Ok(Snapshot {
            tasks,
            execs: states,
        })
    };
    match timeout(RPC_TIMEOUT * 2, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::DeadlineExceeded,
            "list tasks after subscribing: timed out",
        )),
    }
}

/// An exec's state, or `None` if containerd no longer has it.
async fn exec_state(client: &Client, key: &Key) -> Result<Option<TaskInfo>> {
    // Ids in the table came from containerd, which validated them.
    let Ok(container) = Id::new(key.0.clone()) else {
        return Ok(None);
    };
    match client.get_process(&container, &key.1).await {
        Ok(process) => Ok(Some(TaskInfo::from_process(&process))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(300));
        let delays: Vec<_> = (0..5).map(|_| b.next().as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 300, 300]);
        b.reset();
        assert_eq!(b.next(), MIN_BACKOFF);
    }

    #[test]
    fn filters_are_namespace_scoped_and_the_task_filter_is_dockers() {
        let f = filters("ns1", "/libcontainerd/sync/m1-2-3");
        assert_eq!(f[0], "namespace==ns1,topic~=|^/tasks/|");
        assert!(f.iter().all(|f| f.starts_with("namespace==ns1,")));
        assert_eq!(f[1], "namespace==ns1,topic==\"/libcontainerd/sync/m1-2-3\"");
    }

    #[test]
    fn tokens_are_valid_topic_components_and_unique() {
        let a = monitor_token();
        let b = monitor_token();
        assert_ne!(a, b);
        assert!(Id::new(a.as_str()).is_ok(), "{a}");
    }

    #[test]
    fn markers_round_trip() {
        let envelope = Envelope {
            event: Some(prost_types::Any {
                type_url: SYNC_TYPE_URL.into(),
                value: 42u64.to_le_bytes().to_vec(),
            }),
            ..Default::default()
        };
        assert_eq!(parse_marker(&envelope), Some(42));
        assert_eq!(parse_marker(&Envelope::default()), None);
    }
}
