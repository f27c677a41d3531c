//! A container's new name on its network. The name other containers on a user-defined network
//! reach it by comes with its [`Request`], which the engine hands over at every attach (lcd: from
//! the container's spec, which a rename does not change). A rename is therefore kept beside the
//! container's files, where every later attach finds it, and an attached container's record and
//! its network's hosts files take the new name at once.

use std::fs;

use crate::attach::read_record;
use crate::error::Result;
use crate::files::write_atomic;
use crate::request::Request;
use crate::Networks;

/// The file in a container's files dir that holds the name it was last renamed to.
const NAME_FILE: &str = "name";

impl Networks {
    /// Container `id` of `namespace` is now called `name`: its attachment (if it is attached) and
    /// every hosts file of its network say so now, and its later attachments use the name. A
    /// container without files or attachment (no network) is left as it is.
    pub fn rename(&self, namespace: &str, id: &str, name: &str) -> Result<()> {
        let _lock = self.lock()?;
        let dir = self.files_dir(namespace, id);
        if dir.is_dir() {
            write_atomic(&dir.join(NAME_FILE), name.as_bytes())?;
        }
        let record = self.record_path(namespace, id);
        if let Some(mut attachment) = read_record(&record)? {
            attachment.request.name = name.to_string();
            self.write_record(&record, &attachment)?;
            if let Some(network) = attachment.request.mode.network() {
                self.refresh_hosts(network)?;
            }
        }
        Ok(())
    }

    /// `request` with the name its container was last renamed to, if it was.
    pub(crate) fn with_current_name(&self, request: &Request) -> Request {
        let file = self
            .files_dir(&request.namespace, &request.container_id)
            .join(NAME_FILE);
        match fs::read_to_string(file) {
            Ok(name) if !name.is_empty() => Request {
                name,
                ..request.clone()
            },
            _ => request.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Config, Mode};

    fn request(name: &str) -> Request {
        Request {
            namespace: "ns".into(),
            container_id: "c1".into(),
            name: name.into(),
            hostname: "c1".into(),
            mode: Mode::None,
            ports: Vec::new(),
            dns: Vec::new(),
            extra_hosts: Vec::new(),
        }
    }

    #[test]
    fn a_rename_reaches_later_attachments_and_goes_with_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let networks = Networks::new(Config::new(dir.path()));
        // No files, no attachment: nothing to rename, and nothing is made.
        networks.rename("ns", "c1", "web").unwrap();
        assert_eq!(networks.with_current_name(&request("c1")).name, "c1");
        networks.write_files(&request("c1")).unwrap();
        networks.rename("ns", "c1", "web").unwrap();
        assert_eq!(networks.with_current_name(&request("c1")).name, "web");
        networks.remove_files("ns", "c1").unwrap();
        assert_eq!(networks.with_current_name(&request("c1")).name, "c1");
    }
}
