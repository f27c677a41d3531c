//! The subscription's life: subscribe, prove it live, reconcile, read; on any failure wait for
//! containerd and start over. One subscription at a time: the old stream is dropped (which cancels it
//! in containerd) before a new one is made.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use containerd_client::types::Envelope;
use tokio::time::Instant;
use tonic::codec::Streaming;

use super::decode::{decode, Decoded};
use super::delivery::Delivery;
use super::dispatch::Dispatcher;
use super::execs::BundleRoot;
use super::options::MonitorOptions;
use super::reconcile::Snapshot;
use super::reconnect::{wait_until_serving, Backoff};
use super::snapshot::take_snapshot;
use super::state::Shared;
use super::subscription::{parse_marker, AbortOnDrop, Subscription, FIRST_MARKER, REPUBLISH};
use super::Backend;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};

/// Bound on subscribing, proving the subscription live and reconciling; beyond it, start over.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often ended workers and dropped waiters are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

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
pub(crate) struct Reader {
    client: Client,
    shared: Arc<Shared>,
    dispatcher: Dispatcher,
    namespace: String,
    subscription: Subscription,
    marker: u64,
    /// Whether a first snapshot was applied; before it, stopped tasks are history, not news.
    baseline_done: bool,
    /// Where the snapshots find the execs containerd does not list.
    bundles: BundleRoot,
    max_backoff: Duration,
    last_sweep: Instant,
}

impl Reader {
    pub(crate) fn new(
        client: Client,
        backend: Arc<dyn Backend>,
        shared: Arc<Shared>,
        options: &MonitorOptions,
    ) -> Reader {
        let namespace = client.namespace().to_string();
        let dispatcher = Dispatcher::new(
            backend,
            options.worker_idle,
            options.queue_capacity,
            Arc::clone(&shared.active_workers),
        );
        Reader {
            subscription: Subscription::new(&namespace),
            client,
            shared,
            dispatcher,
            namespace,
            marker: 0,
            baseline_done: false,
            bundles: BundleRoot::default(),
            max_backoff: options.max_backoff,
            last_sweep: Instant::now(),
        }
    }

    pub(crate) async fn run(mut self) {
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
            if let Some(fresh) = wait_until_serving(&self.client, &mut backoff).await {
                self.client = fresh;
            }
        }
    }

    /// One subscription, from subscribing until the stream ends.
    async fn session(&mut self) -> Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let marker = self.next_marker();
        let mut phase = Phase::Syncing { marker };
        let subscribe = self.subscription.subscribe(&self.client);
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
        if self.subscription.is_marker(&envelope) {
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
                let taking = take_snapshot(self.client.clone(), execs, self.bundles.clone());
                *snapshot = Some(Box::pin(taking));
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
            execs = snapshot.execs.len(),
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

    async fn dispatch(&mut self, deliveries: Vec<Delivery>) {
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

    async fn publish_marker(&self, marker: u64) {
        self.subscription.publish_marker(&self.client, marker).await;
    }
}

/// Resolves with the snapshot when there is one in flight; otherwise never.
async fn pending_or(snapshot: &mut Option<SnapshotFuture>) -> Result<Snapshot> {
    match snapshot {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}
