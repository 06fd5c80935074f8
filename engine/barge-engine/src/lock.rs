//! A per-container lock (flock on `<dir>/lock`): create, start, stop and remove of one
//! container don't interleave, across processes. A crashed holder releases it.

use std::fs::File;
use std::path::Path;

use crate::error::{IoContext, Result};

pub struct ContainerLock {
    _file: File,
}

impl ContainerLock {
    /// Wait for the lock.
    pub fn acquire(path: &Path) -> Result<ContainerLock> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .ctx("open lock", path)?;
        f.lock().ctx("lock", path)?;
        Ok(ContainerLock { _file: f })
    }

    /// Whether a live process holds the lock. A lock file that is gone is held by nobody
    /// (a removal deletes it with the directory).
    pub fn is_held(path: &Path) -> bool {
        path.exists() && Self::try_acquire(path).is_none()
    }

    /// Take the lock if nobody holds it (`None` if someone does or the file is gone).
    pub fn try_acquire(path: &Path) -> Option<ContainerLock> {
        let f = File::options().write(true).open(path).ok()?;
        f.try_lock().ok()?;
        Some(ContainerLock { _file: f })
    }
}
