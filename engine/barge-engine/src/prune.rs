//! Removing what nothing uses (`docker container|image|volume|network|system prune`), with
//! what went and the space it freed.

use std::collections::BTreeMap;

use barge_image::store::{Removed, Store};
use serde::Serialize;

use crate::disk::dir_size;
use crate::error::{Error, Result};
use crate::filters::Filters;
use crate::Engine;

/// docker's prune filters: `until` (a time or a duration ago: only what was created before
/// it), `label` (`KEY` or `KEY=VALUE`: only what has it) and `label!` (only what has not).
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// Unix seconds.
    until: Option<i64>,
    filters: Filters,
}

impl PruneFilter {
    pub fn new(filters: &Filters) -> Result<PruneFilter> {
        filters.check_keys(&["until", "label", "label!", "dangling", "all"])?;
        let until = match filters.get("until") {
            [] => None,
            [t] => Some(crate::logs::parse_time("until", t)?.0),
            _ => {
                return Err(Error::BadParameter(
                    "more than one until filter".to_string(),
                ))
            }
        };
        Ok(PruneFilter {
            until,
            filters: filters.clone(),
        })
    }

    /// `dangling=` of an image prune: Some(false) asks for every unused image (`-a`).
    pub fn dangling(&self) -> Result<Option<bool>> {
        self.flag("dangling")
    }

    /// `all=` of a volume prune: Some(true) asks for named volumes too (`-a`).
    pub fn all(&self) -> Result<Option<bool>> {
        self.flag("all")
    }

    fn flag(&self, key: &str) -> Result<Option<bool>> {
        match self.filters.get(key) {
            [] => Ok(None),
            [v] => match v.as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(Error::BadParameter(format!(
                    "invalid filter '{key}={v}': expected true or false"
                ))),
            },
            _ => Err(Error::BadParameter(format!("more than one {key} filter"))),
        }
    }

    /// Whether something created at `created` (unix seconds; None: unknown) with `labels`
    /// is to be pruned.
    pub fn matches(&self, created: Option<i64>, labels: &BTreeMap<String, String>) -> bool {
        let not = self.filters.get("label!");
        self.until.is_none_or(|u| created.is_some_and(|c| c < u))
            && self.filters.labels_match("label", labels)
            && (not.is_empty()
                || !not.iter().any(|t| {
                    let mut one = Filters::default();
                    one.add("label", t);
                    one.labels_match("label", labels)
                }))
    }
}

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
    prune_images_matching(store, all, &PruneFilter::default())
}

/// [`prune_images`] of the images `filter` selects (their config's created time and labels).
pub fn prune_images_matching(
    store: &Store,
    all: bool,
    filter: &PruneFilter,
) -> Result<ImagePruneReport> {
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
            let (created, labels) = crate::docker::image::created_and_labels(&img.config);
            if !filter.matches(created, &labels) {
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
        self.prune_containers_matching(&PruneFilter::default())
    }

    /// Remove the containers that are not running and that `filter` selects.
    pub fn prune_containers_matching(&self, filter: &PruneFilter) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        for (rec, st) in self.list(true)? {
            if !st.state.is_active() && filter.matches(Some(rec.created_secs()), &rec.config.labels)
            {
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
        self.prune_volumes_matching(all, &PruneFilter::default())
    }

    /// [`Engine::prune_volumes`] of the volumes `filter` selects.
    pub fn prune_volumes_matching(&self, all: bool, filter: &PruneFilter) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        for v in self.db.volumes()? {
            if !all && !v.anonymous || !filter.matches(Some(v.created), &v.labels) {
                continue;
            }
            if self.volume_users(&v.name)?.is_empty() {
                let size = dir_size(&self.volume_path(&v.name));
                match self.volume_remove(&v.name) {
                    Ok(()) => {
                        report.space_reclaimed += size;
                        report.deleted.push(v.name);
                    }
                    // Taken into use meanwhile: not pruned.
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(report)
    }

    /// Remove the networks no container is on (never the default one); names removed.
    pub fn prune_networks(&self) -> Result<PruneReport> {
        self.prune_networks_matching(&PruneFilter::default())
    }

    /// [`Engine::prune_networks`] of the networks `filter` selects.
    pub fn prune_networks_matching(&self, filter: &PruneFilter) -> Result<PruneReport> {
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
            let meta = n.meta.clone().unwrap_or_default();
            let created = crate::docker::time::parse_rfc3339(&meta.created);
            if !filter.matches(created, &meta.labels) {
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

    #[test]
    fn prune_filters() {
        use super::*;
        let f = |args: &[&str]| PruneFilter::new(&Filters::parse_args(args).unwrap()).unwrap();
        let labels: BTreeMap<String, String> = [("keep".to_string(), "yes".to_string())].into();
        let none = BTreeMap::new();
        assert!(f(&[]).matches(None, &none));
        assert!(f(&["label=keep"]).matches(Some(1), &labels));
        assert!(!f(&["label=keep=no"]).matches(Some(1), &labels));
        assert!(!f(&["label!=keep"]).matches(Some(1), &labels));
        assert!(f(&["label!=keep"]).matches(Some(1), &none));
        assert!(f(&["until=1000"]).matches(Some(999), &none));
        assert!(!f(&["until=1000"]).matches(Some(1000), &none));
        assert!(!f(&["until=10m"]).matches(Some(crate::docker::time::now()), &none));
        assert!(PruneFilter::new(&Filters::parse_args(&["colour=red"]).unwrap()).is_err());
        assert_eq!(f(&["dangling=false"]).dangling().unwrap(), Some(false));
        assert!(f(&["dangling=maybe"]).dangling().is_err());
        let (_dir, engine) = crate::testing::engine();
        engine
            .volume_create(
                "kept",
                [("keep".to_string(), "yes".to_string())].into(),
                true,
            )
            .unwrap();
        engine
            .volume_create("gone", Default::default(), true)
            .unwrap();
        let r = engine
            .prune_volumes_matching(false, &f(&["label!=keep"]))
            .unwrap();
        assert_eq!(r.deleted, ["gone"]);
    }
}
