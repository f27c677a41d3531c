//! Which shim runs a container, and the runc shim's options.

use prost::Message;

/// The runc v2 shim, containerd's default runtime.
pub const RUNC_V2: &str = "io.containerd.runc.v2";

/// The type URL containerd registers for [`RuncOptions`].
pub const RUNC_OPTIONS_TYPE_URL: &str = "containerd.runc.v1.Options";

/// Options of the runc shim (`containerd.runc.v1.Options`; the proto is not part of containerd's API
/// crate, so it is declared here with the same field numbers).
#[derive(Clone, PartialEq, Message)]
pub struct RuncOptions {
    /// Disable pivot_root when creating a container.
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    /// Do not create a new session keyring for the container.
    #[prost(bool, tag = "2")]
    pub no_new_keyring: bool,
    /// Place the shim in this cgroup.
    #[prost(string, tag = "3")]
    pub shim_cgroup: String,
    /// Owner of the IO pipes.
    #[prost(uint32, tag = "4")]
    pub io_uid: u32,
    /// Group of the IO pipes.
    #[prost(uint32, tag = "5")]
    pub io_gid: u32,
    /// The runc binary (name in PATH or absolute path); empty means `runc`.
    #[prost(string, tag = "6")]
    pub binary_name: String,
    /// runc's state root.
    #[prost(string, tag = "7")]
    pub root: String,
    /// The criu binary runc runs for checkpoints and restores (containerd 1.6's shim passes it as
    /// `runc --criu`; 1.7's ignores it); empty means `criu` in the shim's `PATH`. See
    /// [`Runtime::with_criu`].
    #[prost(string, tag = "8")]
    pub criu_path: String,
    /// Use systemd to manage cgroups.
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
    /// Where criu writes checkpoint images.
    #[prost(string, tag = "10")]
    pub criu_image_path: String,
    /// Where criu keeps its work files.
    #[prost(string, tag = "11")]
    pub criu_work_path: String,
}

/// A shim name plus its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    /// Shim name, e.g. [`RUNC_V2`].
    pub name: String,
    /// Options for the runc shim; `None` sends none.
    pub options: Option<RuncOptions>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            name: RUNC_V2.to_string(),
            options: Some(RuncOptions::default()),
        }
    }
}

impl Runtime {
    /// Another shim, by its runtime name (`io.containerd.runsc.v1`), without options: containerd
    /// runs the shim binary [`shim_binary_name`] gives.
    pub fn shim(name: impl Into<String>) -> Self {
        Runtime {
            name: name.into(),
            options: None,
        }
    }

    /// The OCI runtime binary the runc shim runs (`runc` unless [`RuncOptions::binary_name`] says
    /// otherwise); `None` for other shims.
    pub fn oci_binary(&self) -> Option<&str> {
        if self.name != RUNC_V2 {
            return None;
        }
        match self.options.as_ref().map(|o| o.binary_name.as_str()) {
            Some(name) if !name.is_empty() => Some(name),
            _ => Some("runc"),
        }
    }

    /// The runc v2 shim using the runc binary `binary` (e.g. a wrapper script).
    pub fn runc_binary(binary: impl Into<String>) -> Self {
        Runtime {
            name: RUNC_V2.to_string(),
            options: Some(RuncOptions {
                binary_name: binary.into(),
                ..RuncOptions::default()
            }),
        }
    }

    /// The same runtime with runc running the criu binary at `criu` (an absolute path) for
    /// checkpoints and restores of its containers, instead of `criu` in the shim's (containerd's)
    /// `PATH`. Sets [`RuncOptions::criu_path`], starting from default options if there were none.
    /// containerd 1.6's runc shim passes it to runc (`runc --criu`); 1.7's ignores it (runc 1.2
    /// deprecates `--criu`), so there criu must be in containerd's `PATH`.
    pub fn with_criu(mut self, criu: impl Into<String>) -> Self {
        self.options
            .get_or_insert_with(RuncOptions::default)
            .criu_path = criu.into();
        self
    }

    pub(crate) fn to_proto(&self) -> containerd_client::services::v1::container::Runtime {
        containerd_client::services::v1::container::Runtime {
            name: self.name.clone(),
            options: self.options.as_ref().map(|o| prost_types::Any {
                type_url: RUNC_OPTIONS_TYPE_URL.to_string(),
                value: o.encode_to_vec(),
            }),
        }
    }

    pub(crate) fn from_proto(
        proto: Option<&containerd_client::services::v1::container::Runtime>,
    ) -> Runtime {
        match proto {
            None => Runtime {
                name: String::new(),
                options: None,
            },
            Some(r) => Runtime {
                name: r.name.clone(),
                options: r
                    .options
                    .as_ref()
                    .filter(|any| any.type_url.trim_start_matches('/') == RUNC_OPTIONS_TYPE_URL)
                    .and_then(|any| RuncOptions::decode(any.value.as_slice()).ok()),
            },
        }
    }
}

/// The shim binary containerd runs for runtime `name`, by containerd's naming rule: the last two
/// dot-separated parts, `io.containerd.runsc.v1` -> `containerd-shim-runsc-v1`. `None` for a name
/// containerd takes for a path (it contains `/`) or cannot map (no dot, or a leading one).
pub fn shim_binary_name(name: &str) -> Option<String> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [.., kind, version] => Some(format!("containerd-shim-{kind}-{version}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_options_round_trip_through_the_container_record() {
        let runtime = Runtime::runc_binary("/usr/local/bin/my-runc");
        let proto = runtime.to_proto();
        assert_eq!(proto.name, RUNC_V2);
        assert_eq!(
            proto.options.as_ref().map(|a| a.type_url.as_str()),
            Some(RUNC_OPTIONS_TYPE_URL)
        );
        assert_eq!(Runtime::from_proto(Some(&proto)), runtime);
    }

    #[test]
    fn criu_path_is_field_eight_on_the_wire() {
        let runtime = Runtime::default().with_criu("/c");
        let options = runtime.options.as_ref().unwrap();
        assert_eq!(options.encode_to_vec(), vec![0x42, 2, b'/', b'c']);
        let none = Runtime {
            name: RUNC_V2.into(),
            options: None,
        };
        assert_eq!(none.with_criu("/c"), runtime);
    }

    #[test]
    fn shim_binaries_follow_containerds_naming_rule() {
        assert_eq!(
            shim_binary_name(RUNC_V2).as_deref(),
            Some("containerd-shim-runc-v2")
        );
        assert_eq!(
            shim_binary_name("io.containerd.runsc.v1").as_deref(),
            Some("containerd-shim-runsc-v1")
        );
        assert_eq!(
            shim_binary_name("kata.v2").as_deref(),
            Some("containerd-shim-kata-v2")
        );
        for not_a_shim in ["crun", "/usr/bin/crun", ".x.v1", "", "a/b.v1"] {
            assert_eq!(shim_binary_name(not_a_shim), None, "{not_a_shim}");
        }
    }

    #[test]
    fn the_oci_binary_is_runc_unless_named() {
        assert_eq!(Runtime::default().oci_binary(), Some("runc"));
        assert_eq!(
            Runtime::runc_binary("/usr/bin/crun").oci_binary(),
            Some("/usr/bin/crun")
        );
        assert_eq!(Runtime::shim("io.containerd.runsc.v1").oci_binary(), None);
    }

    #[test]
    fn binary_name_is_field_six_on_the_wire() {
        let bytes = RuncOptions {
            binary_name: "x".into(),
            ..Default::default()
        }
        .encode_to_vec();
        // tag 6, wire type 2 (length-delimited) = 0x32, length 1, 'x'
        assert_eq!(bytes, vec![0x32, 1, b'x']);
    }
}
