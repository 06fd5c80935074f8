//! `image prune`: remove untagged images (with `all`, every image no container uses), then
//! everything no image or container reaches. Shared by the CLI and the API daemon.

use crate::error::Result;
use crate::gc::GcReport;
use crate::store::{Removed, Store};

/// What one prune did: the names removed and images deleted, in docker's order, and what
/// garbage collection reclaimed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub removed: Vec<Removed>,
    pub gc: GcReport,
}

/// Prune images: untagged ones (`<none>` names), or with `all` every image no container
/// uses; `keep` may spare more (the API's label and until filters).
pub fn prune_images(
    store: &Store,
    all: bool,
    keep: &dyn Fn(&crate::meta::ImageRecord) -> bool,
) -> Result<PruneReport> {
    let mut removed = Vec::new();
    for rec in store.db.images()? {
        let dangling = rec.name.starts_with("<none>");
        if !(dangling || all) || keep(&rec) {
            continue;
        }
        if let Ok(img) = store.image(&rec) {
            if !store.users_of(&img)?.is_empty() {
                continue;
            }
        }
        store.db.delete_image(&rec.name)?;
        removed.push(Removed::Untagged(rec.name.clone()));
        if store.names_of(&rec.config)?.is_empty() {
            removed.push(Removed::Deleted(rec.config.clone()));
        }
    }
    let gc = crate::gc::prune(store)?;
    Ok(PruneReport { removed, gc })
}
