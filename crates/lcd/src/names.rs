//! docker's container names on containerd's ids. A container's containerd id never changes (its
//! task, cgroup, bundle dir, snapshot, runc state, log and checkpoints are keyed by it), and in lcd
//! `--name web` makes the id `web`. A rename therefore keeps the id and records the new name in
//! the [`LABEL_NAME`] label (nerdctl keeps its names in a label too); the label is present only
//! while the name differs from the id.
//!
//! What a string given to a command means, in order: the container whose current name it is, else
//! the container whose id it is, else the one container whose id starts with it. After
//! `rename web web-old`, `run --name web` makes a container with a generated id and the name
//! `web`, and from then on `web` means that one; until then `web` still finds the renamed container
//! by its id, which `ps` shows in its CONTAINER ID column (and which `lcd rm -f $(lcd ps -aq)`
//! passes).
//!
//! A name is taken while it is another container's current name; an id whose container has been
//! renamed away from it can be taken as a name. Every step that makes a name taken (a create, a
//! rename) checks and takes it under the name's lock (the container lock of that string, see
//! [`crate::container_lock`]), so that two of them never give one name to two containers.

use std::collections::HashMap;

use anyhow::{bail, Result};
use libcontainerd::{Client, Container, ContainerInfo, Id};

use crate::container_lock::ContainerLock;
use crate::context::Ctx;
use crate::cri;

/// A container's name when it differs from its id (set by `rename`, or by a create whose name was
/// the id of a renamed container).
pub const LABEL_NAME: &str = "io.lcd.name";

/// A container's current name: its name label, else a Kubernetes container's name, else its id.
pub fn name_of(id: &str, labels: &HashMap<String, String>) -> String {
    match labels.get(LABEL_NAME) {
        Some(name) => name.clone(),
        None if cri::Kube::of(labels).is_some() => cri::name_of(labels),
        None => id.to_string(),
    }
}

/// Whether a container's name is no longer its id, so that its id may be another's name.
fn renamed(id: &str, labels: &HashMap<String, String>) -> bool {
    labels.get(LABEL_NAME).is_some_and(|name| name != id)
}

/// A name for `--name` or `rename`: what containerd takes as an id (letters, digits and single
/// `.`, `_` or `-` between them), since a name may become its container's id.
pub fn check(name: &str) -> Result<Id> {
    Id::new(name).map_err(|_| {
        anyhow::anyhow!(
            "invalid container name {name:?}: only letters, digits and single '.', '_' or '-' between them are allowed"
        )
    })
}

/// containerd's filter for the containers whose name label is `name` (a valid id: nothing in it
/// needs escaping inside quotes).
fn label_filter(name: &str) -> String {
    format!(r#"labels."{LABEL_NAME}"=="{name}""#)
}

/// containerd's filter for the containers whose id starts with `prefix` (a valid id: `.` is the
/// only character a regular expression reads specially; the backslash is doubled for the quotes).
fn prefix_filter(prefix: &str) -> String {
    format!(r#"id~="^{}""#, prefix.replace('.', r"\\."))
}

/// After `given` named a container by its exact id (`exact`), the id of the container it means
/// instead, if any: one whose name is `given`. Only a container renamed away from its id needs the
/// look (without a name label, the id is its name and no other container can hold it), so the
/// common lookup stays one RPC.
pub async fn named_instead(client: &Client, given: &str, exact: &Container) -> Result<Option<Id>> {
    if !renamed(exact.id().as_str(), exact.labels()) {
        return Ok(None);
    }
    let holders = client
        .list_containers_matching(&[label_filter(given)])
        .await?;
    Ok(only_holder(given, holders)?.map(|c| c.id))
}

/// The container `given` means when no container has it as its id: the one named `given`, else
/// the one whose id starts with it (one listing, selected by containerd). None found is `missing`.
pub async fn find(client: &Client, given: &str, missing: libcontainerd::Error) -> Result<Id> {
    let found = client
        .list_containers_matching(&[label_filter(given), prefix_filter(given)])
        .await?;
    let (named, prefixed): (Vec<_>, Vec<_>) = found
        .into_iter()
        .partition(|c| c.labels.get(LABEL_NAME).map(String::as_str) == Some(given));
    if let Some(holder) = only_holder(given, named)? {
        return Ok(holder.id);
    }
    match starting_with(prefixed.iter().map(|c| c.id.as_str()), given).as_slice() {
        [] => Err(missing.into()),
        [one] => Ok(Id::new(*one)?),
        several => bail!(
            "multiple containers match {given:?}: {}; give more of the id",
            several.join(", ")
        ),
    }
}

/// The ids among `ids` that start with `prefix`, sorted.
fn starting_with<'a>(ids: impl IntoIterator<Item = &'a str>, prefix: &str) -> Vec<&'a str> {
    let mut found: Vec<&str> = ids
        .into_iter()
        .filter(|id| id.starts_with(prefix))
        .collect();
    found.sort_unstable();
    found
}

/// The one container of `holders` (those labelled with `name`); two would be a name given twice,
/// which lcd never does, but another client might.
fn only_holder(name: &str, mut holders: Vec<ContainerInfo>) -> Result<Option<ContainerInfo>> {
    match holders.len() {
        0 => Ok(None),
        1 => Ok(holders.pop()),
        _ => {
            let mut ids: Vec<&str> = holders.iter().map(|c| c.id.as_str()).collect();
            ids.sort_unstable();
            bail!(
                "multiple containers are named {name:?}: {}; rename or remove all but one",
                ids.join(", ")
            )
        }
    }
}

/// A name held for a create or a rename: its lock, taken after the check that no other container
/// has the name.
#[derive(Debug)]
pub struct Reservation {
    lock: ContainerLock,
    /// Whether a container has the name as its id (one renamed away from it, or the renaming
    /// container itself).
    id_taken: bool,
}

impl Reservation {
    /// Whether a new container can take the name as its id.
    pub fn id_is_free(&self) -> bool {
        !self.id_taken
    }

    /// The lock, which is the lock of the container that gets the name as its id.
    pub fn into_lock(self) -> ContainerLock {
        self.lock
    }

    /// The name is recorded (or given up): release its lock, and remove the lock file unless a
    /// container's id is the name (the file is that container's lock, see [`crate::container_lock`]).
    pub fn release(self) {
        if self.id_taken {
            drop(self.lock);
        } else {
            self.lock.remove();
        }
    }
}

/// Take `name`'s lock and check that no container other than `owner` (a container being renamed)
/// has it as its current name. Refused with docker's conflict error.
pub async fn reserve(
    ctx: &Ctx,
    client: &Client,
    name: &Id,
    owner: Option<&Id>,
) -> Result<Reservation> {
    let lock = ContainerLock::acquire(ctx, name.as_str()).await?;
    let filters = [label_filter(name.as_str()), format!(r#"id=="{name}""#)];
    let found = match client.list_containers_matching(&filters).await {
        Ok(found) => found,
        Err(e) => {
            release_unused(lock, client, name).await;
            return Err(e.into());
        }
    };
    let id_taken = found.iter().any(|c| &c.id == name);
    let holder = found
        .iter()
        .filter(|c| Some(&c.id) != owner)
        .find(|c| name_of(c.id.as_str(), &c.labels) == name.as_str());
    if let Some(holder) = holder {
        let reservation = Reservation { lock, id_taken };
        reservation.release();
        bail!(
            "conflict: the container name \"/{name}\" is already in use by container {}; remove (or rename) that container to be able to reuse that name",
            holder.id
        );
    }
    Ok(Reservation { lock, id_taken })
}

/// Release a name lock nothing was decided under: its file goes unless a container's id is the
/// name.
async fn release_unused(lock: ContainerLock, client: &Client, name: &Id) {
    match client.load_container(name).await {
        Err(e) if e.kind() == libcontainerd::ErrorKind::NotFound => lock.remove(),
        _ => drop(lock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_label_else_the_id() {
        let mut labels = HashMap::new();
        assert_eq!(name_of("web", &labels), "web");
        assert!(!renamed("web", &labels));
        labels.insert(LABEL_NAME.to_string(), "front".to_string());
        assert_eq!(name_of("web", &labels), "front");
        assert!(renamed("web", &labels));
        labels.insert(LABEL_NAME.to_string(), "web".to_string());
        assert!(!renamed("web", &labels));
    }

    #[test]
    fn ids_match_by_prefix() {
        let ids = ["f503bb", "f502aa", "web", "webapp"];
        assert_eq!(starting_with(ids, "f502"), ["f502aa"]);
        assert_eq!(starting_with(ids, "f50"), ["f502aa", "f503bb"]);
        assert_eq!(starting_with(ids, "web"), ["web", "webapp"]);
        assert!(starting_with(ids, "zz").is_empty());
    }

    #[test]
    fn filters_quote_names_and_escape_prefixes() {
        assert_eq!(label_filter("db.1"), r#"labels."io.lcd.name"=="db.1""#);
        assert_eq!(prefix_filter("a.b-c"), r#"id~="^a\\.b-c""#);
    }

    #[test]
    fn names_follow_containerds_id_rule() {
        assert!(check("web-1.a_b").is_ok());
        assert!(check("x").is_ok());
        for bad in ["bad/name", "-x", "a..b", "", "a b"] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid container name"), "{err}");
        }
    }
}
