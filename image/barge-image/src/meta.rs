//! Metadata in SQLite (WAL, `synchronous=FULL`): image names and snapshots. The engine keeps
//! its own tables in the same database file; each layer migrates its own tables.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// One name (`registry/repo:tag` or `registry/repo@digest`) and what it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    pub name: String,
    /// What the name resolved to: an index or a manifest.
    pub target: Digest,
    /// The platform manifest chosen from `target` (equal to it for a plain manifest).
    pub manifest: Digest,
    /// The config blob: docker's image ID.
    pub config: Digest,
    /// When the name was set (unix seconds).
    pub tagged: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotKind {
    /// A layer being unpacked; its directory is flocked by the process doing it.
    Extracting,
    /// An unpacked layer, named by its chain ID; read-only from now on.
    Committed,
    /// A writable snapshot (a container's upper dir).
    Active,
}

impl SnapshotKind {
    fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::Extracting => "extracting",
            SnapshotKind::Committed => "committed",
            SnapshotKind::Active => "active",
        }
    }
    fn parse(s: &str) -> SnapshotKind {
        match s {
            "committed" => SnapshotKind::Committed,
            "active" => SnapshotKind::Active,
            _ => SnapshotKind::Extracting,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub key: String,
    /// Directory number under `snapshots/` (short, so long lowerdir lists fit a page).
    pub id: i64,
    pub parent: Option<String>,
    pub kind: SnapshotKind,
    pub created: i64,
    /// Bytes of file content unpacked into it (committed layers).
    pub size: u64,
}

pub struct Db {
    conn: Mutex<Connection>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    name TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    manifest TEXT NOT NULL,
    config TEXT NOT NULL,
    tagged INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    key TEXT PRIMARY KEY,
    id INTEGER NOT NULL UNIQUE,
    parent TEXT,
    kind TEXT NOT NULL,
    created INTEGER NOT NULL,
    size INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS snapshot_ids (next INTEGER NOT NULL);
";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A number unique enough for temporary names (nanoseconds since the epoch).
pub fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The database and its WAL files are 0600 (they hold the containers' environment): created
/// so before SQLite opens the database (SQLite gives its -wal and -shm the database's mode),
/// and brought back to it when a file had another mode.
pub fn secure_db_files(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let denied = |p: &Path, e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Error::PermissionDenied {
                path: p.to_path_buf(),
            }
        } else {
            Error::io("open", p, e)
        }
    };
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| denied(path, e))?;
    let mut name = path.as_os_str().to_owned();
    let base = name.clone();
    for suffix in ["", "-wal", "-shm"] {
        name.clone_from(&base);
        name.push(suffix);
        let p = Path::new(&name);
        match std::fs::metadata(p) {
            Ok(m) if m.permissions().mode() & 0o7777 != 0o600 => {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| denied(p, e))?
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(denied(p, e)),
        }
    }
    Ok(())
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let err = |source| Error::Db {
            path: path.to_path_buf(),
            source,
        };
        secure_db_files(path)?;
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        // A small page cache (256 KiB, not SQLite's 2 MiB): the file's pages stay in the
        // kernel's cache anyway, and a long-running daemon keeps this memory for good.
        conn.pragma_update(None, "cache_size", -256).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Db {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Hand back the memory of the page cache (`PRAGMA shrink_memory`): an idle daemon
    /// keeps none of it (the pages stay in the kernel's cache).
    pub fn release_memory(&self) {
        let _ = self.conn().execute_batch("PRAGMA shrink_memory");
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Db {
            path: self.path.clone(),
            source,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    // ---- images ----

    /// Set `rec.name`; returns the record it replaced.
    pub fn put_image(&self, rec: &ImageRecord) -> Result<Option<ImageRecord>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let old = get_image(&tx, &rec.name).map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO images (name, target, manifest, config, tagged) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![rec.name, rec.target.as_str(), rec.manifest.as_str(), rec.config.as_str(), rec.tagged],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(old)
    }

    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>> {
        get_image(&self.conn(), name).map_err(|e| self.err(e))
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name, target, manifest, config, tagged FROM images ORDER BY tagged DESC, name")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], image_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn delete_image(&self, name: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM images WHERE name = ?1", params![name])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    // ---- snapshots ----

    pub fn snapshot(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        get_snapshot(&self.conn(), key).map_err(|e| self.err(e))
    }

    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT key, id, parent, kind, created, size FROM snapshots ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], snapshot_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// A new snapshot record with a fresh directory number (numbers are never reused, so a
    /// directory left by a crash can't be mistaken for a new snapshot's).
    pub fn new_snapshot(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: SnapshotKind,
    ) -> Result<SnapshotRecord> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        if get_snapshot(&tx, key).map_err(|e| self.err(e))?.is_some() {
            return Err(Error::invalid(format!("snapshot {key}"), "already exists"));
        }
        let next: Option<i64> = tx
            .query_row("SELECT next FROM snapshot_ids", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        let id = next.unwrap_or(1);
        if next.is_some() {
            tx.execute("UPDATE snapshot_ids SET next = ?1", params![id + 1])
        } else {
            tx.execute(
                "INSERT INTO snapshot_ids (next) VALUES (?1)",
                params![id + 1],
            )
        }
        .map_err(|e| self.err(e))?;
        let rec = SnapshotRecord {
            key: key.to_string(),
            id,
            parent: parent.map(Into::into),
            kind,
            created: now(),
            size: 0,
        };
        tx.execute(
            "INSERT INTO snapshots (key, id, parent, kind, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![rec.key, rec.id, rec.parent, kind.as_str(), rec.created],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(rec)
    }

    /// Rename the extracting snapshot `from` to the committed `to` (with `parent`), unless `to`
    /// exists already (another pull won the race): then `false` and nothing changes.
    pub fn commit_snapshot(
        &self,
        from: &str,
        to: &str,
        parent: Option<&str>,
        size: u64,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        if get_snapshot(&tx, to).map_err(|e| self.err(e))?.is_some() {
            return Ok(false);
        }
        let n = tx
            .execute(
                "UPDATE snapshots SET key = ?1, parent = ?2, kind = 'committed', size = ?4 WHERE key = ?3",
                params![to, parent, from, size as i64],
            )
            .map_err(|e| self.err(e))?;
        if n != 1 {
            return Err(Error::NotFound {
                what: "snapshot",
                name: from.to_string(),
            });
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    pub fn delete_snapshot(&self, key: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM snapshots WHERE key = ?1", params![key])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn image_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRecord> {
    let digest = |i: usize| -> rusqlite::Result<Digest> {
        let s: String = r.get(i)?;
        Digest::parse(&s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    Ok(ImageRecord {
        name: r.get(0)?,
        target: digest(1)?,
        manifest: digest(2)?,
        config: digest(3)?,
        tagged: r.get(4)?,
    })
}

fn get_image(conn: &Connection, name: &str) -> rusqlite::Result<Option<ImageRecord>> {
    conn.query_row(
        "SELECT name, target, manifest, config, tagged FROM images WHERE name = ?1",
        params![name],
        image_row,
    )
    .optional()
}

fn snapshot_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SnapshotRecord> {
    let kind: String = r.get(3)?;
    Ok(SnapshotRecord {
        key: r.get(0)?,
        id: r.get(1)?,
        parent: r.get(2)?,
        kind: SnapshotKind::parse(&kind),
        created: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
    })
}

fn get_snapshot(conn: &Connection, key: &str) -> rusqlite::Result<Option<SnapshotRecord>> {
    conn.query_row(
        "SELECT key, id, parent, kind, created, size FROM snapshots WHERE key = ?1",
        params![key],
        snapshot_row,
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_snapshots() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("barge.db")).unwrap();
        let rec = ImageRecord {
            name: "docker.io/library/busybox:latest".into(),
            target: Digest::of(b"t"),
            manifest: Digest::of(b"m"),
            config: Digest::of(b"c"),
            tagged: 5,
        };
        assert_eq!(db.put_image(&rec).unwrap(), None);
        let newer = ImageRecord {
            config: Digest::of(b"c2"),
            ..rec.clone()
        };
        assert_eq!(db.put_image(&newer).unwrap(), Some(rec.clone()));
        assert_eq!(db.images().unwrap(), vec![newer.clone()]);
        assert!(db.delete_image(&rec.name).unwrap());
        assert!(!db.delete_image(&rec.name).unwrap());

        let a = db
            .new_snapshot("extract-a", None, SnapshotKind::Extracting)
            .unwrap();
        let b = db
            .new_snapshot("extract-b", None, SnapshotKind::Extracting)
            .unwrap();
        assert_ne!(a.id, b.id);
        assert!(db
            .commit_snapshot("extract-a", "sha256:chain", None, 1)
            .unwrap());
        assert!(
            !db.commit_snapshot("extract-b", "sha256:chain", None, 1)
                .unwrap(),
            "lost the race"
        );
        assert_eq!(
            db.snapshot("sha256:chain").unwrap().unwrap().kind,
            SnapshotKind::Committed
        );
        db.delete_snapshot("extract-b").unwrap();
        let c = db
            .new_snapshot("c", Some("sha256:chain"), SnapshotKind::Active)
            .unwrap();
        assert!(c.id > b.id, "ids are never reused");
        assert!(db.new_snapshot("c", None, SnapshotKind::Active).is_err());
    }
}
