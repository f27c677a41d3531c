//! The OCI process spec of an exec, built from the container's own process as docker does.

use std::path::PathBuf;

use oci_spec::runtime::{BoxBuilder, Process as OciProcess, Spec, User};

use crate::error::{Error, Result};

/// The `type_url` containerd's `typeurl` registers the OCI process spec under; the shim refuses an
/// exec spec of any other type.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// Docker's default PATH, for an exec into a container whose spec has no process.
const DEFAULT_PATH: &str = crate::spec::DEFAULT_PATH;

/// Serialise an OCI process spec to the `Any` that `Tasks.Exec` takes.
pub(crate) fn process_to_any(process: &OciProcess) -> Result<prost_types::Any> {
    let value = serde_json::to_vec(process)
        .map_err(|e| Error::internal(format!("encode process spec as json: {e}")).with_source(e))?;
    Ok(prost_types::Any {
        type_url: PROCESS_TYPE_URL.to_string(),
        value,
    })
}

/// Start building the spec of an exec running `args` in a container with spec `base`.
///
/// The container's own process is the template, as Docker does: its env, working directory, user,
/// capabilities, rlimits, `noNewPrivileges` and security labels carry over; args, terminal and
/// console size do not.
pub fn exec_process<I, S>(base: &Spec, args: I) -> ExecProcessBuilder
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    ExecProcessBuilder {
        base: base.process().clone(),
        args: args.into_iter().map(Into::into).collect(),
        env: Vec::new(),
        cwd: None,
        user: None,
        terminal: false,
        console_size: None,
    }
}

/// Builds the OCI process spec of an exec. Setters never fail; [`ExecProcessBuilder::build`]
/// validates.
#[derive(Debug, Clone)]
pub struct ExecProcessBuilder {
    base: Option<OciProcess>,
    args: Vec<String>,
    env: Vec<String>,
    cwd: Option<String>,
    user: Option<(u32, u32)>,
    terminal: bool,
    console_size: Option<(u32, u32)>,
}

impl ExecProcessBuilder {
    /// Add or replace one `KEY=VALUE` variable (a later `KEY` replaces the container's in place).
    pub fn env(mut self, key_value: impl Into<String>) -> Self {
        self.env.push(key_value.into());
        self
    }

    /// The working directory inside the container (default: the container's); must be absolute.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Run as numeric `uid` and `gid` (default: the container's user). The container user's
    /// additional groups are dropped: they belong to that user.
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.user = Some((uid, gid));
        self
    }

    /// Give the process a terminal; also adds `TERM=xterm` unless `TERM` is set (default: no).
    pub fn terminal(mut self, yes: bool) -> Self {
        self.terminal = yes;
        self
    }

    /// The terminal's initial size in columns and rows, applied by runc before the command runs,
    /// so the command never sees a 0x0 terminal. Only used with a terminal.
    pub fn console_size(mut self, width: u32, height: u32) -> Self {
        self.console_size = Some((width, height));
        self
    }

    /// Validate the options and produce the spec. Every error is
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument).
    pub fn build(self) -> Result<OciProcess> {
        validate_args(&self.args)?;
        let mut process = self.base.unwrap_or_else(|| {
            let mut p = OciProcess::default();
            p.set_env(Some(vec![format!("PATH={DEFAULT_PATH}")]))
                .set_cwd(PathBuf::from("/"))
                .set_user(User::default())
                .set_capabilities(None)
                .set_rlimits(None)
                .set_apparmor_profile(None)
                .set_no_new_privileges(Some(true));
            p
        });

        let mut env = process.env().clone().unwrap_or_default();
        if self.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_string());
        }
        crate::spec::apply_env(&mut env, &self.env)?;

        if let Some(cwd) = &self.cwd {
            if !cwd.starts_with('/') || cwd.contains('\0') {
                return Err(Error::invalid(format!(
                    "working directory {cwd:?} must be an absolute path"
                )));
            }
            process.set_cwd(PathBuf::from(cwd));
        }
        if let Some((uid, gid)) = self.user {
            let mut user = User::default();
            user.set_uid(uid)
                .set_gid(gid)
                .set_umask(process.user().umask())
                .set_additional_gids(None)
                .set_username(None);
            process.set_user(user);
        }
        let console_size = match (self.terminal, self.console_size) {
            (true, Some((width, height))) if width > 0 && height > 0 => {
                // Box has no setters; its builder cannot fail with every field given.
                let size = BoxBuilder::default()
                    .width(u64::from(width))
                    .height(u64::from(height))
                    .build()
                    .map_err(|e| {
                        Error::internal(format!("build console size: {e}")).with_source(e)
                    })?;
                Some(size)
            }
            _ => None,
        };
        process
            .set_args(Some(self.args))
            .set_command_line(None)
            .set_env(Some(env))
            .set_terminal(Some(self.terminal))
            .set_console_size(console_size);
        Ok(process)
    }
}

fn validate_args(args: &[String]) -> Result<()> {
    match args.first() {
        None => return Err(Error::invalid("an exec needs a command")),
        Some(cmd) if cmd.is_empty() => {
            return Err(Error::invalid("the exec's command must not be empty"))
        }
        Some(_) => {}
    }
    if let Some(arg) = args.iter().find(|a| a.contains('\0')) {
        return Err(Error::invalid(format!(
            "argument {arg:?} must not contain a NUL byte"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::ErrorKind;
    use crate::spec::SpecBuilder;
    use std::path::Path;

    fn base() -> Spec {
        SpecBuilder::new("/rootfs")
            .env("FOO=container")
            .env("KEEP=1")
            .cwd("/home")
            .user(1000, 1000)
            .terminal(true)
            // Off by default (docker's default); set here so inheriting it is checked.
            .no_new_privileges(true)
            .build()
            .unwrap()
    }

    #[test]
    fn exec_spec_inherits_the_container_process() {
        let spec = base();
        let p = exec_process(&spec, ["ls", "-l"]).build().unwrap();
        assert_eq!(
            p.args().as_deref(),
            Some(&["ls".to_string(), "-l".into()][..])
        );
        assert_eq!(p.cwd(), Path::new("/home"));
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(
            p.terminal(),
            Some(false),
            "the init's terminal does not carry over"
        );
        let env = p.env().clone().unwrap();
        assert!(env.contains(&"FOO=container".to_string()), "{env:?}");
        let base = spec.process().as_ref().unwrap();
        assert_eq!(p.capabilities(), base.capabilities());
        assert_eq!(p.rlimits(), base.rlimits());
        assert_eq!(p.no_new_privileges(), Some(true));
    }

    #[test]
    fn overrides_replace_in_place() {
        let p = exec_process(&base(), ["sh"])
            .env("FOO=exec")
            .env("NEW=x")
            .cwd("/tmp")
            .user(5, 6)
            .terminal(true)
            .console_size(80, 24)
            .build()
            .unwrap();
        let env = p.env().clone().unwrap();
        assert!(env.contains(&"FOO=exec".to_string()), "{env:?}");
        assert!(!env.contains(&"FOO=container".to_string()), "{env:?}");
        assert_eq!(env.last().map(String::as_str), Some("NEW=x"));
        assert_eq!(
            env.iter().filter(|e| e.starts_with("TERM=")).count(),
            1,
            "{env:?}"
        );
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (5, 6));
        assert_eq!(p.terminal(), Some(true));
        let size = p.console_size().unwrap();
        assert_eq!((size.width(), size.height()), (80, 24));
        let any = process_to_any(&p).unwrap();
        assert_eq!(any.type_url, PROCESS_TYPE_URL);
        let json: serde_json::Value = serde_json::from_slice(&any.value).unwrap();
        assert_eq!(json["consoleSize"]["width"], 80);
        assert_eq!(json["terminal"], true);
    }

    #[test]
    fn bad_options_are_invalid_arguments() {
        let spec = base();
        let none: [&str; 0] = [];
        for builder in [
            exec_process(&spec, none),
            exec_process(&spec, [""]),
            exec_process(&spec, ["a\0b"]),
            exec_process(&spec, ["ls"]).env("NOEQUALS"),
            exec_process(&spec, ["ls"]).env("=x"),
            exec_process(&spec, ["ls"]).cwd("relative"),
        ] {
            let err = builder.build().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        }
    }

    #[test]
    fn a_spec_without_process_gets_sane_defaults() {
        let mut spec = base();
        spec.set_process(None);
        let p = exec_process(&spec, ["true"]).build().unwrap();
        assert_eq!(p.cwd(), Path::new("/"));
        assert_eq!(p.user().uid(), 0);
        assert!(p.env().as_ref().unwrap()[0].starts_with("PATH="));
    }
}
