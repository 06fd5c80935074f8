//! Which hub to talk to: `--config FILE`, else `BARGE_FLEET_CONFIG`, else
//! `~/.barge/fleet.conf`. The file is the hub's `admin.conf`:
//! `{"server": "http://host:port", "ca": PEM or null, "token": admin token}` (`ca` is for
//! https servers, which are not supported yet: the fleet API is plain HTTP).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// The default config file under `$HOME`.
pub const DEFAULT: &str = ".barge/fleet.conf";

#[derive(Debug, Clone, Deserialize)]
pub struct FleetConf {
    pub server: String,
    #[serde(default)]
    pub token: Option<String>,
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

/// Read and check the config file.
pub fn load(path: &Path) -> anyhow::Result<FleetConf> {
    let data = std::fs::read(path).with_context(|| {
        format!(
            "read config {} (give --config FILE or BARGE_FLEET_CONFIG: the hub's STATE_DIR/admin.conf)",
            path.display()
        )
    })?;
    let conf: FleetConf = serde_json::from_slice(&data)
        .with_context(|| format!("config {}: not an admin.conf", path.display()))?;
    if conf.token.as_deref().is_none_or(str::is_empty) {
        bail!(
            "config {}: no admin token (\"token\": null: a second hub wrote it; use the admin.conf of the hub that started first)",
            path.display()
        );
    }
    if conf.server.starts_with("https://") {
        bail!(
            "config {}: https servers are not supported yet (the fleet API is plain HTTP)",
            path.display()
        );
    }
    if !conf.server.starts_with("http://") {
        bail!(
            "config {}: server {:?} is not an http:// URL",
            path.display(),
            conf.server
        );
    }
    Ok(conf)
}
