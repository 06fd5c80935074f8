//! Checking credentials against a registry before storing them (docker login).

use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::reference::ImageRef;

/// Ask `registry` for a manifest that doesn't exist with the credentials: "not found" means
/// they were accepted, "unauthorized" that they weren't.
pub async fn check(
    config: &Config,
    registry: &str,
    user: &str,
    password: &str,
    insecure: bool,
) -> Result<()> {
    let probe = ImageRef::parse(&format!("{registry}/barge-login-check/probe:latest"))?;
    let (client, _) = crate::pull::client_for(&probe, config, insecure)?;
    let auth = RegistryAuth::Basic(user.to_string(), password.to_string());
    match client
        .pull_manifest_raw(&probe.oci(), &auth, crate::manifest::ACCEPTED)
        .await
    {
        Ok(_) => Ok(()),
        Err(OciDistributionError::AuthenticationFailure(e)) => Err(Error::Unauthorized {
            registry: registry.to_string(),
            reason: format!("credentials refused: {e}"),
        }),
        Err(OciDistributionError::UnauthorizedError { url }) => Err(Error::Unauthorized {
            registry: registry.to_string(),
            reason: format!("credentials refused (401 on {url})"),
        }),
        Err(OciDistributionError::ImageManifestNotFoundError(_)) => Ok(()),
        Err(OciDistributionError::RegistryError { envelope, .. })
            if envelope.errors.iter().any(|e| {
                format!("{:?}", e.code).contains("NameUnknown")
                    || format!("{:?}", e.code).contains("ManifestUnknown")
            }) =>
        {
            Ok(())
        }
        Err(e) => {
            let text = e.to_string();
            if text.contains("401") || text.to_ascii_lowercase().contains("unauthorized") {
                Err(Error::Unauthorized {
                    registry: registry.to_string(),
                    reason: format!("credentials refused: {text}"),
                })
            } else if text.contains("404")
                || text.contains("NAME_UNKNOWN")
                || text.contains("MANIFEST_UNKNOWN")
            {
                Ok(())
            } else {
                Err(Error::Registry {
                    registry: registry.to_string(),
                    reason: text,
                })
            }
        }
    }
}
