//! sha256 digests as containerd spells them (`sha256:<hex>`), hashing as bytes stream past, and
//! the chain IDs that name unpacked layers.

use libcontainerd::{Error, Result};
use sha2::{Digest as _, Sha256};

/// The only algorithm images use in practice; others are refused with a clear error.
pub const SHA256_PREFIX: &str = "sha256:";

/// Hash bytes as they stream past; [`Hasher::digest`] gives `sha256:<hex>`.
#[derive(Clone, Default)]
pub(crate) struct Hasher(Sha256);

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn digest(&self) -> String {
        format!("{SHA256_PREFIX}{}", hex(&self.0.clone().finalize()))
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let mut hasher = Hasher::default();
    hasher.update(data);
    hasher.digest()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Check that `digest` is a well-formed sha256 digest; `what` names it in the error.
pub fn check(digest: &str, what: &str) -> Result<()> {
    crate::reference::check_digest(digest)
        .map_err(|why| Error::invalid(format!("{what}: {why}")))?;
    if !digest.starts_with(SHA256_PREFIX) {
        return Err(Error::invalid(format!(
            "{what}: digest {digest:?} is not sha256, the only algorithm supported"
        )));
    }
    Ok(())
}

/// Chain IDs of a layer stack from its diff IDs: the first is the first diff ID, each next one is
/// `sha256(previous + " " + diffID)`. They name the committed snapshots, so equal stacks share them.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => sha256(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], sha256(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn check_refuses_other_algorithms() {
        assert!(check(&sha256(b"x"), "blob").is_ok());
        let e = check(&format!("sha512:{}", "a".repeat(128)), "blob x").unwrap_err();
        assert!(e.to_string().starts_with("blob x: "), "{e}");
        assert!(check("sha256:zz", "blob").is_err());
    }
}
