//! The build cache: for each filesystem-changing step, the layer it made, under a key of
//! everything that decides its result (parent layers, the stage's config, the instruction
//! after expansion, the build args in effect, the content hash of COPY/ADD sources). The
//! index is one JSON file in the store directory, rewritten atomically under a lock.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use barge_image::digest::Hasher;
use barge_image::store::Store;
use serde::{Deserialize, Serialize};

use super::error::{BuildError, Result};
use super::layer::{ensure_snapshot, LayerRef};

/// What a cached step left: its layer, or none when it changed nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheEntry {
    pub layer: Option<LayerRef>,
    /// When the step first ran (its history time: a fully cached rebuild is the same image).
    #[serde(default)]
    pub created: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    #[serde(default)]
    steps: BTreeMap<String, CacheEntry>,
}

/// The cache index of one store.
pub struct Cache {
    path: PathBuf,
    lock: PathBuf,
}

impl Cache {
    pub fn open(root: &Path) -> Cache {
        Cache {
            path: root.join("build-cache.json"),
            lock: root.join("build-cache.lock"),
        }
    }

    fn read(&self) -> Result<Index> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(serde_json::from_slice(&b).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(BuildError::other(format!(
                "read build cache {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// The cached result of `key`, if its layer is still in the store (its blob, and its
    /// snapshot, unpacked again when garbage collection took it).
    pub fn get(
        &self,
        store: &Store,
        key: &str,
        parent: &[barge_image::Digest],
    ) -> Result<Option<CacheEntry>> {
        let Some(entry) = self.read()?.steps.get(key).cloned() else {
            return Ok(None);
        };
        if let Some(l) = &entry.layer {
            if !store.content.exists(&l.digest) {
                return Ok(None);
            }
            if ensure_snapshot(store, parent, l).is_err() {
                return Ok(None);
            }
        }
        Ok(Some(entry))
    }

    /// Record `key` (read, change, write atomically, under the index's lock).
    pub fn put(&self, key: &str, entry: CacheEntry) -> Result<()> {
        let err = |what: &str, e: std::io::Error| {
            BuildError::other(format!("{what} {}: {e}", self.lock.display()))
        };
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| err("open", e))?;
        lock.lock().map_err(|e| err("lock", e))?;
        let mut index = self.read()?;
        index.steps.insert(key.to_string(), entry);
        let data = serde_json::to_vec(&index)
            .map_err(|e| BuildError::other(format!("encode build cache: {e}")))?;
        barge_util::fs::write_atomic(
            &self.path,
            &data,
            0o600,
            barge_util::fs::Durability::Durable,
        )
        .map_err(|e| BuildError::other(format!("write build cache {}: {e}", self.path.display())))
    }
}

/// A cache key: the sha256 of the parts, each length-prefixed.
pub fn key(parts: &[&str]) -> String {
    let mut h = Hasher::new();
    for p in parts {
        h.update(format!("{}:", p.len()).as_bytes());
        h.update(p.as_bytes());
    }
    h.finish().to_string()
}
