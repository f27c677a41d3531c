//! An image's container defaults and docker's rules for combining them with `docker run`'s flags.
//!
//! Pure functions: the caller parses its flags, these say what the container runs with.

use std::collections::BTreeMap;

use libcontainerd::{Error, Result};
use serde::Serialize;

pub use crate::oci::ContainerConfig;
use crate::oci::ImageConfigFile;
use crate::platform::Platform;

/// docker's PATH for a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a container needs from its image, nulls resolved to empties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ImageConfig {
    /// The image's platform.
    pub platform: Platform,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Entrypoint (may be empty).
    pub entrypoint: Vec<String>,
    /// Cmd (may be empty).
    pub cmd: Vec<String>,
    /// Working directory, empty when unset.
    pub working_dir: String,
    /// User, empty when unset (root).
    pub user: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Stop signal, if set.
    pub stop_signal: Option<String>,
    /// Exposed ports, e.g. `80/tcp`.
    pub exposed_ports: Vec<String>,
    /// Volume paths.
    pub volumes: Vec<String>,
    /// The layers' diff IDs.
    pub diff_ids: Vec<String>,
    /// When the image was built.
    pub created: Option<String>,
    /// Who made it, empty when unset.
    pub author: String,
    /// The message of its last step (`docker commit -m`), as docker's inspect shows Comment.
    pub comment: String,
}

impl ImageConfig {
    /// From the image's config document.
    pub fn from_file(file: &ImageConfigFile) -> ImageConfig {
        let c = file.config.clone().unwrap_or_default();
        ImageConfig {
            platform: file.platform(),
            env: c.env.unwrap_or_default(),
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
            stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            diff_ids: file.rootfs.diff_ids.clone(),
            created: file.created.clone(),
            author: file.author.clone().unwrap_or_default(),
            comment: file
                .history
                .last()
                .and_then(|h| h.comment.clone())
                .unwrap_or_default(),
        }
    }

    /// Parse an image config document.
    pub fn parse(data: &[u8]) -> Result<ImageConfig> {
        let file: ImageConfigFile = crate::oci::parse("image config", data)?;
        Ok(ImageConfig::from_file(&file))
    }
}

/// The process's argv by docker's rules. `entrypoint` is `--entrypoint` (`Some(&[])` for
/// `--entrypoint ""`, which clears it); `args` are the words after the image name. Overriding the
/// entrypoint drops the image's Cmd too, so `--entrypoint sh img` runs plain `sh`.
pub fn process_args(
    image: &ImageConfig,
    entrypoint: Option<&[String]>,
    args: &[String],
) -> Result<Vec<String>> {
    let (entrypoint, cmd): (&[String], &[String]) = match entrypoint {
        Some(entrypoint) => (entrypoint, args),
        None if args.is_empty() => (&image.entrypoint, &image.cmd),
        None => (&image.entrypoint, args),
    };
    let argv: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if argv.is_empty() {
        return Err(Error::invalid(
            "no command specified: the image has no Entrypoint or Cmd; give a command after the image name",
        ));
    }
    Ok(argv)
}

/// The environment by docker's rules: the image's entries, each `-e KEY=value` replacing the
/// image's `KEY` or appended; docker's default PATH when neither sets one.
pub fn process_env(image_env: &[String], overrides: &[String]) -> Vec<String> {
    let key = |entry: &str| entry.split('=').next().unwrap_or_default().to_string();
    let mut env: Vec<String> = Vec::with_capacity(image_env.len() + overrides.len() + 1);
    for entry in image_env.iter().chain(overrides) {
        let k = key(entry);
        match env.iter_mut().find(|e| key(e) == k) {
            Some(existing) => *existing = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    if !env.iter().any(|e| key(e) == "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// The working directory: `-w` if given, else the image's, else `/`.
pub fn process_cwd(image: &ImageConfig, workdir: Option<&str>) -> String {
    match workdir.filter(|w| !w.is_empty()) {
        Some(w) => w.to_string(),
        None if image.working_dir.is_empty() => "/".to_string(),
        None => image.working_dir.clone(),
    }
}

/// The user spec: `-u` if given, else the image's (empty means root).
pub fn process_user<'a>(image: &'a ImageConfig, user: Option<&'a str>) -> &'a str {
    user.unwrap_or(&image.user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        ImageConfig {
            entrypoint: v(entrypoint),
            cmd: v(cmd),
            ..Default::default()
        }
    }

    #[test]
    fn args_follow_docker() {
        let img = image(&["/entry"], &["default"]);
        assert_eq!(
            process_args(&img, None, &[]).unwrap(),
            v(&["/entry", "default"])
        );
        assert_eq!(
            process_args(&img, None, &v(&["x"])).unwrap(),
            v(&["/entry", "x"])
        );
        // --entrypoint drops the image's Cmd.
        assert_eq!(
            process_args(&img, Some(&v(&["sh"])), &[]).unwrap(),
            v(&["sh"])
        );
        assert_eq!(
            process_args(&img, Some(&v(&["sh"])), &v(&["-c", "id"])).unwrap(),
            v(&["sh", "-c", "id"])
        );
        // --entrypoint "" clears it: the args alone run.
        assert_eq!(
            process_args(&img, Some(&[]), &v(&["ls"])).unwrap(),
            v(&["ls"])
        );
        let cmd_only = image(&[], &["sh"]);
        assert_eq!(
            process_args(&cmd_only, None, &v(&["ls", "/"])).unwrap(),
            v(&["ls", "/"])
        );
        let e = process_args(&image(&[], &[]), None, &[]).unwrap_err();
        assert!(e.to_string().starts_with("no command specified"), "{e}");
        assert!(process_args(&img, Some(&[]), &[]).is_err());
    }

    #[test]
    fn env_merges_and_defaults_path() {
        let env = process_env(&v(&["A=1", "B=2"]), &v(&["B=3", "C=4"]));
        assert_eq!(
            env,
            v(&[&format!("PATH={DEFAULT_PATH}"), "A=1", "B=3", "C=4"])
        );
        let env = process_env(&v(&["PATH=/x"]), &[]);
        assert_eq!(env, v(&["PATH=/x"]));
        let env = process_env(&v(&["PATH=/x"]), &v(&["PATH=/y"]));
        assert_eq!(env, v(&["PATH=/y"]));
    }

    #[test]
    fn cwd_and_user() {
        let mut img = image(&[], &["sh"]);
        assert_eq!(process_cwd(&img, None), "/");
        img.working_dir = "/app".into();
        assert_eq!(process_cwd(&img, None), "/app");
        assert_eq!(process_cwd(&img, Some("/w")), "/w");
        img.user = "app".into();
        assert_eq!(process_user(&img, None), "app");
        assert_eq!(process_user(&img, Some("0")), "0");
    }

    #[test]
    fn parse_docker_config_with_nulls() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Entrypoint":null,"Cmd":["sh"],"WorkingDir":"","User":"app","ExposedPorts":{"80/tcp":{}},"Labels":null,"StopSignal":"SIGQUIT"},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let c = ImageConfig::parse(json).unwrap();
        assert_eq!(c.platform.to_string(), "linux/amd64");
        assert_eq!(c.cmd, v(&["sh"]));
        assert!(c.entrypoint.is_empty());
        assert_eq!(c.user, "app");
        assert_eq!(c.exposed_ports, v(&["80/tcp"]));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.diff_ids, v(&["sha256:aa"]));
        assert!(ImageConfig::parse(b"[")
            .unwrap_err()
            .to_string()
            .starts_with("parse image config"));
    }
}
