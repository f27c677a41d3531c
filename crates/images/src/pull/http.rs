//! The registry client, now shared with push and login: see [`crate::registry::http`].
//! (This shim keeps pull's `http::` paths; it can go when pull names `crate::registry` itself.)

pub(crate) use crate::registry::http::*;
