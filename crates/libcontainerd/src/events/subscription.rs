//! containerd's side of the monitor's subscription: the filters, the private topic its sync markers
//! travel on, and the Subscribe call.
//!
//! Why markers: containerd 1.6 only answers a Subscribe with its first event, so the monitor publishes
//! a marker to a topic of its own and waits to read it back; from then on everything published reaches
//! the stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::{PublishRequest, SubscribeRequest};
use containerd_client::types::Envelope;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tonic::codec::Streaming;

use super::options::RPC_TIMEOUT;
use crate::client::{Client, MAX_MESSAGE_SIZE};
use crate::error::{Error, Result};

/// The monitor's private marker topic. Outside `/tasks/`, so subscribers of task events (Docker, `ctr
/// events`, other monitors) never see the markers.
const SYNC_TOPIC: &str = "/libcontainerd/sync";
/// The markers' payload type; the payload is the marker number (u64, little endian).
const SYNC_TYPE_URL: &str = "libcontainerd.events.Sync";
/// How often an unanswered marker is published again: one published before containerd registered the
/// subscription is lost.
pub(crate) const REPUBLISH: Duration = Duration::from_millis(100);
/// The first marker waits this long, so that containerd has usually registered the subscription
/// (a millisecond's work) and the first marker is not wasted.
pub(crate) const FIRST_MARKER: Duration = Duration::from_millis(5);

/// What containerd is asked for: this namespace's task events and this monitor's markers.
pub(crate) struct Subscription {
    sync_topic: String,
    filters: Vec<String>,
}

impl Subscription {
    pub(crate) fn new(namespace: &str) -> Subscription {
        let sync_topic = format!("{SYNC_TOPIC}/{}", monitor_token());
        Subscription {
            filters: filters(namespace, &sync_topic),
            sync_topic,
        }
    }

    /// Whether `envelope` is one of this monitor's markers (whatever its payload).
    pub(crate) fn is_marker(&self, envelope: &Envelope) -> bool {
        envelope.topic == self.sync_topic
    }

    /// Subscribe on `client`. Runs in a task of its own, aborted when the handle is dropped, since on
    /// containerd 1.6 the call returns only when the first event arrives (the session publishes
    /// markers meanwhile).
    pub(crate) fn subscribe(&self, client: &Client) -> AbortOnDrop<Result<Streaming<Envelope>>> {
        AbortOnDrop(tokio::spawn(subscribe(
            client.clone(),
            self.filters.clone(),
        )))
    }

    /// Publish marker number `marker`. Best effort: a marker that does not come back is published
    /// again on the next tick.
    pub(crate) async fn publish_marker(&self, client: &Client, marker: u64) {
        let request = client.request(PublishRequest {
            topic: self.sync_topic.clone(),
            event: Some(prost_types::Any {
                type_url: SYNC_TYPE_URL.to_string(),
                value: marker.to_le_bytes().to_vec(),
            }),
        });
        let mut events = EventsClient::new(client.channel());
        match timeout(RPC_TIMEOUT, events.publish(request)).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => {
                tracing::debug!(error = %status.message(), "publishing a sync marker failed")
            }
            Err(_) => tracing::debug!("publishing a sync marker timed out"),
        }
    }
}

/// A marker's number, unless the payload is malformed.
pub(crate) fn parse_marker(envelope: &Envelope) -> Option<u64> {
    let any = envelope.event.as_ref()?;
    let bytes: [u8; 8] = any.value.as_slice().try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Aborts a spawned task when dropped: the pending Subscribe call must not outlive its session.
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
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

async fn subscribe(client: Client, filters: Vec<String>) -> Result<Streaming<Envelope>> {
    EventsClient::new(client.channel())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .subscribe(client.request(SubscribeRequest { filters }))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| Error::from_status("subscribe to containerd events", s))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::id::Id;

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
