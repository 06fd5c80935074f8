//! The agent's state on the device, under `ROOT/edge/`:
//!
//! | file | what | mode |
//! |------|------|------|
//! | `node.key` | the node's private key (PEM), made here, never sent | 0600 |
//! | `node.crt` | the node certificate the hub issued (PEM) | 0644 |
//! | `ca.pem` | the CA bundle to trust for the hub (PEM, one or more CAs) | 0644 |
//! | `edge.json` | [`EdgeFile`]: name, hubs, labels, MQTT broker | 0644 |
//! | `cache.db` | the MetaManager's SQLite cache (see [`crate::metamanager`]) | 0600 |
//!
//! Every write is atomic and durable (temp file + fsync + rename + fsync of the directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use barge_util::fs::{write_atomic, Durability};
use serde::{Deserialize, Serialize};

/// `edge.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeFile {
    /// The node's name (its certificate's CN is `node:<name>`).
    pub name: String,
    /// The hubs' edge endpoints (`host:port`), in the order to try them.
    pub hubs: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The EventBus's MQTT broker (`tcp://HOST:PORT`, or `none`) when `--mqtt` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<String>,
}

/// Where the agent's files are.
#[derive(Debug, Clone)]
pub struct EdgePaths {
    pub dir: PathBuf,
}

impl EdgePaths {
    /// `ROOT/edge`.
    pub fn new(root: &Path) -> EdgePaths {
        EdgePaths {
            dir: root.join("edge"),
        }
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("node.key")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("node.crt")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn edge_json(&self) -> PathBuf {
        self.dir.join("edge.json")
    }
    pub fn cache(&self) -> PathBuf {
        self.dir.join("cache.db")
    }

    /// Make the directory (0700: it holds the key).
    pub fn ensure_dir(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("create {}", self.dir.display()))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", self.dir.display()))?;
        Ok(())
    }

    /// A renewed key and certificate, staged next to the current ones.
    fn staged(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("node.key.new"), self.dir.join("node.crt.new"))
    }

    /// Replace the key and the certificate as a pair: both are written as `.new` files,
    /// then renamed key first, certificate last. A crash in between is completed by
    /// [`EdgePaths::finish_swap`] at the next read, so the pair never mismatches.
    pub fn swap_identity(&self, key_pem: &str, cert_pem: &str) -> Result<()> {
        let (key_new, crt_new) = self.staged();
        write(&key_new, key_pem.as_bytes(), 0o600)?;
        write(&crt_new, cert_pem.as_bytes(), 0o644)?;
        self.finish_swap()
    }

    /// Complete a staged key/certificate swap, if one is there (the certificate's `.new`
    /// file is written last and renamed last: its presence means the swap is due).
    pub fn finish_swap(&self) -> Result<()> {
        let (key_new, crt_new) = self.staged();
        if !crt_new.exists() {
            // Not staged completely: a key alone is the leftover of a cut write.
            let _ = std::fs::remove_file(&key_new);
            return Ok(());
        }
        if key_new.exists() {
            std::fs::rename(&key_new, self.key())
                .with_context(|| format!("rename {} into place", key_new.display()))?;
        }
        std::fs::rename(&crt_new, self.cert())
            .with_context(|| format!("rename {} into place", crt_new.display()))?;
        barge_util::fs::sync_dir(&self.dir)
            .with_context(|| format!("fsync {}", self.dir.display()))?;
        Ok(())
    }

    /// Read `edge.json`.
    pub fn load(&self) -> Result<EdgeFile> {
        let p = self.edge_json();
        let text = std::fs::read(&p).with_context(|| {
            format!(
                "read {} (has this device joined? run `barge edge join`)",
                p.display()
            )
        })?;
        serde_json::from_slice(&text).with_context(|| format!("parse {}", p.display()))
    }

    /// Write `edge.json` atomically.
    pub fn save(&self, f: &EdgeFile) -> Result<()> {
        let body = serde_json::to_vec_pretty(f).context("encode edge.json")?;
        write(&self.edge_json(), &body, 0o644)
    }

    /// Read a file as text, naming it on failure.
    pub fn read(&self, p: &Path) -> Result<String> {
        std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))
    }
}

/// Write `data` to `path` atomically and durably with `mode`.
pub fn write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    write_atomic(path, data, mode, Durability::Durable)
        .with_context(|| format!("write {}", path.display()))
}

/// Parse `k=v` labels.
pub fn parse_labels(items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in items {
        let (k, v) = l
            .split_once('=')
            .with_context(|| format!("label {l:?} is not KEY=VALUE"))?;
        if k.is_empty() {
            anyhow::bail!("label {l:?} has an empty key");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_labels() {
        let d = tempfile::tempdir().unwrap();
        let p = EdgePaths::new(d.path());
        p.ensure_dir().unwrap();
        let f = EdgeFile {
            name: "n1".into(),
            hubs: vec!["127.0.0.1:1".into()],
            labels: parse_labels(&["a=b".into(), "c=".into()]).unwrap(),
            mqtt: None,
        };
        p.save(&f).unwrap();
        assert_eq!(p.load().unwrap(), f);
        assert!(parse_labels(&["nope".into()]).is_err());
        // A swap cut after the key's rename is completed at the next read.
        write(&p.key(), b"old key", 0o600).unwrap();
        write(&p.cert(), b"old cert", 0o644).unwrap();
        write(&p.dir.join("node.crt.new"), b"new cert", 0o644).unwrap();
        write(&p.key(), b"new key", 0o600).unwrap();
        p.finish_swap().unwrap();
        assert_eq!(std::fs::read(p.cert()).unwrap(), b"new cert");
        assert_eq!(std::fs::read(p.key()).unwrap(), b"new key");
        // A staged key without its certificate is dropped; the pair stays.
        write(&p.dir.join("node.key.new"), b"stray", 0o600).unwrap();
        p.finish_swap().unwrap();
        assert_eq!(std::fs::read(p.key()).unwrap(), b"new key");
        assert!(!p.dir.join("node.key.new").exists());
        p.swap_identity("k2", "c2").unwrap();
        assert_eq!(std::fs::read(p.key()).unwrap(), b"k2");
        assert_eq!(std::fs::read(p.cert()).unwrap(), b"c2");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.key()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(parse_labels(&["=x".into()]).is_err());
    }
}
