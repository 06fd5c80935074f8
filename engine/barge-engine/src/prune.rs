//! Removing what nothing uses (`docker container|image|volume|network|system prune`), with
//! what went and the space it freed.

use barge_image::store::{Removed, Store};
use serde::Serialize;

use crate::disk::dir_size;
use crate::error::Result;
use crate::Engine;

/// What a prune removed and the bytes it freed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Ids (containers, networks) or names (volumes) removed.
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// What an image prune untagged and deleted, and the bytes it freed.
#[derive(Debug, Default)]
pub struct ImagePruneReport {
    pub removed: Vec<Removed>,
    pub space_reclaimed: u64,
    /// Unreferenced content collected afterwards.
    pub gc: barge_image::gc::GcReport,
}

/// Remove untagged images (with `all`, every image no container uses), then the content
/// nothing reaches any more.
pub fn prune_images(store: &Store, all: bool) -> Result<ImagePruneReport> {
    let mut report = ImagePruneReport::default();
    for rec in store.db.images()? {
        let dangling = rec.name.starts_with("<none>");
        if !(dangling || all) {
            continue;
        }
        if let Ok(img) = store.image(&rec) {
            if !store.users_of(&img)?.is_empty() {
                continue;
            }
        }
        store.db.delete_image(&rec.name)?;
        report.removed.push(Removed::Untagged(rec.name.clone()));
        if store.names_of(&rec.config)?.is_empty() {
            report.removed.push(Removed::Deleted(rec.config.clone()));
        }
    }
    report.gc = barge_image::gc::prune(store)?;
    report.space_reclaimed = report.gc.bytes;
    Ok(report)
}

impl Engine {
    /// Remove every container that is not running.
    pub fn prune_containers(&self) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        for (rec, st) in self.list(true)? {
            if !st.state.is_active() {
                let size = self.container_size_rw(&rec.id);
                self.remove(&rec.id, false, false)?;
                report.space_reclaimed += size;
                report.deleted.push(rec.id);
            }
        }
        Ok(report)
    }

    /// Remove unused images (see [`prune_images`]).
    pub fn prune_images(&self, all: bool) -> Result<ImagePruneReport> {
        prune_images(&self.images, all)
    }

    /// Remove the volumes no container uses: anonymous ones, every one with `all`.
    pub fn prune_volumes(&self, all: bool) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        for v in self.db.volumes()? {
            if !all && !v.anonymous {
                continue;
            }
            if self.volume_users(&v.name)?.is_empty() {
                let size = dir_size(&self.volume_path(&v.name));
                self.volume_remove(&v.name)?;
                report.space_reclaimed += size;
                report.deleted.push(v.name);
            }
        }
        Ok(report)
    }

    /// Remove the networks no container is on (never the default one); names removed.
    pub fn prune_networks(&self) -> Result<PruneReport> {
        let used: Vec<String> = self
            .db
            .all()?
            .into_iter()
            .flat_map(|r| r.config.networks.into_iter().map(|e| e.network))
            .collect();
        let mut report = PruneReport::default();
        for n in self.networks().list()? {
            if n.is_default() || n.meta.is_none() || used.iter().any(|u| u == n.name()) {
                continue;
            }
            if self.network_remove(n.name()).is_ok() {
                report.deleted.push(n.name().to_string());
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prunes_report_what_went() {
        let (_dir, engine) = crate::testing::engine();
        engine
            .volume_create("anon1", Default::default(), true)
            .unwrap();
        engine
            .volume_create("named", Default::default(), false)
            .unwrap();
        std::fs::write(engine.volume_path("anon1").join("f"), [0u8; 300]).unwrap();
        let r = engine.prune_volumes(false).unwrap();
        assert_eq!(r.deleted, ["anon1"]);
        assert_eq!(r.space_reclaimed, 300);
        let r = engine.prune_volumes(true).unwrap();
        assert_eq!(r.deleted, ["named"]);
        let r = engine.prune_images(false).unwrap();
        assert!(r.removed.is_empty());
    }
}
