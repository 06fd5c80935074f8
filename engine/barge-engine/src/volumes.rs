//! Named volumes: directories under `<root>/volumes/NAME/_data`, recorded in the database.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::db::VolumeRecord;
use crate::error::{Error, IoContext, Result};
use crate::Engine;

/// Volume names follow container names' rule.
pub fn validate_name(name: &str) -> Result<()> {
    crate::names::validate(name).map_err(|_| {
        Error::Invalid(format!(
            "invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed"
        ))
    })
}

impl Engine {
    /// Create a volume (an existing one is returned as is, as docker does).
    pub fn volume_create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<VolumeRecord> {
        validate_name(name)?;
        let data = self.paths.volume_data(name);
        std::fs::create_dir_all(&data).ctx("create volume directory", &data)?;
        let rec = VolumeRecord {
            name: name.into(),
            created: barge_image::meta::now(),
            labels,
            anonymous,
        };
        if self.db.insert_volume(&rec)? {
            self.emit_volume(name, crate::events::Action::Create);
        }
        self.db.volume(name)
    }

    pub fn volume_path(&self, name: &str) -> PathBuf {
        self.paths.volume_data(name)
    }

    /// Containers (ids) that mount the volume.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .db
            .all()?
            .into_iter()
            .filter(|c| {
                c.config
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.source == name)
            })
            .map(|c| c.id)
            .collect())
    }

    /// Remove a volume; one in use is refused unless `force`... even then (docker refuses too).
    pub fn volume_remove(&self, name: &str) -> Result<()> {
        self.db.volume(name)?;
        let users = self.volume_users(name)?;
        if let Some(u) = users.first() {
            return Err(Error::Conflict(format!(
                "remove volume {name}: volume is in use by container {}",
                &u[..12.min(u.len())]
            )));
        }
        let dir = self.paths.volumes().join(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).ctx("remove volume directory", &dir)
            }
            _ => {}
        }
        self.db.delete_volume(name)?;
        self.emit_volume(name, crate::events::Action::Destroy);
        Ok(())
    }

    /// Remove every volume no container uses; returns their names.
    pub fn volume_prune(&self, all: bool) -> Result<Vec<String>> {
        Ok(self.prune_volumes(all)?.deleted)
    }
}
