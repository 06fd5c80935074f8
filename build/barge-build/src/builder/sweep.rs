//! What a killed build left: its workspaces (active snapshots `build-PID-…` mounted under
//! `<runroot>/build/`) and its RUN containers (`barge-build-PID-…`). A build removes those
//! of builds whose process is gone before it starts.

use std::path::Path;

use barge_engine::Engine;

/// The pid in a `PREFIX-PID-NANOS` name, if that process is gone.
fn dead_owner(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists())
}

/// Remove the leftovers of dead builds (best effort: failures are left for the next one).
pub fn sweep(engine: &Engine, run_dir: &Path) {
    if let Ok(snaps) = engine.images.snapshots.list() {
        for s in snaps {
            if s.kind == barge_image::meta::SnapshotKind::Active && dead_owner(&s.key, "build-") {
                let mnt = run_dir.join(&s.key);
                let _ = barge_image::mount::unmount_all(&mnt);
                let _ = std::fs::remove_dir(&mnt);
                let _ = engine.images.snapshots.remove(&s.key);
            }
        }
    }
    if let Ok(list) = engine.list(true) {
        for (rec, _) in list {
            if dead_owner(&rec.name, "barge-build-") {
                let _ = engine.remove(&rec.id, true, true);
            }
        }
    }
}
