//! Getting containerd back after the stream broke: probes spaced by a capped exponential backoff, and
//! a new connection when the old channel does not recover.

use std::time::Duration;

use tokio::time::timeout;

use super::options::{MIN_BACKOFF, RPC_TIMEOUT};
use crate::client::{Client, ClientConfig};

/// Capped exponential backoff.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Backoff {
        Backoff {
            next: MIN_BACKOFF,
            max,
        }
    }

    pub(crate) fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = MIN_BACKOFF;
    }
}

/// Wait until containerd answers again. The client's channel reconnects by itself when containerd is
/// back on the same socket; if it does not, a new connection is made to the same address and
/// returned, to be used from now on.
pub(crate) async fn wait_until_serving(client: &Client, backoff: &mut Backoff) -> Option<Client> {
    loop {
        tokio::time::sleep(backoff.next()).await;
        if serves(client).await {
            return None;
        }
        if let Some(fresh) = fresh_client(client).await {
            tracing::info!(namespace = %client.namespace(), "reconnected to containerd on a new connection");
            return Some(fresh);
        }
    }
}

async fn fresh_client(client: &Client) -> Option<Client> {
    let mut config = ClientConfig::new(
        client.address(),
        client.namespace().as_str(),
        client.state_dir(),
    );
    config.connect_timeout = RPC_TIMEOUT;
    let client = Client::connect(config).await.ok()?;
    serves(&client).await.then_some(client)
}

/// Whether containerd answers a Version call on `client`'s channel.
async fn serves(client: &Client) -> bool {
    matches!(timeout(RPC_TIMEOUT, client.version()).await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(300));
        let delays: Vec<_> = (0..5).map(|_| b.next().as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 300, 300]);
        b.reset();
        assert_eq!(b.next(), MIN_BACKOFF);
    }
}
