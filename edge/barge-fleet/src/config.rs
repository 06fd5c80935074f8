//! Which hub to talk to: `--config FILE`, else `BARGE_FLEET_CONFIG`, else
//! `~/.barge/fleet.conf`. The file is the hub's `admin.conf`:
//! `{"server": "https://host:port", "ca": PEM, "token": admin token}`, or one that
//! `barge fleet cert create` wrote, with `"cert"` and `"key"` (paths, relative to the file)
//! of an admin client certificate instead of the token. An `https://` server is trusted only
//! if its certificate chains to `ca` (the system roots are not used); `http://` is for a hub
//! run with `--api-insecure-http`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

/// The default config file under `$HOME`.
pub const DEFAULT: &str = ".barge/fleet.conf";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetConf {
    pub server: String,
    /// The fleet CA bundle (PEM); required for https.
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// Admin client certificate (PEM file) and its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// An admin client certificate and key, read from the files the config names.
pub struct Identity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl FleetConf {
    pub fn https(&self) -> bool {
        self.server.starts_with("https://")
    }
}

/// The config path to use (`flag` is `--config` or `BARGE_FLEET_CONFIG`, clap reads both).
pub fn path(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h).join(DEFAULT)),
        _ => bail!("no --config, no BARGE_FLEET_CONFIG and no HOME to find ~/{DEFAULT}"),
    }
}

/// Read and check the config file; the client certificate's files are read too.
pub fn load(path: &Path) -> anyhow::Result<(FleetConf, Option<Identity>)> {
    let data = std::fs::read(path).with_context(|| {
        format!(
            "read config {} (give --config FILE or BARGE_FLEET_CONFIG: the hub's STATE_DIR/admin.conf)",
            path.display()
        )
    })?;
    let conf: FleetConf = serde_json::from_slice(&data)
        .with_context(|| format!("config {}: not an admin.conf", path.display()))?;
    let identity = match (&conf.cert, &conf.key) {
        (Some(c), Some(k)) => {
            let base = path.parent().unwrap_or(Path::new("."));
            let read = |f: &str, what: &str| {
                let p = base.join(f);
                std::fs::read(&p).with_context(|| {
                    format!("config {}: read {what} {}", path.display(), p.display())
                })
            };
            Some(Identity {
                cert_pem: read(c, "client certificate")?,
                key_pem: read(k, "client key")?,
            })
        }
        (None, None) => None,
        _ => bail!(
            "config {}: \"cert\" and \"key\" go together (an admin client certificate and its key)",
            path.display()
        ),
    };
    if identity.is_none() && conf.token.as_deref().is_none_or(str::is_empty) {
        bail!(
            "config {}: no admin token and no client certificate (\"token\": null: a second hub wrote it; use the admin.conf of the hub that started first)",
            path.display()
        );
    }
    if conf.https() {
        if conf.ca.as_deref().is_none_or(|c| c.trim().is_empty()) {
            bail!(
                "config {}: an https server needs \"ca\" (the fleet CA PEM the hub wrote)",
                path.display()
            );
        }
    } else if conf.server.starts_with("http://") {
        if identity.is_some() {
            bail!(
                "config {}: a client certificate needs an https:// server",
                path.display()
            );
        }
    } else {
        bail!(
            "config {}: server {:?} is not an https:// or http:// URL",
            path.display(),
            conf.server
        );
    }
    Ok((conf, identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(
        text: &str,
        files: &[(&str, &str)],
    ) -> anyhow::Result<(FleetConf, Option<Identity>)> {
        let dir = tempfile::tempdir().unwrap();
        for (name, data) in files {
            std::fs::write(dir.path().join(name), data).unwrap();
        }
        let p = dir.path().join("fleet.conf");
        std::fs::write(&p, text).unwrap();
        load(&p)
    }

    #[test]
    fn what_a_config_needs() {
        // https with a CA and a token; or a client certificate (paths relative to the file).
        assert!(load_text(r#"{"server":"https://h:1","ca":"PEM","token":"t"}"#, &[]).is_ok());
        let (_, id) = load_text(
            r#"{"server":"https://h:1","ca":"PEM","cert":"a.crt","key":"a.key"}"#,
            &[("a.crt", "C"), ("a.key", "K")],
        )
        .unwrap();
        assert_eq!(id.unwrap().cert_pem, b"C");
        // Plain HTTP with a token (a hub run with --api-insecure-http).
        assert!(load_text(r#"{"server":"http://h:1","token":"t"}"#, &[]).is_ok());

        let err = |text: &str| format!("{:#}", load_text(text, &[]).err().unwrap());
        assert!(err(r#"{"server":"https://h:1","token":"t"}"#).contains("\"ca\""));
        assert!(err(r#"{"server":"https://h:1","ca":"PEM"}"#).contains("no admin token"));
        assert!(
            err(r#"{"server":"https://h:1","ca":"PEM","cert":"a.crt"}"#).contains("go together")
        );
        assert!(
            err(r#"{"server":"https://h:1","ca":"PEM","cert":"x","key":"y"}"#)
                .contains("read client certificate")
        );
        assert!(err(r#"{"server":"ftp://h:1","token":"t"}"#).contains("not an https://"));
    }
}
