//! The `pods` table (in the same `barge.db` as containers): one row per pod, the config as
//! JSON. A taken name is a Conflict naming the pod that holds it.

use rusqlite::{params, OptionalExtension};

use super::config::{PodConfig, PodRecord, SandboxState};
use crate::db::Db;
use crate::error::{Error, Result};

/// Created by `Db::open` with the rest of the schema.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pods (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    config TEXT NOT NULL,
    sandbox TEXT NOT NULL DEFAULT 'created'
);
";

type Row = (String, String, i64, String, String);

fn row(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode(t: Row) -> Result<PodRecord> {
    let config: PodConfig = serde_json::from_str(&t.3)
        .map_err(|e| Error::Record(format!("pod {}: bad stored config: {e}", t.0)))?;
    let sandbox = match t.4.as_str() {
        "ready" => SandboxState::Ready,
        "stopped" => SandboxState::Stopped,
        _ => SandboxState::Created,
    };
    Ok(PodRecord {
        id: t.0,
        name: t.1,
        created: t.2,
        config,
        sandbox,
    })
}

impl Db {
    /// Insert a new pod. A taken name is a Conflict.
    pub fn insert_pod(&self, rec: &PodRecord) -> Result<()> {
        let config = serde_json::to_string(&rec.config)
            .map_err(Error::encode(format!("config of pod {}", rec.id)))?;
        let conn = self.conn();
        let r = conn.execute(
            "INSERT INTO pods (id, name, created, config, sandbox) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![rec.id, rec.name, rec.created, config, rec.sandbox.as_str()],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let holder: Option<String> = conn
                    .query_row("SELECT id FROM pods WHERE name = ?1", [&rec.name], |r| {
                        r.get(0)
                    })
                    .optional()?;
                Err(Error::Conflict(format!(
                    "the pod name {:?} is already in use by pod {}: remove that pod to reuse the name",
                    rec.name,
                    holder.unwrap_or_default()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn set_pod_sandbox(&self, id: &str, state: SandboxState) -> Result<()> {
        self.conn().execute(
            "UPDATE pods SET sandbox = ?2 WHERE id = ?1",
            params![id, state.as_str()],
        )?;
        Ok(())
    }

    pub fn delete_pod(&self, id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM pods WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Every pod, newest first.
    pub fn pods(&self) -> Result<Vec<PodRecord>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT id, name, created, config, sandbox FROM pods ORDER BY created DESC")?;
        let rows = st
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(decode).collect()
    }

    /// Find a pod by full id, name, or unique id prefix.
    pub fn find_pod(&self, key: &str) -> Result<PodRecord> {
        let conn = self.conn();
        let exact = conn
            .query_row(
                "SELECT id, name, created, config, sandbox FROM pods WHERE id = ?1 OR name = ?1",
                [key],
                row,
            )
            .optional()?;
        if let Some(t) = exact {
            return decode(t);
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NoSuchPod(key.into()));
        }
        let mut st = conn.prepare(
            "SELECT id, name, created, config, sandbox FROM pods WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2",
        )?;
        let mut rows = st
            .query_map([key], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        match rows.len() {
            0 => Err(Error::NoSuchPod(key.into())),
            1 => decode(rows.remove(0)),
            _ => Err(Error::BadParameter(format!(
                "multiple pods match the id prefix {key}: give more characters"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn rec(id: &str, name: &str) -> PodRecord {
        PodRecord {
            id: id.into(),
            name: name.into(),
            created: 1,
            config: PodConfig {
                hostname: "h".into(),
                ..Default::default()
            },
            sandbox: SandboxState::Created,
        }
    }

    #[test]
    fn pods_are_found_by_id_prefix_and_name_and_names_are_unique() {
        let (_dir, engine) = crate::testing::engine();
        let db = &engine.db;
        db.insert_pod(&rec("abc123", "one")).unwrap();
        db.insert_pod(&rec("abd456", "two")).unwrap();
        assert_eq!(db.find_pod("one").unwrap().id, "abc123");
        assert_eq!(db.find_pod("abd").unwrap().name, "two");
        assert_eq!(
            db.find_pod("ab").unwrap_err().kind(),
            ErrorKind::BadParameter
        );
        assert_eq!(db.find_pod("zz").unwrap_err().kind(), ErrorKind::NotFound);
        let dup = db.insert_pod(&rec("fff", "one")).unwrap_err();
        assert_eq!(dup.kind(), ErrorKind::Conflict);
        assert!(dup.to_string().contains("abc123"), "{dup}");
        db.set_pod_sandbox("abc123", SandboxState::Ready).unwrap();
        let got = db.find_pod("abc123").unwrap();
        assert_eq!(got.sandbox, SandboxState::Ready);
        assert_eq!(got.config.hostname, "h");
        db.delete_pod("abc123").unwrap();
        assert_eq!(db.pods().unwrap().len(), 1);
    }
}
