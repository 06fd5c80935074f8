//! Garbage collection: removes blobs and snapshots no image name and no container reaches.
//!
//! Roots are the image names (their index, manifest, config and layers, and the snapshots of
//! their layer chain) and every writable snapshot (a container's rootfs) with its parents.
//! It runs under the store's exclusive lock, so content a pull or load has written but not yet
//! named (they hold a shared lease) is never taken.

use std::collections::HashSet;
use std::time::Duration;

use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::{self, Parsed};
use crate::meta::SnapshotKind;
use crate::store::Store;

/// How long an interrupted download is kept for a later pull to resume.
pub const INGEST_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs: u64,
    pub bytes: u64,
    pub snapshots: u64,
    pub ingests: u64,
}

/// Collect garbage. With `wait` false it gives up (`None`) when a pull or load is running.
/// Partial downloads are kept for [`INGEST_MAX_AGE`], for a later pull to resume.
pub fn collect(store: &Store, wait: bool) -> Result<Option<GcReport>> {
    collect_with(store, wait, INGEST_MAX_AGE)
}

/// `image prune`: collect garbage (waiting for running pulls), and every partial download
/// nobody is writing, however young.
pub fn prune(store: &Store) -> Result<GcReport> {
    Ok(collect_with(store, true, Duration::ZERO)?.unwrap_or_default())
}

fn collect_with(store: &Store, wait: bool, ingest_max_age: Duration) -> Result<Option<GcReport>> {
    let Some(_lock) = store.gc_lock(wait)? else {
        return Ok(None);
    };
    let mut report = GcReport::default();
    let mut live_blobs: HashSet<Digest> = HashSet::new();
    let mut live_snaps: HashSet<String> = HashSet::new();

    for rec in store.db.images()? {
        live_blobs.extend([rec.target.clone(), rec.manifest.clone(), rec.config.clone()]);
        // An index keeps the platform manifests pulled from it (a plain manifest is read
        // below, with the config).
        let index = (rec.target != rec.manifest)
            .then(|| store.content.read(&rec.target).ok())
            .flatten();
        if let Some(bytes) = index {
            if let Ok(Parsed::Index(index)) = manifest::parse(&bytes, None, rec.target.as_str()) {
                for d in index.manifests() {
                    if let Ok(d) = manifest::digest_of(d) {
                        live_blobs.insert(d);
                    }
                }
            }
        }
        match store.image(&rec) {
            Ok(image) => {
                for l in image.manifest.layers() {
                    if let Ok(d) = manifest::digest_of(l) {
                        live_blobs.insert(d);
                    }
                }
                live_snaps.extend(image.chain.iter().map(|c| c.to_string()));
            }
            Err(e) => tracing::warn!("image {}: {e}; its layers are not protected", rec.name),
        }
    }

    let snapshots = store.db.snapshots()?;
    let by_key: std::collections::HashMap<&str, &crate::meta::SnapshotRecord> =
        snapshots.iter().map(|s| (s.key.as_str(), s)).collect();
    for s in &snapshots {
        let keep = match s.kind {
            SnapshotKind::Active => true,
            SnapshotKind::Extracting => !store.snapshots.extraction_abandoned(s.id),
            SnapshotKind::Committed => false,
        };
        if keep {
            // Keep it and everything it builds on.
            let mut next = Some(s.key.as_str());
            while let Some(k) = next {
                if !live_snaps.insert(k.to_string()) && k != s.key {
                    break;
                }
                next = by_key.get(k).and_then(|r| r.parent.as_deref());
            }
        }
    }
    // A committed layer whose directory is gone is useless: forget it so a pull redoes it.
    for s in &snapshots {
        let missing = s.kind == SnapshotKind::Committed && !store.snapshots.fs_dir(s.id).is_dir();
        if missing || !live_snaps.contains(&s.key) {
            store.snapshots.remove_record_and_dir(&s.key, s.id)?;
            report.snapshots += 1;
        }
    }
    for dir in store.snapshots.orphan_dirs()? {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| crate::Error::io("remove orphan snapshot directory", &dir, e))?;
        report.snapshots += 1;
    }
    for d in store.content.list()? {
        if !live_blobs.contains(&d) {
            report.bytes += store.content.size(&d).unwrap_or(0);
            store.content.delete(&d)?;
            report.blobs += 1;
        }
    }
    report.ingests = store.content.prune_ingests(ingest_max_age)?;
    Ok(Some(report))
}
