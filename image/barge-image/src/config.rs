//! Configuration read from the config directory (default /etc/barge): `config.json` (insecure
//! registries, docker's `registry-mirrors`, unpack limits), `certs.d/<registry>/*.crt` (extra
//! CAs, docker's layout), `certs.d/<registry>/hosts.toml` (containerd's mirrors and hosts, read
//! by [`crate::hosts`]) and `auth.json` (credentials from `barge login`, mode 0600, docker's
//! format).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::unpack::Limits;

pub const DEFAULT_DIR: &str = "/etc/barge";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct File {
    #[serde(default)]
    insecure_registries: Vec<String>,
    /// docker's `registry-mirrors`: tried in order for docker.io images before docker.io.
    #[serde(default)]
    registry_mirrors: Vec<String>,
    max_layer_entries: Option<u64>,
    /// Bytes, or a docker-style size (`"512m"`, `"1g"`).
    max_layer_size: Option<serde_json::Value>,
    max_concurrent_downloads: Option<usize>,
    /// Read by the engine (CNI settings); accepted here so that it is not an unknown key.
    #[allow(dead_code)]
    network: Option<serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    /// Registries reached over plain HTTP (loopback registries always are).
    pub insecure_registries: Vec<String>,
    /// docker's `registry-mirrors` (URLs), for docker.io only.
    pub registry_mirrors: Vec<String>,
    pub limits: Limits,
    pub max_concurrent_downloads: usize,
    /// Credentials given for one operation (docker's `X-Registry-Auth`), per registry: used
    /// instead of the stored ones.
    pub given_credentials: std::collections::BTreeMap<String, (String, String)>,
}

impl Config {
    /// Read `dir/config.json` if it exists; a missing file means defaults.
    pub fn load(dir: &Path) -> Result<Config> {
        let path = dir.join("config.json");
        let file: File = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid(format!("config file {}", path.display()), e.to_string())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let mut limits = Limits::default();
        if let Some(n) = file.max_layer_entries {
            limits.max_entries = n;
        }
        if let Some(v) = &file.max_layer_size {
            limits.max_bytes = size_value(v).map_err(|reason| {
                Error::invalid(
                    format!("max-layer-size in config file {}", path.display()),
                    reason,
                )
            })?;
        }
        Ok(Config {
            dir: dir.to_path_buf(),
            insecure_registries: file.insecure_registries,
            registry_mirrors: file.registry_mirrors,
            limits,
            max_concurrent_downloads: file.max_concurrent_downloads.unwrap_or(3).max(1),
            given_credentials: Default::default(),
        })
    }

    /// PEM certificates to trust for `registry` (`certs.d/<registry>/*.crt`).
    pub fn ca_certs(&self, registry: &str) -> Result<Vec<Vec<u8>>> {
        let dir = self.dir.join("certs.d").join(registry);
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("read", dir, e)),
        };
        for entry in entries {
            let path = entry.ctx("read", &dir)?.path();
            if path.extension().is_some_and(|e| e == "crt") {
                out.push(fs::read(&path).ctx("read certificate", &path)?);
            }
        }
        Ok(out)
    }

    pub fn auth_path(&self) -> PathBuf {
        self.dir.join("auth.json")
    }

    /// Stored credentials for `registry`.
    pub fn credentials(&self, registry: &str) -> Result<Option<(String, String)>> {
        if let Some(c) = self.given_credentials.get(registry) {
            return Ok(Some(c.clone()));
        }
        let auths = read_auths(&self.auth_path())?;
        let Some(entry) = auths.auths.get(registry) else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(entry.auth.trim())
            .map_err(|e| {
                Error::invalid(
                    format!(
                        "credentials for {registry} in {}",
                        self.auth_path().display()
                    ),
                    e.to_string(),
                )
            })?;
        let text = String::from_utf8(decoded)
            .map_err(|_| Error::invalid(format!("credentials for {registry}"), "not UTF-8"))?;
        match text.split_once(':') {
            Some((u, p)) => Ok(Some((u.to_string(), p.to_string()))),
            None => Err(Error::invalid(
                format!("credentials for {registry}"),
                "expected base64 of user:password",
            )),
        }
    }

    /// Store credentials (the file is written 0600, atomically).
    pub fn store_credentials(&self, registry: &str, user: &str, password: &str) -> Result<()> {
        let mut auths = read_auths(&self.auth_path())?;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        auths.auths.insert(registry.to_string(), AuthEntry { auth });
        write_auths(&self.auth_path(), &auths)
    }

    /// Forget credentials; `false` if there were none.
    pub fn remove_credentials(&self, registry: &str) -> Result<bool> {
        let mut auths = read_auths(&self.auth_path())?;
        let had = auths.auths.remove(registry).is_some();
        if had {
            write_auths(&self.auth_path(), &auths)?;
        }
        Ok(had)
    }
}

/// A size in `config.json`: a number of bytes or a string such as `"10m"`.
fn size_value(v: &serde_json::Value) -> std::result::Result<u64, String> {
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a size: expected a whole number of bytes")),
        serde_json::Value::String(s) => barge_util::size::parse_size(s.trim()),
        other => Err(format!(
            "{other} is not a size: expected bytes or a string such as \"512m\" or \"1g\""
        )),
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Auths {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AuthEntry {
    auth: String,
}

fn read_auths(path: &Path) -> Result<Auths> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(
                format!("credentials file {}", path.display()),
                e.to_string(),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Auths::default()),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn write_auths(path: &Path, auths: &Auths) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).ctx("create directory", dir)?;
    let tmp = path.with_extension("json.tmp");
    let data = serde_json::to_vec_pretty(auths)
        .map_err(|e| Error::invalid("credentials", e.to_string()))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .ctx("create", &tmp)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .ctx("chmod", &tmp)?;
    f.write_all(&data).ctx("write", &tmp)?;
    f.sync_all().ctx("fsync", &tmp)?;
    fs::rename(&tmp, path).ctx("rename", path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn credentials_round_trip_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = Config::load(tmp.path()).unwrap();
        assert_eq!(cfg.credentials("r:5000").unwrap(), None);
        cfg.store_credentials("r:5000", "alice", "s3:cret").unwrap();
        assert_eq!(
            cfg.credentials("r:5000").unwrap(),
            Some(("alice".into(), "s3:cret".into()))
        );
        assert_eq!(fs::metadata(cfg.auth_path()).unwrap().mode() & 0o777, 0o600);
        assert!(cfg.remove_credentials("r:5000").unwrap());
        assert!(!cfg.remove_credentials("r:5000").unwrap());
        fs::write(
            tmp.path().join("config.json"),
            r#"{"insecure-registries":["a:1"],"max-layer-entries":7}"#,
        )
        .unwrap();
        let cfg = Config::load(tmp.path()).unwrap();
        assert_eq!(cfg.insecure_registries, vec!["a:1".to_string()]);
        assert_eq!(cfg.limits.max_entries, 7);
        fs::write(tmp.path().join("config.json"), r#"{"insecure":1}"#).unwrap();
        assert!(Config::load(tmp.path())
            .unwrap_err()
            .to_string()
            .contains("config.json"));
    }

    #[test]
    fn max_layer_size_takes_docker_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.json");
        for (value, bytes) in [
            ("1048576", 1u64 << 20),
            ("\"10m\"", 10 << 20),
            ("\"1g\"", 1 << 30),
            ("\"512k\"", 512 << 10),
            ("\"2048\"", 2048),
        ] {
            fs::write(&file, format!(r#"{{"max-layer-size": {value}}}"#)).unwrap();
            assert_eq!(
                Config::load(tmp.path()).unwrap().limits.max_bytes,
                bytes,
                "{value}"
            );
        }
        for value in ["\"10q\"", "-1", "1.5", "true", "\"\""] {
            fs::write(&file, format!(r#"{{"max-layer-size": {value}}}"#)).unwrap();
            let err = Config::load(tmp.path()).unwrap_err().to_string();
            assert!(
                err.contains("max-layer-size") && err.contains("config.json"),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn registry_mirrors_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("config.json"),
            r#"{"registry-mirrors": ["https://m1.example", "http://10.0.0.1:5000"]}"#,
        )
        .unwrap();
        let cfg = Config::load(tmp.path()).unwrap();
        assert_eq!(
            cfg.registry_mirrors,
            vec![
                "https://m1.example".to_string(),
                "http://10.0.0.1:5000".to_string()
            ]
        );
        fs::write(tmp.path().join("config.json"), r#"{"insecure":1}"#).unwrap();
        assert!(Config::load(tmp.path())
            .unwrap_err()
            .to_string()
            .contains("config.json"));
    }
}
