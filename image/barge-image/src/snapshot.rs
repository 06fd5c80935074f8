//! The overlayfs snapshotter: every layer unpacked once into its own directory
//! (`snapshots/<n>/fs`), named by its chain ID; a container's rootfs is an overlay of its
//! image's layers plus a fresh upper dir. Mounts are returned as data, as containerd's
//! Snapshotter does, so the engine mounts them where and when it wants.

use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::{Digest, Hasher};
use crate::error::{Error, IoContext, Result};
use crate::meta::{Db, SnapshotKind, SnapshotRecord};
use crate::mount::Mount;

/// Chain IDs as the OCI image spec defines them: the first layer's is its diffID, each next one
/// is `sha256(parent_chain + " " + diffID)`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let mut h = Hasher::new();
                h.update(format!("{parent} {d}").as_bytes());
                h.finish()
            }
        };
        out.push(next);
    }
    out
}

pub struct Snapshotter {
    dir: PathBuf,
    db: Arc<Db>,
}

/// A layer directory being filled. Dropped without [`Snapshotter::commit_extract`], it is
/// removed; if the process dies instead, the flock on `lock` goes away with it and garbage
/// collection removes the directory.
pub struct Extraction<'a> {
    snapshotter: &'a Snapshotter,
    key: String,
    id: i64,
    /// Held from the moment the directory exists until the extraction ends.
    _lock: Option<File>,
    done: bool,
}

impl Extraction<'_> {
    /// The directory to unpack the layer into.
    pub fn dir(&self) -> PathBuf {
        self.snapshotter.fs_dir(self.id)
    }
}

impl Drop for Extraction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.snapshotter.remove_record_and_dir(&self.key, self.id);
        }
    }
}

impl Snapshotter {
    pub fn open(dir: &Path, db: Arc<Db>) -> Result<Snapshotter> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .ctx("create directory", dir)?;
        Ok(Snapshotter {
            dir: dir.to_path_buf(),
            db,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn fs_dir(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string()).join("fs")
    }

    fn work_dir(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string()).join("work")
    }

    fn lock_path(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string()).join("lock")
    }

    /// Is there a committed snapshot `key` with its directory in place (a layer that is
    /// unpacked and usable)?
    pub fn committed(&self, key: &str) -> Result<bool> {
        Ok(self
            .db
            .snapshot(key)?
            .is_some_and(|s| s.kind == SnapshotKind::Committed && self.fs_dir(s.id).is_dir()))
    }

    pub fn get(&self, key: &str) -> Result<SnapshotRecord> {
        self.db.snapshot(key)?.ok_or_else(|| Error::NotFound {
            what: "snapshot",
            name: key.to_string(),
        })
    }

    pub fn list(&self) -> Result<Vec<SnapshotRecord>> {
        self.db.snapshots()
    }

    fn make_dirs(&self, id: i64, work: bool) -> Result<()> {
        let mut b = fs::DirBuilder::new();
        b.mode(0o700);
        let top = self.dir.join(id.to_string());
        b.create(&top).ctx("create snapshot directory", &top)?;
        b.mode(0o755);
        let fs_dir = self.fs_dir(id);
        b.create(&fs_dir)
            .ctx("create snapshot directory", &fs_dir)?;
        if work {
            let w = self.work_dir(id);
            b.create(&w).ctx("create snapshot directory", &w)?;
        }
        Ok(())
    }

    /// A fresh directory to unpack one layer into.
    pub fn begin_extract(&self) -> Result<Extraction<'_>> {
        let key = format!(
            "extract-{}-{}",
            std::process::id(),
            crate::meta::now_nanos()
        );
        let rec = self.db.new_snapshot(&key, None, SnapshotKind::Extracting)?;
        let mut ex = Extraction {
            snapshotter: self,
            key,
            id: rec.id,
            _lock: None,
            done: false,
        };
        self.make_dirs(rec.id, false)?;
        let lock_path = self.lock_path(rec.id);
        let lock = File::create(&lock_path).ctx("create lock", &lock_path)?;
        lock.lock().ctx("lock", &lock_path)?;
        ex._lock = Some(lock);
        Ok(ex)
    }

    /// Name the unpacked layer `chain` (its chain ID), child of `parent`. If another pull
    /// committed the same layer meanwhile, this copy is dropped.
    pub fn commit_extract(
        &self,
        mut ex: Extraction<'_>,
        chain: &Digest,
        parent: Option<&Digest>,
        size: u64,
    ) -> Result<()> {
        let won =
            self.db
                .commit_snapshot(&ex.key, chain.as_str(), parent.map(|p| p.as_str()), size)?;
        if won {
            ex.done = true;
            let _ = fs::remove_file(self.lock_path(ex.id));
        }
        // Lost the race: the Drop removes our directory and record.
        Ok(())
    }

    /// The directories of `key` and its ancestors, topmost first.
    fn lower_dirs(&self, key: &str) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut next = Some(key.to_string());
        while let Some(k) = next {
            let rec = self.db.snapshot(&k)?.ok_or_else(|| Error::NotFound {
                what: "snapshot",
                name: format!("{k} in the chain of {key}"),
            })?;
            if rec.kind != SnapshotKind::Committed {
                return Err(Error::invalid(
                    format!("snapshot {k}"),
                    "is not committed; only committed snapshots can be parents",
                ));
            }
            out.push(self.fs_dir(rec.id));
            next = rec.parent;
            if out.len() > 500 {
                return Err(Error::invalid(
                    format!("snapshot {key}"),
                    "parent chain longer than 500 layers (a loop?)",
                ));
            }
        }
        Ok(out)
    }

    /// A writable snapshot `key` on top of `parent` (a committed chain ID): the container's
    /// rootfs. Returns the mounts that make it.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        if let Some(p) = parent {
            self.lower_dirs(p)?;
        }
        let rec = self.db.new_snapshot(key, parent, SnapshotKind::Active)?;
        if let Err(e) = self.make_dirs(rec.id, true) {
            let _ = self.remove_record_and_dir(key, rec.id);
            return Err(e);
        }
        self.mounts(key)
    }

    /// The mounts of an active snapshot.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let rec = self.get(key)?;
        if rec.kind != SnapshotKind::Active {
            return Err(Error::invalid(
                format!("snapshot {key}"),
                "is not an active snapshot",
            ));
        }
        let upper = self.fs_dir(rec.id);
        let Some(parent) = rec.parent.as_deref() else {
            return Ok(vec![Mount {
                kind: "bind".into(),
                source: upper.display().to_string(),
                options: vec!["rbind".into(), "rw".into()],
            }]);
        };
        let lowers = self.lower_dirs(parent)?;
        let all: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        for p in all.iter().chain([upper.display().to_string()].iter()) {
            if p.contains([':', ',']) {
                return Err(Error::invalid(format!("snapshot path {p}"), "contains ':' or ',' which overlayfs options can't carry; choose another --root"));
            }
        }
        Ok(vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}", all.join(":")),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", self.work_dir(rec.id).display()),
            ],
        }])
    }

    /// Remove snapshot `key` (its directory and record). A committed snapshot that others
    /// build on is refused.
    pub fn remove(&self, key: &str) -> Result<()> {
        let rec = self.get(key)?;
        let children: Vec<String> = self
            .db
            .snapshots()?
            .into_iter()
            .filter(|s| s.parent.as_deref() == Some(key))
            .map(|s| s.key)
            .collect();
        if !children.is_empty() {
            return Err(Error::InUse {
                what: "snapshot",
                name: key.to_string(),
                by: format!("parent of {}", children.join(", ")),
            });
        }
        self.remove_record_and_dir(key, rec.id)
    }

    /// Directory first, then the record: a crash in between leaves a record without a
    /// directory, which garbage collection removes, never a directory nobody knows of.
    pub(crate) fn remove_record_and_dir(&self, key: &str, id: i64) -> Result<()> {
        let top = self.dir.join(id.to_string());
        match fs::remove_dir_all(&top) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove snapshot directory", top, e)),
        }
        self.db.delete_snapshot(key)
    }

    /// Is the extracting snapshot `id` abandoned (its writer died)?
    pub(crate) fn extraction_abandoned(&self, id: i64) -> bool {
        match File::open(self.lock_path(id)) {
            Ok(f) => f.try_lock().is_ok(),
            Err(_) => true,
        }
    }

    /// Directories under `snapshots/` that no record names (left by a crash between mkdir and
    /// the record, or records removed first by an older version).
    pub(crate) fn orphan_dirs(&self) -> Result<Vec<PathBuf>> {
        let known: std::collections::HashSet<i64> =
            self.db.snapshots()?.iter().map(|s| s.id).collect();
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).ctx("list snapshots", &self.dir)? {
            let entry = entry.ctx("list snapshots", &self.dir)?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i64>().ok())
            {
                if !known.contains(&id) {
                    out.push(entry.path());
                }
            }
        }
        Ok(out)
    }
}
