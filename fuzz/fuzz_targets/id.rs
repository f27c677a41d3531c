//! Id parsing (`Id::new` and its `FromStr`/`TryFrom` routes) on arbitrary text.
//!
//! Checked: the library accepts exactly what containerd's rule accepts
//! (`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`, at most 76 bytes; written independently here), every route
//! agrees, an accepted id is one normal path component and a valid gRPC header value, and a refusal
//! is an InvalidArgument whose one-line message does not carry raw control characters.

#![no_main]

use std::ffi::OsStr;
use std::path::{Component, Path};

use libcontainerd::{ErrorKind, Id};
use libfuzzer_sys::fuzz_target;

fn containerd_accepts(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 76
        && s.split(['.', '_', '-'])
            .all(|run| !run.is_empty() && run.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fuzz_target!(|data: &[u8]| {
    let s = match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        // Non-UTF-8 cannot be a `str`; fuzz its lossy form instead of throwing the input away.
        Err(_) => String::from_utf8_lossy(data).into_owned(),
    };
    let result = Id::new(s.as_str());
    assert_eq!(result.is_ok(), containerd_accepts(&s), "{s:?}: {result:?}");
    assert_eq!(s.parse::<Id>().is_ok(), result.is_ok());
    assert_eq!(Id::try_from(s.clone()).is_ok(), result.is_ok());
    match result {
        Ok(id) => {
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
            let base = Path::new("/state");
            let joined = base.join(id.as_str());
            assert_eq!(joined.parent(), Some(base));
            assert_eq!(
                joined.components().last(),
                Some(Component::Normal(OsStr::new(&s)))
            );
            tonic::metadata::AsciiMetadataValue::try_from(id.as_str())
                .expect("an id is a valid header value");
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            let text = e.to_string();
            assert!(text.starts_with("invalid id"), "{text}");
            assert!(!text.contains(['\0', '\n', '\r', '\u{1b}']), "{text:?}");
        }
    }
});
