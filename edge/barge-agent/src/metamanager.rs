//! MetaManager: the node's desired state, cached in SQLite (WAL) so that it survives reboots
//! and link loss. `objects(kind, ns, name, revision, json)` holds every object of the node's
//! view; `meta(revision)` the revision of the last batch applied. One transaction per Sync
//! batch: the caller acks only after [`Cache::apply`] returned (the commit is durable). The
//! DeviceTwin's tables ([`crate::devicetwin`]) are in the same database.

use std::path::Path;

use anyhow::{Context, Result};
use barge_edge_proto::object::{Kind, ObjKey, Object};
use barge_edge_proto::wire::{Change, Held};
use rusqlite::{params, Connection, OptionalExtension};

pub struct Cache {
    db: Connection,
    /// The DeviceTwin's decoded devices and the hub's acks not applied yet.
    twin: crate::devicetwin::TwinMemory,
}

/// Prepared statements kept per connection (the agent uses a few dozen).
const STATEMENTS: usize = 64;

fn kind_of(s: &str) -> Option<Kind> {
    Kind::parse(s)
}

impl Cache {
    /// Open (or create) the cache at `path`.
    pub fn open(path: &Path) -> Result<Cache> {
        let db = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        db.busy_timeout(std::time::Duration::from_secs(10))
            .context("set busy timeout")?;
        db.pragma_update(None, "journal_mode", "WAL")
            .with_context(|| format!("WAL mode on {}", path.display()))?;
        // FULL: a committed batch survives a power cut (it is acked right after).
        db.pragma_update(None, "synchronous", "FULL")
            .context("synchronous=FULL")?;
        Cache::init(db, &path.display().to_string())
    }

    /// A cache in memory, gone with the process: for `edge sim`'s hollow agents (no file,
    /// no fsync per batch; ten thousand of them in one process).
    pub fn open_in_memory() -> Result<Cache> {
        let db = Connection::open_in_memory().context("open an in-memory cache")?;
        Cache::init(db, "the in-memory cache")
    }

    fn init(db: Connection, what: &str) -> Result<Cache> {
        // Room for every statement the agent prepares (rusqlite keeps 16 by default: with
        // more in use they evicted each other and every Sync batch parsed its SQL again).
        db.set_prepared_statement_cache_capacity(STATEMENTS);
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects (
                kind TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
                revision INTEGER NOT NULL, json TEXT NOT NULL,
                PRIMARY KEY (kind, ns, name));
             CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 0),
                revision INTEGER NOT NULL);
             INSERT OR IGNORE INTO meta (id, revision) VALUES (0, 0);",
        )
        .with_context(|| format!("create the cache tables in {what}"))?;
        crate::devicetwin::init(&db)?;
        Ok(Cache {
            db,
            twin: Default::default(),
        })
    }

    /// The database (the DeviceTwin's tables live next to the objects).
    pub fn db(&mut self) -> &mut Connection {
        &mut self.db
    }

    /// Where the hub's twin acks are recorded (no lock needed).
    pub fn twin_acks(&self) -> crate::devicetwin::Acks {
        self.twin.acks()
    }

    /// The database and the DeviceTwin's memory, for its handlers.
    pub fn twin(&mut self) -> (&mut Connection, &mut crate::devicetwin::TwinMemory) {
        (&mut self.db, &mut self.twin)
    }

    /// The revision of the last batch applied (0: none).
    pub fn revision(&self) -> Result<i64> {
        self.db
            .query_row("SELECT revision FROM meta WHERE id = 0", [], |r| r.get(0))
            .context("read the cache revision")
    }

    /// Every object held, with its revision (Hello's inventory).
    pub fn inventory(&self) -> Result<Vec<Held>> {
        let mut st = self
            .db
            .prepare_cached("SELECT kind, ns, name, revision FROM objects ORDER BY kind, ns, name")
            .context("list the cache")?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .context("list the cache")?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, namespace, name, revision) = row.context("read a cache row")?;
            let Some(kind) = kind_of(&kind) else { continue };
            out.push(Held {
                key: ObjKey {
                    kind,
                    namespace,
                    name,
                },
                revision,
            });
        }
        Ok(out)
    }

    /// Every object of `kind` (all kinds with `None`).
    pub fn objects(&self, kind: Option<Kind>) -> Result<Vec<Object>> {
        let mut st = self
            .db
            .prepare_cached("SELECT kind, json FROM objects ORDER BY kind, ns, name")
            .context("read the cache")?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .context("read the cache")?;
        let mut out = Vec::new();
        for row in rows {
            let (k, json) = row.context("read a cache row")?;
            if kind.is_some_and(|want| want.as_str() != k) {
                continue;
            }
            let obj: Object = serde_json::from_str(&json)
                .with_context(|| format!("cached object {k}: bad JSON"))?;
            out.push(obj);
        }
        Ok(out)
    }

    /// One object.
    pub fn get(&self, key: &ObjKey) -> Result<Option<Object>> {
        let json: Option<String> = self
            .db
            .query_row(
                "SELECT json FROM objects WHERE kind = ?1 AND ns = ?2 AND name = ?3",
                params![key.kind.as_str(), key.namespace, key.name],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("read {key} from the cache"))?;
        json.map(|j| serde_json::from_str(&j).with_context(|| format!("cached {key}: bad JSON")))
            .transpose()
    }

    /// Apply one Sync batch in one transaction (with `full`, everything not in the batch is
    /// dropped first) and record `revision`, the device twins' desired values with it
    /// ([`crate::devicetwin::after_sync`]). Durable when this returns; what changed for
    /// devices is returned for the EventBus.
    pub fn apply(
        &mut self,
        revision: i64,
        full: bool,
        changes: &[Change],
    ) -> Result<crate::devicetwin::SyncEffects> {
        let touches_devices = full
            || changes.iter().any(|c| {
                let kind = match c {
                    Change::Put { object } => object.key().kind,
                    Change::Delete { key, .. } => key.kind,
                };
                matches!(kind, Kind::Device | Kind::DeviceModel)
            });
        if touches_devices {
            // Before the transaction: whether it commits or not, nothing decoded is stale.
            self.twin.forget_devices();
        }
        let tx = self.db.transaction().context("begin a cache transaction")?;
        let dropped = crate::devicetwin::drop_acked(&tx, &self.twin)?;
        let devices_before = crate::devicetwin::device_keys(&tx)?;
        if full {
            tx.execute("DELETE FROM objects", [])
                .context("clear the cache for a full sync")?;
        }
        for c in changes {
            match c {
                Change::Put { object } => {
                    let key = object.key();
                    let json =
                        serde_json::to_string(object).with_context(|| format!("encode {key}"))?;
                    tx.prepare_cached(
                        "INSERT INTO objects (kind, ns, name, revision, json)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (kind, ns, name)
                         DO UPDATE SET revision = excluded.revision, json = excluded.json",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            key.kind.as_str(),
                            key.namespace,
                            key.name,
                            object.revision(),
                            json
                        ])
                    })
                    .with_context(|| format!("store {key} in the cache"))?;
                }
                Change::Delete { key, .. } => {
                    tx.prepare_cached(
                        "DELETE FROM objects WHERE kind = ?1 AND ns = ?2 AND name = ?3",
                    )
                    .and_then(|mut st| {
                        st.execute(params![key.kind.as_str(), key.namespace, key.name])
                    })
                    .with_context(|| format!("delete {key} from the cache"))?;
                }
            }
        }
        tx.prepare_cached("UPDATE meta SET revision = max(revision, ?1) WHERE id = 0")
            .and_then(|mut st| st.execute(params![revision]))
            .context("record the cache revision")?;
        let effects = crate::devicetwin::after_sync(&tx, &devices_before, changes)?;
        tx.commit().context("commit a Sync batch to the cache")?;
        crate::devicetwin::dropped(&mut self.twin, dropped);
        Ok(effects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barge_edge_proto::object::ObjectMeta;

    fn pod(name: &str, rev: i64) -> Object {
        Object {
            api_version: "v1".into(),
            kind: Kind::Pod,
            metadata: ObjectMeta {
                name: name.into(),
                namespace: Some("default".into()),
                resource_version: Some(rev.to_string()),
                ..Default::default()
            },
            spec: serde_json::json!({"containers": [{"name": "c", "image": "bb"}]}),
            status: serde_json::Value::Null,
            data: None,
            string_data: None,
            type_: None,
        }
    }

    #[test]
    fn batches_survive_reopen_and_full_sync_drops_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cache.db");
        {
            let mut c = Cache::open(&p).unwrap();
            assert_eq!(c.revision().unwrap(), 0);
            c.apply(
                5,
                false,
                &[
                    Change::Put {
                        object: Box::new(pod("a", 4)),
                    },
                    Change::Put {
                        object: Box::new(pod("b", 5)),
                    },
                ],
            )
            .unwrap();
            c.apply(
                7,
                false,
                &[Change::Delete {
                    key: pod("a", 0).key(),
                    revision: 7,
                }],
            )
            .unwrap();
        }
        // Reopened: what was committed is there.
        let mut c = Cache::open(&p).unwrap();
        assert_eq!(c.revision().unwrap(), 7);
        let inv = c.inventory().unwrap();
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].key.name, "b");
        assert_eq!(inv[0].revision, 5);
        assert_eq!(c.get(&pod("b", 0).key()).unwrap().unwrap(), pod("b", 5));
        assert!(c.get(&pod("a", 0).key()).unwrap().is_none());
        c.apply(
            9,
            true,
            &[Change::Put {
                object: Box::new(pod("c", 9)),
            }],
        )
        .unwrap();
        let names: Vec<String> = c
            .objects(Some(Kind::Pod))
            .unwrap()
            .into_iter()
            .map(|o| o.metadata.name)
            .collect();
        assert_eq!(names, vec!["c".to_string()]);
        // The revision never goes back.
        c.apply(3, false, &[]).unwrap();
        assert_eq!(c.revision().unwrap(), 9);
    }

    #[test]
    fn a_failed_batch_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cache.db");
        let mut c = Cache::open(&p).unwrap();
        // A second connection holds the write lock: the batch cannot commit.
        let other = Connection::open(&p).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        c.db.busy_timeout(std::time::Duration::from_millis(10))
            .unwrap();
        let r = c.apply(
            2,
            false,
            &[Change::Put {
                object: Box::new(pod("x", 2)),
            }],
        );
        assert!(r.is_err());
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(c.revision().unwrap(), 0);
        assert!(c.inventory().unwrap().is_empty());
    }
}
