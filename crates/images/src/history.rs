//! `docker history`: an image's build steps from its config's `history`, newest first, each step
//! that made a layer with that layer's size (its blob in the content store, as `images` counts
//! sizes); steps that only changed the config (`empty_layer`) have none.

use libcontainerd::{Client, Result};

use crate::grpc::Services;
use crate::oci::{Descriptor, ImageConfigFile};
use crate::platform::Platform;
use crate::resolve::resolve;
use crate::store::{find_name, get_record};

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// When (RFC 3339, as the config has it).
    pub created: Option<String>,
    /// The instruction or command that made it.
    pub created_by: String,
    /// Who.
    pub author: String,
    /// `docker commit -m`'s message, or an importer's note.
    pub comment: String,
    /// Whether it made no layer.
    pub empty_layer: bool,
    /// The layer it made, if any.
    pub layer: Option<Descriptor>,
}

/// An image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The image's stored name.
    pub name: String,
    /// docker's image ID (`sha256:<config digest>`).
    pub id: String,
    /// The steps, newest first.
    pub steps: Vec<Step>,
}

/// The history of image `name` (a stored name, a reference or an ID) for `platform`.
pub async fn history(client: &Client, name: &str, platform: &Platform) -> Result<History> {
    let services = Services::new(client)?;
    let name = find_name(&services, name).await?;
    let record = get_record(&services, &name).await?;
    let resolved = resolve(&services, &record.target, platform, &name).await?;
    Ok(History {
        id: resolved.manifest.config.digest.clone(),
        steps: steps(resolved.config, &resolved.manifest.layers),
        name,
    })
}

/// Pair the history's layer-making steps with the layers, newest with newest (a commit on an
/// image whose history does not account for its layers still pairs with its own layer); layers
/// the history leaves out get a step of their own, at the image's time. Newest first.
fn steps(config: ImageConfigFile, layers: &[Descriptor]) -> Vec<Step> {
    let mut layers = layers.iter().rev();
    let mut out: Vec<Step> = config
        .history
        .into_iter()
        .rev()
        .map(|entry| Step {
            layer: if entry.empty_layer {
                None
            } else {
                layers.next().cloned()
            },
            created: entry.created,
            created_by: entry.created_by.unwrap_or_default(),
            author: entry.author.unwrap_or_default(),
            comment: entry.comment.unwrap_or_default(),
            empty_layer: entry.empty_layer,
        })
        .collect();
    out.extend(layers.map(|layer| Step {
        created: config.created.clone(),
        layer: Some(layer.clone()),
        ..Step::default()
    }));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn layer(n: u64) -> Descriptor {
        Descriptor::new(crate::media::OCI_LAYER_GZIP, &format!("sha256:{n}"), n)
    }

    #[test]
    fn steps_pair_with_layers_newest_first() {
        let config: ImageConfigFile = serde_json::from_str(
            r#"{"created":"c","history":[
                {"created":"1","created_by":"ADD rootfs"},
                {"created":"2","created_by":"ENV A=1","empty_layer":true},
                {"created":"3","created_by":"sh","author":"me","comment":"hi"}]}"#,
        )
        .unwrap();
        let steps = steps(config, &[layer(10), layer(20)]);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].created_by, "sh");
        assert_eq!(steps[0].layer.as_ref().unwrap().size, 20);
        assert_eq!(steps[0].comment, "hi");
        assert!(steps[1].empty_layer && steps[1].layer.is_none());
        assert_eq!(steps[2].layer.as_ref().unwrap().size, 10);

        // No history: one step per layer, at the image's time.
        let steps = super::steps(ImageConfigFile::default(), &[layer(1)]);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].layer.as_ref().unwrap().size, 1);

        // A commit on an image without history: its step is its own layer's.
        let config: ImageConfigFile =
            serde_json::from_str(r#"{"created":"c","history":[{"created_by":"sh"}]}"#).unwrap();
        let steps = super::steps(config, &[layer(1), layer(2), layer(3)]);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].created_by, "sh");
        assert_eq!(steps[0].layer.as_ref().unwrap().size, 3);
        assert_eq!(steps[2].layer.as_ref().unwrap().size, 1);
        assert_eq!(steps[2].created.as_deref(), Some("c"));
    }
}
