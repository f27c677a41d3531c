//! Leases: what an import or unpack creates stays out of containerd's garbage collector until the
//! lease goes, by which time the image record and GC labels hold it. A failure deletes the lease
//! synchronously, so its half-made content and snapshots are collected at once; a crash leaves the
//! lease to expire (`containerd.io/gc.expire`).
//!
//! A lease whose deletion could not be done (containerd was down, or the future holding it was
//! dropped) is remembered in this process: the next lease created in the same namespace deletes
//! it first (so the retry after a containerd restart cleans up what the failed attempt left), and
//! [`flush`] deletes the remembered ones before a process exits (e.g. `lcd pull` on Ctrl-C).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::{CreateRequest, DeleteRequest};
use libcontainerd::{Client, Result};

use crate::grpc::Services;

/// Label after which containerd's garbage collector drops a lease.
pub const GC_EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// How long a lease outlives a client that crashed while holding it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A containerd lease, deleted by [`Lease::release`] or [`Lease::discard`], or (as a last resort,
/// e.g. when the future holding it is dropped) in the background when it is dropped.
#[derive(Debug)]
pub struct Lease {
    services: Services,
    id: String,
    done: bool,
}

impl Lease {
    /// Create a lease for `purpose` (part of its id) that expires after `ttl` if never deleted.
    pub async fn create(client: &Client, purpose: &str, ttl: Duration) -> Result<Lease> {
        Lease::create_with(&Services::new(client)?, purpose, ttl).await
    }

    pub(crate) async fn create_with(
        services: &Services,
        purpose: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let services = services.unleased();
        delete_pending(&services).await;
        let id = unique_name(purpose);
        let expire = libcontainerd::time::rfc3339(SystemTime::now() + ttl);
        let labels = HashMap::from([(GC_EXPIRE_LABEL.to_string(), expire)]);
        services
            .leases()
            .create(services.request(CreateRequest {
                id: id.clone(),
                labels,
            }))
            .await
            .map_err(|s| libcontainerd::raw::error_from_status(format!("create lease {id}"), s))?;
        Ok(Lease {
            services,
            id,
            done: false,
        })
    }

    /// The lease id (what the `containerd-lease` header carries).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Services whose requests run under this lease.
    pub(crate) fn services(&self) -> Result<Services> {
        self.services.leased(&self.id)
    }

    /// Delete the lease: what it held is kept only if something else references it.
    pub async fn release(mut self) -> Result<()> {
        self.done = true;
        let result = delete(&self.services, &self.id, false).await;
        if result.is_err() {
            remember(&self.services, &self.id);
        }
        result
    }

    /// Delete the lease after a failure, with a synchronous garbage collection so that what it
    /// held is gone when this returns. Errors are logged: the failure being handled matters more.
    pub async fn discard(mut self) {
        self.done = true;
        if let Err(e) = delete(&self.services, &self.id, true).await {
            tracing::warn!(lease = %self.id, error = %e, "deleting a lease after a failure");
            remember(&self.services, &self.id);
        }
    }
}

/// Leases this process failed to delete, or dropped: (namespace, id).
static PENDING: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<(String, String)>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

fn remember(services: &Services, id: &str) {
    let entry = (services.namespace().to_string(), id.to_string());
    let mut pending = pending();
    if !pending.contains(&entry) {
        pending.push(entry);
    }
}

fn forget(services: &Services, id: &str) {
    let namespace = services.namespace();
    pending().retain(|(n, i)| !(n == namespace && i == id));
}

/// Delete (with a synchronous GC) the leases of `services`' namespace that this process failed to
/// delete before; those that still fail stay remembered.
async fn delete_pending(services: &Services) {
    let namespace = services.namespace().to_string();
    let ids: Vec<String> = pending()
        .iter()
        .filter(|(n, _)| *n == namespace)
        .map(|(_, i)| i.clone())
        .collect();
    for id in ids {
        match delete(services, &id, true).await {
            Ok(()) => forget(services, &id),
            Err(e) => tracing::warn!(lease = %id, error = %e, "deleting a stale lease"),
        }
    }
}

/// Delete, with a synchronous GC, every lease of `client`'s namespace that this process dropped
/// or failed to delete: what a cancelled pull or import had made is gone when this returns. For a
/// process about to exit after cancelling an operation (a dropped lease is otherwise deleted in
/// the background, which an exiting process does not wait for).
pub async fn flush(client: &Client) -> Result<()> {
    let services = Services::new(client)?;
    delete_pending(&services).await;
    match pending().iter().find(|(n, _)| n == services.namespace()) {
        Some((_, id)) => Err(libcontainerd::Error::new(
            libcontainerd::ErrorKind::Unavailable,
            format!("lease {id} could not be deleted; it expires by itself"),
        )),
        None => Ok(()),
    }
}

async fn delete(services: &Services, id: &str, sync: bool) -> Result<()> {
    let result = services
        .leases()
        .delete(services.request(DeleteRequest {
            id: id.to_string(),
            sync,
        }))
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(libcontainerd::raw::error_from_status(
            format!("delete lease {id}"),
            s,
        )),
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropped without release (a cancelled future or a panic): remembered for [`flush`] and
        // the next lease, and deleted in the background if a runtime is there; otherwise
        // gc.expire frees it later.
        let (services, id) = (self.services.clone(), self.id.clone());
        remember(&services, &id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                match delete(&services, &id, true).await {
                    Ok(()) => forget(&services, &id),
                    Err(e) => tracing::warn!(lease = %id, error = %e, "deleting a dropped lease"),
                }
            });
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and moment: `<prefix>-<time>-<pid>-<n>` (leases, ingest refs,
/// temporary snapshot keys).
pub(crate) fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
