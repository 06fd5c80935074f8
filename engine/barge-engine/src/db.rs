//! Container and volume metadata in SQLite: the same `barge.db` as the image store (WAL,
//! `synchronous=FULL`, a busy timeout so several barge processes can work at once).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::config::ContainerConfig;
use crate::error::{Error, Result};

/// One container's row.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// Nanoseconds since the epoch.
    pub created: i64,
    pub config: ContainerConfig,
    /// False while `create` is still making it (or when a create died half-way).
    pub ready: bool,
}

impl ContainerRecord {
    /// When it was created, in unix seconds.
    pub fn created_secs(&self) -> i64 {
        self.created / 1_000_000_000
    }

    /// When it was created, as RFC 3339 with nanoseconds.
    pub fn created_rfc3339(&self) -> String {
        barge_util::time::rfc3339_nanos(self.created_secs(), (self.created % 1_000_000_000) as u32)
    }
}

#[derive(Debug, Clone)]
pub struct VolumeRecord {
    pub name: String,
    pub created: i64,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Made for an image's VOLUME (removed with `rm -v`).
    pub anonymous: bool,
}

/// Which kind of object a name belongs to ([`Db::name_taken`]).
#[derive(Debug, Clone, Copy)]
pub enum NameTable {
    Containers,
    Pods,
}

pub struct Db {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    config TEXT NOT NULL,
    ready INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    anonymous INTEGER NOT NULL DEFAULT 0
);
";

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A small page cache (see barge_image::meta): 256 KiB instead of 2 MiB.
        conn.pragma_update(None, "cache_size", -256)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::pod::store::SCHEMA)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Insert a container that is being created (`ready` = false). A taken name is a
    /// conflict naming the container that holds it.
    pub fn insert(&self, rec: &ContainerRecord) -> Result<()> {
        let config = serde_json::to_string(&rec.config)
            .map_err(Error::encode(format!("config of container {}", rec.id)))?;
        let conn = self.conn();
        let r = conn.execute(
            "INSERT INTO containers (id, name, created, config, ready) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![rec.id, rec.name, rec.created, config, rec.ready],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let holder: Option<String> = conn
                    .query_row(
                        "SELECT id FROM containers WHERE name = ?1",
                        [&rec.name],
                        |r| r.get(0),
                    )
                    .optional()?;
                Err(Error::Conflict(format!(
                    "the container name \"/{}\" is already in use by container \"{}\": remove (or rename) that container to be able to reuse that name",
                    rec.name,
                    holder.unwrap_or_default()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn set_ready(&self, id: &str) -> Result<()> {
        self.conn()
            .execute("UPDATE containers SET ready = 1 WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn update_config(&self, id: &str, config: &ContainerConfig) -> Result<()> {
        let config = serde_json::to_string(config)
            .map_err(Error::encode(format!("config of container {id}")))?;
        self.conn().execute(
            "UPDATE containers SET config = ?2 WHERE id = ?1",
            params![id, config],
        )?;
        Ok(())
    }

    pub fn rename(&self, id: &str, name: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM containers WHERE id = ?1", [id])?;
        Ok(())
    }

    fn row(r: &rusqlite::Row) -> rusqlite::Result<(String, String, i64, String, bool)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    }

    fn decode(t: (String, String, i64, String, bool)) -> Result<ContainerRecord> {
        let config = serde_json::from_str(&t.3)
            .map_err(|e| Error::Record(format!("container {}: bad stored config: {e}", t.0)))?;
        Ok(ContainerRecord {
            id: t.0,
            name: t.1,
            created: t.2,
            config,
            ready: t.4,
        })
    }

    /// Every container, newest first.
    pub fn all(&self) -> Result<Vec<ContainerRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, name, created, config, ready FROM containers ORDER BY created DESC",
        )?;
        let rows = st
            .query_map([], Self::row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(Self::decode).collect()
    }

    /// Every container's id, name and readiness, without decoding configs (a cache's check
    /// that it knows every row).
    pub fn summaries(&self) -> Result<Vec<(String, String, bool)>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id, name, ready FROM containers")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// SQLite's `data_version`: it changes when another connection (another barge process)
    /// commits to the database, never for this connection's own writes.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Hand back the memory of the page cache (`PRAGMA shrink_memory`): an idle daemon
    /// keeps none of it (the pages stay in the kernel's cache).
    pub fn release_memory(&self) {
        let _ = self.conn().execute_batch("PRAGMA shrink_memory");
    }

    /// Whether a container (`table` "containers") or a pod ("pods") has this exact name.
    pub fn name_taken(&self, table: NameTable, name: &str) -> Result<bool> {
        let sql = match table {
            NameTable::Containers => "SELECT 1 FROM containers WHERE name = ?1",
            NameTable::Pods => "SELECT 1 FROM pods WHERE name = ?1",
        };
        let hit: Option<i64> = self
            .conn()
            .query_row(sql, [name], |r| r.get(0))
            .optional()?;
        Ok(hit.is_some())
    }

    /// Find a container by full id, name, or unique id prefix.
    pub fn find(&self, key: &str) -> Result<ContainerRecord> {
        let key = key.strip_prefix('/').unwrap_or(key);
        let conn = self.conn();
        let exact = conn
            .query_row(
                "SELECT id, name, created, config, ready FROM containers WHERE id = ?1 OR name = ?1",
                [key],
                Self::row,
            )
            .optional()?;
        if let Some(t) = exact {
            return Self::decode(t);
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NoSuchContainer(key.into()));
        }
        let mut st = conn.prepare(
            "SELECT id, name, created, config, ready FROM containers WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2",
        )?;
        let mut rows = st
            .query_map([key], Self::row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        match rows.len() {
            0 => Err(Error::NoSuchContainer(key.into())),
            1 => Self::decode(rows.remove(0)),
            _ => Err(Error::Invalid(format!(
                "multiple containers match the id prefix {key}: give more characters"
            ))),
        }
    }

    pub fn insert_volume(&self, v: &VolumeRecord) -> Result<bool> {
        let labels = serde_json::to_string(&v.labels).unwrap_or_else(|_| "{}".into());
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO volumes (name, created, labels, anonymous) VALUES (?1, ?2, ?3, ?4)",
            params![v.name, v.created, labels, v.anonymous],
        )?;
        Ok(n == 1)
    }

    pub fn volumes(&self) -> Result<Vec<VolumeRecord>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT name, created, labels, anonymous FROM volumes ORDER BY name")?;
        let rows = st
            .query_map([], |r| {
                let labels: String = r.get(2)?;
                Ok(VolumeRecord {
                    name: r.get(0)?,
                    created: r.get(1)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    anonymous: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn volume(&self, name: &str) -> Result<VolumeRecord> {
        self.volumes()?
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| Error::NoSuchVolume(name.into()))
    }

    pub fn delete_volume(&self, name: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        Ok(())
    }
}
