//! The registry's credentials, now shared with push and login: see [`crate::registry::auth`].
//! (This shim keeps pull's `auth::` paths; it can go when pull names `crate::registry` itself.)

pub use crate::registry::auth::*;
