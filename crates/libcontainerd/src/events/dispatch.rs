//! Per-container ordered delivery to the backend.
//!
//! Each container with pending events has one worker: a task with a bounded queue that hands the
//! events to the backend one at a time, each on a blocking-capable thread (`spawn_blocking`), so a
//! handler that blocks holds up only its own container and never the async runtime. A worker ends
//! after a quiet period; the next event for its container starts a successor that first waits for it
//! to finish, so order holds across the hand-over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

use super::delivery::Delivery;
use super::{Backend, EventType};

/// Hands deliveries to per-container workers. Owned by the monitor's reader task.
pub(crate) struct Dispatcher {
    spawner: Spawner,
    workers: HashMap<String, Worker>,
}

/// What a new worker is made of.
struct Spawner {
    backend: Arc<dyn Backend>,
    idle: Duration,
    capacity: usize,
    active: Arc<AtomicUsize>,
}

struct Worker {
    tx: mpsc::Sender<Delivery>,
    /// An OOM event is queued and not yet handed over: another one adds nothing, so it is merged.
    /// This keeps an OOM storm from filling the queue of a container whose handler is slow.
    oom_queued: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// Counts live workers; decremented however a worker ends.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(counter: &Arc<AtomicUsize>) -> ActiveGuard {
        counter.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(Arc::clone(counter))
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Dispatcher {
    /// Workers end after `idle` without events; each queues at most `capacity` events; `active`
    /// counts the live ones.
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        idle: Duration,
        capacity: usize,
        active: Arc<AtomicUsize>,
    ) -> Dispatcher {
        Dispatcher {
            spawner: Spawner {
                backend,
                idle,
                capacity: capacity.max(1),
                active,
            },
            workers: HashMap::new(),
        }
    }

    /// Queue `delivery` behind the earlier events of its container. Waits only when that container's
    /// queue is full (its handler is far behind); that back-pressure is what bounds memory.
    pub(crate) async fn dispatch(&mut self, delivery: Delivery) {
        let mut delivery = delivery;
        loop {
            let id = delivery.container_id().to_string();
            let worker = self
                .workers
                .entry(id.clone())
                .or_insert_with(|| self.spawner.spawn(&id, None));
            let (tx, oom_queued) = (worker.tx.clone(), Arc::clone(&worker.oom_queued));
            if delivery.event == EventType::Oom && oom_queued.swap(true, Ordering::SeqCst) {
                tracing::debug!(
                    container = %id,
                    "merging an oom event into the one still queued"
                );
                return;
            }
            let refused = match tx.try_send(delivery) {
                Ok(()) => return,
                Err(TrySendError::Full(d)) => {
                    tracing::warn!(
                        container = %id,
                        capacity = self.spawner.capacity,
                        "the backend is behind on this container; waiting for room in its queue"
                    );
                    match tx.send(d).await {
                        Ok(()) => return,
                        Err(mpsc::error::SendError(d)) => d,
                    }
                }
                Err(TrySendError::Closed(d)) => d,
            };
            // The worker went idle and closed its queue: start its successor and try again.
            delivery = refused;
            let previous = self.workers.remove(&id).map(|w| w.handle);
            let successor = self.spawner.spawn(&id, previous);
            self.workers.insert(id, successor);
        }
    }

    /// Forget workers that have ended (their queues are closed and drained).
    pub(crate) fn sweep(&mut self) {
        self.workers.retain(|_, w| !w.handle.is_finished());
    }
}

impl Spawner {
    fn spawn(&self, id: &str, previous: Option<JoinHandle<()>>) -> Worker {
        let (tx, rx) = mpsc::channel(self.capacity);
        let oom_queued = Arc::new(AtomicBool::new(false));
        let run = WorkerRun {
            container_id: id.to_string(),
            rx,
            backend: Arc::clone(&self.backend),
            oom_queued: Arc::clone(&oom_queued),
            idle: self.idle,
            _active: ActiveGuard::new(&self.active),
        };
        let handle = tokio::spawn(run.run(previous));
        Worker {
            tx,
            oom_queued,
            handle,
        }
    }
}

struct WorkerRun {
    container_id: String,
    rx: mpsc::Receiver<Delivery>,
    backend: Arc<dyn Backend>,
    oom_queued: Arc<AtomicBool>,
    idle: Duration,
    _active: ActiveGuard,
}

impl WorkerRun {
    async fn run(mut self, previous: Option<JoinHandle<()>>) {
        // The predecessor may still be handing over events that raced with its closing.
        if let Some(previous) = previous {
            let _ = previous.await;
        }
        loop {
            match tokio::time::timeout(self.idle, self.rx.recv()).await {
                Ok(Some(delivery)) => self.deliver(delivery).await,
                Ok(None) => return,
                Err(_) => {
                    // Idle: refuse new events, then hand over the ones that raced in.
                    self.rx.close();
                    while let Some(delivery) = self.rx.recv().await {
                        self.deliver(delivery).await;
                    }
                    return;
                }
            }
        }
    }

    async fn deliver(&self, delivery: Delivery) {
        let Delivery { event, info, .. } = delivery;
        if event == EventType::Oom {
            self.oom_queued.store(false, Ordering::SeqCst);
        }
        let process_id = info.process_id.clone();
        let backend = Arc::clone(&self.backend);
        let container_id = self.container_id.clone();
        let result =
            tokio::task::spawn_blocking(move || backend.process_event(&container_id, event, info))
                .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                container = %self.container_id,
                process = %process_id,
                event = %event,
                error = %error,
                "the backend failed to process an event; continuing with the next"
            ),
            Err(join) => tracing::error!(
                container = %self.container_id,
                process = %process_id,
                event = %event,
                error = %join,
                "the backend panicked or was cancelled while processing an event; continuing with the next"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::events::{BackendError, EventInfo};
    use std::sync::Mutex;
    use std::time::Instant;

    type Log = Arc<Mutex<Vec<(String, EventType, u32, Instant)>>>;

    fn delivery(container: &str, event: EventType, n: u32) -> Delivery {
        Delivery {
            event,
            info: EventInfo {
                container_id: container.into(),
                process_id: container.into(),
                pid: n,
                ..Default::default()
            },
            recovered: false,
        }
    }

    fn recording(
        log: &Log,
        delay: impl Fn(&str, u32) -> Duration + Send + Sync + 'static,
    ) -> Arc<dyn Backend> {
        let log = Arc::clone(log);
        Arc::new(
            move |c: &str, e: EventType, info: EventInfo| -> Result<(), BackendError> {
                std::thread::sleep(delay(c, info.pid));
                log.lock()
                    .unwrap()
                    .push((c.to_string(), e, info.pid, Instant::now()));
                Ok(())
            },
        )
    }

    async fn until(mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "timed out");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_container_sees_its_events_in_order() {
        let log: Log = Arc::default();
        // Uneven handler times shuffle the interleaving between containers.
        let backend = recording(&log, |c, n| {
            Duration::from_micros(((c.len() as u64 * 7 + n as u64) % 5) * 100)
        });
        let active = Arc::new(AtomicUsize::new(0));
        let mut d = Dispatcher::new(backend, Duration::from_secs(5), 8, active);
        for n in 0..50 {
            for c in 0..20 {
                d.dispatch(delivery(
                    &format!("c{c:0>width$}", width = c % 4 + 1),
                    EventType::Start,
                    n,
                ))
                .await;
            }
        }
        until(|| log.lock().unwrap().len() == 1000).await;
        let log = log.lock().unwrap();
        let mut last: HashMap<&str, u32> = HashMap::new();
        for (c, _, n, _) in log.iter() {
            if let Some(prev) = last.insert(c.as_str(), *n) {
                assert_eq!(*n, prev + 1, "out of order for {c}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocking_handler_holds_up_only_its_container() {
        let log: Log = Arc::default();
        let backend = recording(&log, |c, _| {
            if c == "slow" {
                Duration::from_secs(2)
            } else {
                Duration::ZERO
            }
        });
        let mut d = Dispatcher::new(backend, Duration::from_secs(5), 8, Arc::default());
        let begin = Instant::now();
        d.dispatch(delivery("slow", EventType::Start, 1)).await;
        d.dispatch(delivery("slow", EventType::Exit, 2)).await;
        for n in 0..5 {
            d.dispatch(delivery("fast", EventType::Start, n)).await;
        }
        until(|| log.lock().unwrap().iter().filter(|e| e.0 == "fast").count() == 5).await;
        assert!(
            begin.elapsed() < Duration::from_secs(1),
            "{:?}",
            begin.elapsed()
        );
        until(|| log.lock().unwrap().len() == 7).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_workers_end_and_successors_keep_order() {
        let log: Log = Arc::default();
        let backend = recording(&log, |_, _| Duration::ZERO);
        let active = Arc::new(AtomicUsize::new(0));
        let mut d = Dispatcher::new(backend, Duration::from_millis(30), 4, Arc::clone(&active));
        for round in 0..5u32 {
            for n in 0..10 {
                d.dispatch(delivery("c", EventType::Start, round * 10 + n))
                    .await;
            }
            until(|| active.load(Ordering::SeqCst) == 0).await;
            d.sweep();
            assert!(d.workers.is_empty());
        }
        let pids: Vec<u32> = log.lock().unwrap().iter().map(|e| e.2).collect();
        assert_eq!(pids, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_waits_and_loses_nothing_while_ooms_merge() {
        let log: Log = Arc::default();
        // The handler blocks until the gate opens.
        let open = Arc::new(AtomicBool::new(false));
        let backend: Arc<dyn Backend> = {
            let log = Arc::clone(&log);
            let open = Arc::clone(&open);
            Arc::new(
                move |c: &str, e: EventType, info: EventInfo| -> Result<(), BackendError> {
                    while !open.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    log.lock()
                        .unwrap()
                        .push((c.to_string(), e, info.pid, Instant::now()));
                    Ok(())
                },
            )
        };
        let mut d = Dispatcher::new(backend, Duration::from_secs(5), 2, Arc::default());
        d.dispatch(delivery("c", EventType::Create, 0)).await;
        for n in 1..=100 {
            d.dispatch(delivery("c", EventType::Oom, n)).await;
        }
        // The queue (2) is full now, so this dispatch waits until the handler catches up.
        let more = tokio::spawn(async move {
            for n in 101..=110 {
                d.dispatch(delivery("c", EventType::Exit, n)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!more.is_finished(), "should wait for room in the queue");
        open.store(true, Ordering::SeqCst);
        more.await.unwrap();
        until(|| log.lock().unwrap().len() == 12).await;
        let log = log.lock().unwrap();
        let ooms = log.iter().filter(|e| e.1 == EventType::Oom).count();
        assert_eq!(ooms, 1, "{log:?}");
        let exits: Vec<u32> = log
            .iter()
            .filter(|e| e.1 == EventType::Exit)
            .map(|e| e.2)
            .collect();
        assert_eq!(exits, (101..=110).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn handler_errors_and_panics_do_not_stop_delivery() {
        let log: Log = Arc::default();
        let backend: Arc<dyn Backend> = {
            let log = Arc::clone(&log);
            Arc::new(
                move |c: &str, e: EventType, info: EventInfo| -> Result<(), BackendError> {
                    log.lock()
                        .unwrap()
                        .push((c.to_string(), e, info.pid, Instant::now()));
                    match info.pid {
                        1 => Err("handler refused".into()),
                        2 => panic!("handler bug"),
                        _ => Ok(()),
                    }
                },
            )
        };
        let mut d = Dispatcher::new(backend, Duration::from_secs(5), 8, Arc::default());
        for n in 1..=3 {
            d.dispatch(delivery("c", EventType::Start, n)).await;
        }
        until(|| log.lock().unwrap().len() == 3).await;
    }
}
