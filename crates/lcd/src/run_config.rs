//! The docker `Config` of a container made from an image, which `commit` turns into the new
//! image's defaults as docker does: the image's Entrypoint, Cmd, Env, WorkingDir and User with
//! what `run`/`create` overrode (`--entrypoint`, the command, `-e`, `-w`, `-u`, recorded at create
//! in a label, since the spec keeps only their result), the image's labels with the container's
//! own, and its stop signal.
//!
//! A container without the label (made by an older lcd, or whose overrides exceed containerd's
//! label size) gets them from its spec: the command it runs as Cmd (split from the image's
//! Entrypoint where it starts with it), its environment without what lcd adds at run time
//! (HOSTNAME, TERM, the default PATH), its working directory, and the image's User.

use std::collections::{BTreeMap, HashMap};

use libcontainerd::oci_spec::runtime::Spec;
use libcontainerd_images::config::DEFAULT_PATH;
use libcontainerd_images::{ContainerConfig, ImageConfig, RunOptions};
use serde::{Deserialize, Serialize};

use crate::options::{host_config, LABEL_STOP_SIGNAL};

/// The overrides `create` was given, as JSON (docker's key names).
pub const LABEL_RUN_CONFIG: &str = "io.lcd.run-config";

/// containerd refuses a label whose key and value together exceed this.
const MAX_LABEL_BYTES: usize = 4096;

/// Label prefixes that are lcd's, containerd's or Kubernetes' bookkeeping, not the user's.
const INTERNAL_LABELS: [&str; 5] = [
    "io.lcd.",
    "io.libcontainerd.",
    "io.containerd.",
    "io.kubernetes.",
    "io.cri-containerd.",
];

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
}

/// The label recording `options`' overrides; None when there are none, or when they are too long
/// for a label (commit then reads them from the spec).
pub fn label(options: &RunOptions) -> Option<(String, String)> {
    let overrides = Overrides {
        entrypoint: options.entrypoint.clone(),
        cmd: options.args.clone(),
        env: options.env.clone(),
        working_dir: options.workdir.clone(),
        user: options.user.clone(),
    };
    if overrides == Overrides::default() {
        return None;
    }
    let value = serde_json::to_string(&overrides).ok()?;
    (LABEL_RUN_CONFIG.len() + value.len() <= MAX_LABEL_BYTES)
        .then(|| (LABEL_RUN_CONFIG.to_string(), value))
}

/// The container's effective defaults: `image`'s with its overrides, labels and stop signal.
pub fn effective(
    image: &ImageConfig,
    labels: &HashMap<String, String>,
    spec: &Spec,
) -> ContainerConfig {
    let recorded = labels
        .get(LABEL_RUN_CONFIG)
        .and_then(|v| serde_json::from_str::<Overrides>(v).ok());
    let overrides = match recorded {
        Some(overrides) => overrides,
        None => from_spec(image, labels, spec),
    };
    let (entrypoint, cmd) = match overrides.entrypoint {
        // docker: an --entrypoint drops the image's Cmd.
        Some(entrypoint) => (entrypoint, overrides.cmd),
        None if overrides.cmd.is_empty() => (image.entrypoint.clone(), image.cmd.clone()),
        None => (image.entrypoint.clone(), overrides.cmd),
    };
    let mut env = image.env.clone();
    for entry in overrides.env {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        match env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }
    let mut all_labels = image.labels.clone();
    all_labels.extend(
        labels
            .iter()
            .filter(|(k, _)| !INTERNAL_LABELS.iter().any(|p| k.starts_with(p)))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let stop_signal = labels
        .get(LABEL_STOP_SIGNAL)
        .cloned()
        .or_else(|| image.stop_signal.clone());
    let set = |keys: &[String]| -> Option<BTreeMap<String, serde_json::Value>> {
        (!keys.is_empty()).then(|| {
            keys.iter()
                .map(|k| (k.clone(), serde_json::json!({})))
                .collect()
        })
    };
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    ContainerConfig {
        user: overrides.user.or_else(|| non_empty(image.user.clone())),
        env: (!env.is_empty()).then_some(env),
        entrypoint: (!entrypoint.is_empty()).then_some(entrypoint),
        cmd: (!cmd.is_empty()).then_some(cmd),
        working_dir: overrides
            .working_dir
            .or_else(|| non_empty(image.working_dir.clone())),
        labels: (!all_labels.is_empty()).then_some(all_labels),
        stop_signal,
        exposed_ports: set(&image.exposed_ports),
        volumes: set(&image.volumes),
    }
}

/// The overrides as far as the spec shows them (see the module's documentation).
fn from_spec(image: &ImageConfig, labels: &HashMap<String, String>, spec: &Spec) -> Overrides {
    let Some(process) = spec.process() else {
        return Overrides::default();
    };
    let mut args: Vec<String> = process.args().clone().unwrap_or_default();
    let init = host_config(labels).get("Init") == Some(&serde_json::Value::Bool(true));
    if init && args.get(1).map(String::as_str) == Some("--") {
        args.drain(..2);
    }
    let image_argv: Vec<String> = image.entrypoint.iter().chain(&image.cmd).cloned().collect();
    let (entrypoint, cmd) = if args == image_argv {
        (None, Vec::new())
    } else if !image.entrypoint.is_empty() && args.starts_with(&image.entrypoint) {
        (None, args[image.entrypoint.len()..].to_vec())
    } else if image.entrypoint.is_empty() {
        (None, args)
    } else {
        // Another program than the image's entrypoint: --entrypoint was given.
        let mut words = args.into_iter();
        (words.next().map(|e| vec![e]), words.collect())
    };
    let image_has = |key: &str| image.env.iter().any(|e| e.starts_with(&format!("{key}=")));
    let default_path = format!("PATH={DEFAULT_PATH}");
    let env = process
        .env()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !e.starts_with("HOSTNAME="))
        // lcd adds these at run time when the image has none.
        .filter(|e| e != "TERM=xterm" || image_has("TERM"))
        .filter(|e| *e != default_path || image_has("PATH"))
        .collect();
    let cwd = process.cwd().display().to_string();
    let working_dir = (cwd != "/" || !image.working_dir.is_empty()).then_some(cwd);
    let (uid, gid) = (process.user().uid(), process.user().gid());
    let user = (image.user.is_empty() && (uid, gid) != (0, 0)).then(|| format!("{uid}:{gid}"));
    Overrides {
        entrypoint,
        cmd,
        env,
        working_dir,
        user,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use libcontainerd::SpecBuilder;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            env: v(&["PATH=/bin", "A=0"]),
            entrypoint: v(&["/entry"]),
            cmd: v(&["default"]),
            working_dir: "/app".into(),
            user: "app".into(),
            labels: BTreeMap::from([("from".to_string(), "image".to_string())]),
            ..Default::default()
        }
    }

    #[test]
    fn recorded_overrides_follow_dockers_create() {
        let options = RunOptions {
            args: v(&["x"]),
            env: v(&["A=1", "B=2"]),
            workdir: Some("/w".into()),
            ..Default::default()
        };
        let (key, value) = label(&options).unwrap();
        let labels = HashMap::from([
            (key, value),
            ("team".to_string(), "db".to_string()),
            ("io.lcd.name".to_string(), "x".to_string()),
            (LABEL_STOP_SIGNAL.to_string(), "SIGQUIT".to_string()),
        ]);
        let spec = SpecBuilder::on_snapshot().build().unwrap();
        let config = effective(&image(), &labels, &spec);
        assert_eq!(config.entrypoint, Some(v(&["/entry"])));
        assert_eq!(config.cmd, Some(v(&["x"])));
        assert_eq!(config.env, Some(v(&["PATH=/bin", "A=1", "B=2"])));
        assert_eq!(config.working_dir.as_deref(), Some("/w"));
        assert_eq!(config.user.as_deref(), Some("app"));
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
        let labels = config.labels.unwrap();
        assert_eq!(labels.get("team").map(String::as_str), Some("db"));
        assert_eq!(labels.get("from").map(String::as_str), Some("image"));
        assert!(!labels.contains_key("io.lcd.name"));

        // --entrypoint drops the image's Cmd.
        let options = RunOptions {
            entrypoint: Some(v(&["sh"])),
            ..Default::default()
        };
        let labels = HashMap::from([label(&options).unwrap()]);
        let config = effective(&image(), &labels, &spec);
        assert_eq!(config.entrypoint, Some(v(&["sh"])));
        assert_eq!(config.cmd, None);
        assert!(label(&RunOptions::default()).is_none());
        let huge = RunOptions {
            args: vec!["x".repeat(5000)],
            ..Default::default()
        };
        assert!(label(&huge).is_none());
    }

    #[test]
    fn without_the_label_the_spec_tells() {
        let spec = SpecBuilder::on_snapshot()
            .args(["/entry", "other"])
            .env("A=0")
            .env("PATH=/bin")
            .env("HOSTNAME=box")
            .cwd("/app")
            .build()
            .unwrap();
        let config = effective(&image(), &HashMap::new(), &spec);
        assert_eq!(config.entrypoint, Some(v(&["/entry"])));
        assert_eq!(config.cmd, Some(v(&["other"])));
        let env = config.env.unwrap();
        assert!(env.contains(&"A=0".to_string()), "{env:?}");
        assert!(!env.iter().any(|e| e.starts_with("HOSTNAME=")), "{env:?}");
        assert_eq!(config.working_dir.as_deref(), Some("/app"));
        assert_eq!(config.user.as_deref(), Some("app"));

        let spec = SpecBuilder::on_snapshot().args(["sh"]).build().unwrap();
        let config = effective(&image(), &HashMap::new(), &spec);
        assert_eq!(config.entrypoint, Some(v(&["sh"])));
        assert_eq!(config.cmd, None);
    }
}
