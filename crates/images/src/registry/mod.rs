//! Talking to registries, shared by pull, push and login: docker's credentials (`auth`), the HTTP
//! client with docker's scheme and authentication rules (`http`), and `docker login`/`logout`
//! (`login`, which checks credentials against a registry and keeps them in docker's
//! `config.json` as docker does).

pub(crate) mod auth;
pub(crate) mod http;
mod login;

pub use auth::{docker_config_dir, Credentials};
pub use login::{login, logout, registry_key, LoginOptions, Logout};
