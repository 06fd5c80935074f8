//! What a registry says about an image without pulling it (docker's
//! `/distribution/NAME/json`): the descriptor the name resolves to and the platforms it
//! offers.

use oci_client::secrets::RegistryAuth;
use serde_json::{json, Value};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::manifest::{self, Parsed};
use crate::reference::ImageRef;

/// The resolved descriptor (`mediaType`, `digest`, `size`) and the platforms (`os`,
/// `architecture`, `variant`), as docker's JSON.
pub struct Described {
    pub descriptor: Value,
    pub platforms: Vec<Value>,
}

/// Ask the registry of `reference` for its manifest (and, for a single-platform image, its
/// config) with `credentials` or the stored ones.
pub async fn describe(
    config: &Config,
    reference: &ImageRef,
    credentials: Option<(String, String)>,
) -> Result<Described> {
    let (client, stored) = crate::pull::client_for(reference, config, false)?;
    let auth = match credentials {
        Some((u, p)) => RegistryAuth::Basic(u, p),
        None => stored,
    };
    let registry = reference.registry().to_string();
    let fail = |e: oci_client::errors::OciDistributionError| match e {
        oci_client::errors::OciDistributionError::ImageManifestNotFoundError(_) => {
            Error::NotFound {
                what: "manifest",
                name: reference.canonical(),
            }
        }
        oci_client::errors::OciDistributionError::AuthenticationFailure(_)
        | oci_client::errors::OciDistributionError::UnauthorizedError { .. } => {
            Error::Unauthorized {
                registry: registry.clone(),
                reason: e.to_string(),
            }
        }
        other => Error::Registry {
            registry: registry.clone(),
            reason: other.to_string(),
        },
    };
    let oci = reference.oci();
    let (bytes, digest) = client
        .pull_manifest_raw(&oci, &auth, manifest::ACCEPTED)
        .await
        .map_err(fail)?;
    let parsed = manifest::parse(&bytes, None, &digest)?;
    let media_type = match &parsed {
        Parsed::Index(i) => i
            .media_type()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| manifest::OCI_INDEX.to_string()),
        Parsed::Manifest(m) => m
            .media_type()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string()),
    };
    let descriptor = json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
    let platforms = match parsed {
        Parsed::Index(i) => i
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| {
                json!({"architecture": p.architecture().to_string(), "os": p.os().to_string(),
                       "variant": p.variant().clone().unwrap_or_default()})
            })
            .collect(),
        Parsed::Manifest(m) => {
            let mut blob = Vec::new();
            client
                .pull_blob(&oci, m.config().digest().to_string().as_str(), &mut blob)
                .await
                .map_err(fail)?;
            let (cfg, _) = manifest::parse_config(&blob, m.config().digest().as_ref())?;
            vec![
                json!({"architecture": cfg.architecture().to_string(), "os": cfg.os().to_string(),
                        "variant": cfg.variant().clone().unwrap_or_default()}),
            ]
        }
    };
    Ok(Described {
        descriptor,
        platforms,
    })
}
