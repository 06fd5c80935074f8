//! Network settings: the `"network"` object of the config directory's `config.json`.
//!
//! ```json
//! { "network": { "config-dir": "/etc/barge/cni/net.d",
//!                "plugin-dirs": ["/usr/lib/cni", "/opt/cni/bin"],
//!                "plugin-timeout-secs": 60,
//!                "bridge-driver": "in-process" } }
//! ```
//!
//! `bridge-driver`: who wires containers into barge's own bridge networks: `in-process`
//! (default; netlink and host-local's address files from barge itself, see `bridge`) or
//! `cni` (the `bridge` and `host-local` plugins, as config lists of other shapes always are).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where CNI plugins are looked for when nothing else is configured.
pub const DEFAULT_PLUGIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];

#[derive(Debug, Clone)]
pub struct Settings {
    /// The CNI network config lists (`*.conflist`, `*.conf`): barge's own networks and any
    /// a user drops there.
    pub config_dir: PathBuf,
    pub plugin_dirs: Vec<PathBuf>,
    /// How long one plugin may run before it is killed.
    pub timeout: Duration,
    /// barge's bridge networks are wired in-process rather than by their plugins.
    pub in_process: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct File {
    config_dir: Option<PathBuf>,
    plugin_dirs: Option<Vec<PathBuf>>,
    plugin_timeout_secs: Option<f64>,
    bridge_driver: Option<String>,
}

impl Settings {
    /// The defaults for the config directory `config` (usually /etc/barge).
    pub fn defaults(config: &Path) -> Settings {
        Settings {
            config_dir: config.join("cni").join("net.d"),
            plugin_dirs: DEFAULT_PLUGIN_DIRS.iter().map(PathBuf::from).collect(),
            timeout: Duration::from_secs(60),
            in_process: true,
        }
    }

    /// Read the `"network"` object of `config/config.json`, if any, over the defaults.
    pub fn load(config: &Path) -> Result<Settings> {
        let mut s = Settings::defaults(config);
        let path = config.join("config.json");
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
            Err(source) => {
                return Err(Error::Io {
                    what: "read",
                    path,
                    source,
                })
            }
        };
        let bad = |e: serde_json::Error| {
            Error::Invalid(format!("config file {}: network: {e}", path.display()))
        };
        let doc: serde_json::Value = serde_json::from_slice(&data).map_err(bad)?;
        let Some(net) = doc.get("network") else {
            return Ok(s);
        };
        let f: File = serde_json::from_value(net.clone()).map_err(bad)?;
        if let Some(d) = f.config_dir {
            s.config_dir = d;
        }
        if let Some(d) = f.plugin_dirs {
            s.plugin_dirs = d;
        }
        match f.bridge_driver.as_deref() {
            None | Some("in-process") => {}
            Some("cni") => s.in_process = false,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "config file {}: network.bridge-driver {other:?}: must be \"in-process\" or \"cni\"",
                    path.display()
                )))
            }
        }
        if let Some(t) = f.plugin_timeout_secs {
            if !(t > 0.0 && t < 86_400.0) {
                return Err(Error::Invalid(format!(
                    "config file {}: network.plugin-timeout-secs {t}: must be between 0 and 86400",
                    path.display()
                )));
            }
            s.timeout = Duration::from_secs_f64(t);
        }
        Ok(s)
    }

    pub fn cni(&self) -> barge_cni::Cni {
        barge_cni::Cni {
            plugin_dirs: self.plugin_dirs.clone(),
            timeout: self.timeout,
        }
    }
}
