//! DeviceTwin: each device's twin on the edge, durable in the agent's SQLite cache (the same
//! database and, for Sync batches, the same transaction as the objects, so a Device and its
//! twin never disagree after a crash).
//!
//! Tables:
//! - `twin_props(ns, device, prop, desired, edit, reported)`: per property the desired
//!   [`Versioned`] from the hub's Device object, a pending edge edit ([`DesiredEdit`]: base =
//!   the hub's version when the first unsent edit was made, version = base + edits) and the
//!   reported [`Versioned`] (JSON).
//! - `twin_state(ns, device, state, last_online)`: what the mapper said on `state/update`.
//! - `twin_outbox(seq, ns, device, prop, reported, desired, state)`: what the hub has not
//!   acked, one row per (device, property) (`prop` empty: the device's state). A newer report
//!   replaces the row (latest reported wins, a desired edit keeps its first base) under a new
//!   `seq`, so a long offline period stays bounded by the number of properties.
//!
//! Hot statements go through rusqlite's statement cache (parsed once per connection).
//!
//! The MQTT side ([`twin_update`], [`twin_get`], [`state_update`], [`membership`]) checks
//! everything first and writes in the caller's transaction (the EventBus: one per batch of
//! messages, a savepoint each): a refused message stores nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use barge_edge_proto::device::mqtt::{
    BaseMessage, DeviceState, DeviceTwinDelta, DeviceTwinDocument, DeviceTwinUpdate,
    MembershipDevice, MsgTwin, StateUpdate, StateUpdateResult, TwinDoc, TwinValue, TwinVersion,
    TypeMetadata, ValueMetadata,
};
use barge_edge_proto::device::{
    next_reported_version, DesiredEdit, DeviceModelSpec, DeviceSpec, Origin, Versioned,
};
use barge_edge_proto::object::{Kind, ObjKey, Object};
use barge_edge_proto::wire::{Change, PropertyReport, TwinReport};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// Most outbox rows in one `EdgeMsg::Twin`.
pub const BATCH: usize = 500;

/// Create the twin tables (idempotent).
pub fn init(db: &Connection) -> Result<()> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS twin_props (
            ns TEXT NOT NULL, device TEXT NOT NULL, prop TEXT NOT NULL,
            desired TEXT, edit TEXT, reported TEXT,
            PRIMARY KEY (ns, device, prop));
         CREATE TABLE IF NOT EXISTS twin_state (
            ns TEXT NOT NULL, device TEXT NOT NULL, state TEXT NOT NULL,
            last_online TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (ns, device));
         CREATE TABLE IF NOT EXISTS twin_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ns TEXT NOT NULL, device TEXT NOT NULL, prop TEXT NOT NULL,
            reported TEXT, desired TEXT, state TEXT,
            UNIQUE (ns, device, prop));",
    )
    .context("create the device twin tables")
}

/// A device known to the node: its namespace, name, spec and model (when the model is held).
#[derive(Debug, Clone)]
pub struct DeviceEntry {
    pub namespace: String,
    pub name: String,
    pub spec: DeviceSpec,
    pub model: Option<DeviceModelSpec>,
}

/// What the DeviceTwin keeps in memory beside the cache's tables (owned by
/// [`crate::metamanager::Cache`], used under its lock).
#[derive(Debug, Default)]
pub struct TwinMemory {
    /// Devices as last read from the cache, spec and model decoded, so that a stream of
    /// reports does not decode the same JSON for every message. Emptied by every Sync
    /// batch that touches a Device or a DeviceModel (nothing else writes those objects).
    devices: HashMap<String, Arc<DeviceEntry>>,
    /// The highest outbox seq the hub acked: set by the EdgeHub as acks arrive, without
    /// the cache's lock.
    acked: Arc<AtomicU64>,
    /// The outbox rows up to this seq are deleted.
    dropped: u64,
}

impl TwinMemory {
    /// Forget every decoded device (their objects changed).
    pub fn forget_devices(&mut self) {
        self.devices.clear();
    }

    /// The highest outbox seq the hub acked.
    fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Where the EdgeHub records the hub's acks ([`Acks::acked`]).
    pub fn acks(&self) -> Acks {
        Acks(self.acked.clone())
    }
}

/// The hub's acks of twin reports, recorded at once; the acked rows are deleted later
/// ([`flush_acks`] at each heartbeat and session start, [`drop_acked`] in Sync batches):
/// an ack costs no transaction of its own.
#[derive(Debug, Clone)]
pub struct Acks(Arc<AtomicU64>);

impl Acks {
    /// The hub merged everything up to `seq`.
    pub fn acked(&self, seq: u64) {
        self.0.fetch_max(seq, Ordering::Relaxed);
    }
}

/// Delete the outbox rows the hub acked since the last time, in `db`'s open transaction
/// (a Sync batch): the seq to pass to [`dropped`] once that transaction commits, or None
/// when nothing was to delete. (Reports never coalesce into an acked row ([`queue`]), so
/// the acked rows may stay a while: they are only dropped here, by [`flush_acks`] and in
/// Sync batches.)
pub fn drop_acked(db: &Connection, mem: &TwinMemory) -> Result<Option<u64>> {
    let seq = mem.acked();
    if seq <= mem.dropped {
        return Ok(None);
    }
    db.prepare_cached("DELETE FROM twin_outbox WHERE seq <= ?1")
        .and_then(|mut st| st.execute(params![seq as i64]))
        .with_context(|| format!("drop acked twin reports up to {seq}"))?;
    Ok(Some(seq))
}

/// The transaction that ran [`drop_acked`] committed.
pub fn dropped(mem: &mut TwinMemory, seq: Option<u64>) {
    if let Some(seq) = seq {
        mem.dropped = mem.dropped.max(seq);
    }
}

/// Delete what the hub acked now, as its own transaction (at each heartbeat, and before a
/// session reads the outbox from its start).
///
/// Without an fsync of its own (the connection's `synchronous` is FULL for everything
/// else): a power cut that undoes this delete only makes the agent send those reports
/// again, and the hub ignores a report whose version it already holds. The next durable
/// commit carries the delete to disk with it.
pub fn flush_acks(db: &Connection, mem: &mut TwinMemory) -> Result<()> {
    if mem.acked() <= mem.dropped {
        return Ok(());
    }
    db.pragma_update(None, "synchronous", "NORMAL")
        .context("synchronous=NORMAL for an outbox ack")?;
    let r = drop_acked(db, mem);
    db.pragma_update(None, "synchronous", "FULL")
        .context("synchronous=FULL after an outbox ack")?;
    dropped(mem, r?);
    Ok(())
}

/// One property's twin row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropRow {
    pub desired: Option<Versioned>,
    pub edit: Option<DesiredEdit>,
    pub reported: Option<Versioned>,
}

impl PropRow {
    /// The desired value in force on the edge: the pending edit, else the hub's.
    pub fn effective_desired(&self) -> Option<(String, i64)> {
        match (&self.edit, &self.desired) {
            (Some(e), _) => Some((e.value.clone(), e.timestamp)),
            (None, Some(d)) => Some((d.value.clone(), d.timestamp)),
            (None, None) => None,
        }
    }
}

/// What a Sync batch changed for devices (for the EventBus to publish after the commit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncEffects {
    /// Devices (ns, name) whose desired values or model may have changed.
    pub changed: BTreeSet<(String, String)>,
    pub added: BTreeSet<(String, String)>,
    /// Removed devices, with their last spec (for `membership/updated`).
    pub removed: Vec<(String, String)>,
}

impl SyncEffects {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// A refused EventBus request: 400 (malformed, bad value), 404 (unknown device/property),
/// 500 (the agent failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
}

fn refuse(code: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        code,
        reason: reason.into(),
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    refuse(500, e.to_string())
}

/// Devices (ns, name) held in the cache.
pub fn device_keys(db: &Connection) -> Result<BTreeSet<(String, String)>> {
    let mut st = db
        .prepare_cached("SELECT ns, name FROM objects WHERE kind = 'Device'")
        .context("list the cached devices")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .context("list the cached devices")?;
    let mut out = BTreeSet::new();
    for r in rows {
        out.insert(r.context("read a cached device")?);
    }
    Ok(out)
}

fn object_json(db: &Connection, kind: Kind, ns: &str, name: &str) -> Result<Option<Object>> {
    let json: Option<String> = db
        .prepare_cached("SELECT json FROM objects WHERE kind = ?1 AND ns = ?2 AND name = ?3")
        .and_then(|mut st| st.query_row(params![kind.as_str(), ns, name], |r| r.get(0)))
        .optional()
        .with_context(|| format!("read {kind} {ns}/{name} from the cache"))?;
    json.map(|j| {
        serde_json::from_str(&j).with_context(|| format!("cached {kind} {ns}/{name}: bad JSON"))
    })
    .transpose()
}

/// A device by namespace and name, with its model.
pub fn device(db: &Connection, ns: &str, name: &str) -> Result<Option<DeviceEntry>> {
    let Some(obj) = object_json(db, Kind::Device, ns, name)? else {
        return Ok(None);
    };
    let spec: DeviceSpec = serde_json::from_value(obj.spec.clone())
        .with_context(|| format!("Device {ns}/{name}: malformed spec"))?;
    let model = match &spec.device_model_ref {
        Some(r) => match object_json(db, Kind::DeviceModel, ns, &r.name)? {
            Some(m) => Some(
                serde_json::from_value::<DeviceModelSpec>(m.spec.clone())
                    .with_context(|| format!("DeviceModel {ns}/{}: malformed spec", r.name))?,
            ),
            None => None,
        },
        None => None,
    };
    Ok(Some(DeviceEntry {
        namespace: ns.to_string(),
        name: name.to_string(),
        spec,
        model,
    }))
}

/// A device by its EventBus id (its name; the hub keeps names unique per node).
pub fn device_by_id(db: &Connection, id: &str) -> Result<Option<DeviceEntry>> {
    let ns: Option<String> = db
        .prepare_cached(
            "SELECT ns FROM objects WHERE kind = 'Device' AND name = ?1 ORDER BY ns LIMIT 1",
        )
        .and_then(|mut st| st.query_row(params![id], |r| r.get(0)))
        .optional()
        .with_context(|| format!("find device {id} in the cache"))?;
    match ns {
        Some(ns) => device(db, &ns, id),
        None => Ok(None),
    }
}

fn parse_opt<T: serde::de::DeserializeOwned>(s: Option<String>, what: &str) -> Result<Option<T>> {
    s.map(|j| serde_json::from_str(&j).with_context(|| format!("twin row: bad {what} JSON")))
        .transpose()
}

fn to_json<T: serde::Serialize>(v: &Option<T>) -> Result<Option<String>> {
    v.as_ref()
        .map(|v| serde_json::to_string(v).context("encode a twin value"))
        .transpose()
}

/// Every property row of a device.
pub fn props(db: &Connection, ns: &str, device: &str) -> Result<BTreeMap<String, PropRow>> {
    let mut st = db
        .prepare_cached(
            "SELECT prop, desired, edit, reported FROM twin_props WHERE ns = ?1 AND device = ?2",
        )
        .context("read a device twin")?;
    let rows = st
        .query_map(params![ns, device], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .with_context(|| format!("read the twin of {ns}/{device}"))?;
    let mut out = BTreeMap::new();
    for r in rows {
        let (prop, d, e, rep) = r.with_context(|| format!("read the twin of {ns}/{device}"))?;
        out.insert(
            prop,
            PropRow {
                desired: parse_opt(d, "desired")?,
                edit: parse_opt(e, "edit")?,
                reported: parse_opt(rep, "reported")?,
            },
        );
    }
    Ok(out)
}

fn put_prop(tx: &Connection, ns: &str, device: &str, prop: &str, row: &PropRow) -> Result<()> {
    let (desired, edit, reported) = (
        to_json(&row.desired)?,
        to_json(&row.edit)?,
        to_json(&row.reported)?,
    );
    tx.prepare_cached(
        "INSERT INTO twin_props (ns, device, prop, desired, edit, reported)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (ns, device, prop) DO UPDATE SET desired = excluded.desired,
            edit = excluded.edit, reported = excluded.reported",
    )
    .and_then(|mut st| st.execute(params![ns, device, prop, desired, edit, reported]))
    .with_context(|| format!("store the twin of {ns}/{device} property {prop}"))?;
    Ok(())
}

/// Queue a report for the hub, coalesced with what is already queued for the same
/// (device, property) and not yet acked (seq above `acked`): the latest reported value
/// wins, a desired edit keeps its first base. A row the hub already acked is replaced.
#[allow(clippy::too_many_arguments)]
pub fn queue(
    tx: &Connection,
    acked: u64,
    ns: &str,
    device: &str,
    prop: &str,
    reported: Option<&Versioned>,
    desired: Option<&DesiredEdit>,
    state: Option<&str>,
) -> Result<()> {
    // The row queued for this property (at most one: each queue replaces it), taken out
    // in the same statement; it is merged into the new one unless the hub acked it.
    let mut old: Option<(Option<String>, Option<String>, Option<String>)> = None;
    {
        let mut st = tx
            .prepare_cached(
                "DELETE FROM twin_outbox WHERE ns = ?1 AND device = ?2 AND prop = ?3
                 RETURNING seq, reported, desired, state",
            )
            .with_context(|| format!("coalesce the outbox for {ns}/{device}"))?;
        let mut rows = st
            .query(params![ns, device, prop])
            .with_context(|| format!("coalesce the outbox for {ns}/{device}"))?;
        while let Some(r) = rows
            .next()
            .with_context(|| format!("coalesce the outbox for {ns}/{device}"))?
        {
            let seq: i64 = r.get(0).context("an outbox row's seq")?;
            if seq as u64 > acked {
                old = Some((r.get(1)?, r.get(2)?, r.get(3)?));
            }
        }
    }
    let (old_rep, old_des, old_state) = match old {
        Some((r, d, s)) => (
            parse_opt::<Versioned>(r, "reported")?,
            parse_opt::<DesiredEdit>(d, "desired")?,
            s,
        ),
        None => (None, None, None),
    };
    let rep = reported.cloned().or(old_rep);
    let des = match (old_des, desired) {
        (Some(o), Some(n)) => Some(DesiredEdit {
            base: o.base.min(n.base),
            ..n.clone()
        }),
        (o, n) => n.cloned().or(o),
    };
    let state = state.map(str::to_string).or(old_state);
    let (rep, des) = (to_json(&rep)?, to_json(&des)?);
    tx.prepare_cached(
        "INSERT INTO twin_outbox (ns, device, prop, reported, desired, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| st.execute(params![ns, device, prop, rep, des, state]))
    .with_context(|| format!("queue a twin report for {ns}/{device}"))?;
    Ok(())
}

/// Outbox entries after `after` (at most [`BATCH`] rows) as one `EdgeMsg::Twin` payload.
/// None when nothing is waiting.
pub fn pending(db: &Connection, after: u64) -> Result<Option<Pending>> {
    // The limit is a literal, not a bound parameter: SQLite (built with STAT4) re-prepares a
    // statement at every execution when a LIMIT is bound, which was an eighth of the
    // agent's CPU under a steady stream of reports.
    const _: () = assert!(BATCH == 500);
    let mut st = db
        .prepare_cached(
            "SELECT seq, ns, device, prop, reported, desired, state FROM twin_outbox
             WHERE seq > ?1 ORDER BY seq LIMIT 500",
        )
        .context("read the twin outbox")?;
    type Row = (
        i64,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows = st
        .query_map(params![after as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .context("read the twin outbox")?;
    let mut max = 0u64;
    let mut n = 0;
    let mut by_dev: BTreeMap<(String, String), TwinReport> = BTreeMap::new();
    for r in rows {
        let (seq, ns, dev, prop, rep, des, state): Row = r.context("read a twin outbox row")?;
        max = max.max(seq.max(0) as u64);
        n += 1;
        let e = by_dev
            .entry((ns.clone(), dev.clone()))
            .or_insert_with(|| TwinReport {
                key: ObjKey {
                    kind: Kind::Device,
                    namespace: ns,
                    name: dev,
                },
                properties: Vec::new(),
                state: None,
            });
        if prop.is_empty() {
            e.state = state;
        } else {
            e.properties.push(PropertyReport {
                name: prop,
                reported: parse_opt(rep, "reported")?,
                desired: parse_opt(des, "desired")?,
            });
        }
    }
    if by_dev.is_empty() {
        return Ok(None);
    }
    Ok(Some(Pending {
        seq: max,
        devices: by_dev.into_values().collect(),
        more: n >= BATCH,
    }))
}

/// One `EdgeMsg::Twin`'s worth of the outbox.
#[derive(Debug)]
pub struct Pending {
    /// The highest outbox seq in it.
    pub seq: u64,
    pub devices: Vec<TwinReport>,
    /// It was a full batch: more rows may wait after `seq`.
    pub more: bool,
}

/// How many reports wait for the hub.
pub fn outbox_len(db: &Connection) -> Result<u64> {
    db.query_row("SELECT count(*) FROM twin_outbox", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
    .context("count the twin outbox")
}

/// Inside a Sync batch's transaction, after its changes: take desired values from the Device
/// objects (adopting the hub's value when its version reaches the pending edit's, which is
/// dropped then), forget removed devices, and say what to publish.
pub fn after_sync(
    tx: &Transaction,
    before: &BTreeSet<(String, String)>,
    changes: &[Change],
) -> Result<SyncEffects> {
    let after = device_keys(tx)?;
    let mut fx = SyncEffects {
        added: after.difference(before).cloned().collect(),
        ..Default::default()
    };
    for (ns, name) in before.difference(&after) {
        for table in ["twin_props", "twin_state", "twin_outbox"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE ns = ?1 AND device = ?2"),
                params![ns, name],
            )
            .with_context(|| format!("forget the twin of removed device {ns}/{name}"))?;
        }
        fx.removed.push((ns.clone(), name.clone()));
    }
    let mut models: BTreeSet<(String, String)> = BTreeSet::new();
    for c in changes {
        let Change::Put { object } = c else { continue };
        let key = object.key();
        match key.kind {
            Kind::Device if after.contains(&(key.namespace.clone(), key.name.clone())) => {
                fx.changed.insert((key.namespace, key.name));
            }
            Kind::DeviceModel => {
                models.insert((key.namespace, key.name));
            }
            _ => {}
        }
    }
    // Devices whose model changed: their deltas may change (types, bounds).
    for (ns, name) in &after {
        if let Some(d) = device(tx, ns, name)? {
            if let Some(r) = &d.spec.device_model_ref {
                if models.contains(&(ns.clone(), r.name.clone())) {
                    fx.changed.insert((ns.clone(), name.clone()));
                }
            }
        }
    }
    for (ns, name) in fx.changed.clone() {
        let Some(d) = device(tx, &ns, &name)? else {
            continue;
        };
        let mut rows = props(tx, &ns, &name)?;
        for p in &d.spec.properties {
            let row = rows.entry(p.name.clone()).or_default();
            let hub = p.desired.as_ref().map(Versioned::from_twin_property);
            if let (Some(h), Some(e)) = (&hub, &row.edit) {
                if h.version >= e.version {
                    row.edit = None;
                }
            }
            row.desired = hub;
            put_prop(tx, &ns, &name, &p.name, row)?;
        }
    }
    Ok(fx)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn value(v: &str, ts: i64) -> TwinValue {
    TwinValue {
        value: Some(v.to_string()),
        metadata: Some(ValueMetadata { timestamp: ts }),
    }
}

fn version_of(version: u64, origin: Origin) -> TwinVersion {
    let v = version.min(i64::MAX as u64) as i64;
    match origin {
        Origin::Cloud => TwinVersion { cloud: v, edge: 0 },
        Origin::Edge => TwinVersion { cloud: 0, edge: v },
    }
}

/// A property's twin as the EventBus shows it.
pub fn msg_twin(row: &PropRow, type_: Option<&str>) -> MsgTwin {
    let (expected, expected_version) = match (&row.edit, &row.desired) {
        (Some(e), _) => (
            Some(value(&e.value, e.timestamp)),
            Some(version_of(e.version, Origin::Edge)),
        ),
        (None, Some(d)) => (
            Some(value(&d.value, d.timestamp)),
            Some(version_of(d.version, d.origin)),
        ),
        (None, None) => (None, None),
    };
    MsgTwin {
        expected,
        actual: row.reported.as_ref().map(|r| value(&r.value, r.timestamp)),
        optional: None,
        metadata: type_.map(|t| TypeMetadata {
            type_: t.to_string(),
        }),
        expected_version,
        actual_version: row
            .reported
            .as_ref()
            .map(|r| version_of(r.version, r.origin)),
    }
}

/// Every property of a device: its model's, its spec's and any with a twin row.
fn full_twin(d: &DeviceEntry, rows: &BTreeMap<String, PropRow>) -> BTreeMap<String, MsgTwin> {
    let mut names: BTreeSet<String> = rows.keys().cloned().collect();
    names.extend(d.spec.properties.iter().map(|p| p.name.clone()));
    if let Some(m) = &d.model {
        names.extend(m.properties.iter().map(|p| p.name.clone()));
    }
    names
        .into_iter()
        .map(|n| {
            let ty = d
                .model
                .as_ref()
                .and_then(|m| m.property(&n))
                .map(|p| p.type_.twin_type());
            let row = rows.get(&n).cloned().unwrap_or_default();
            let t = msg_twin(&row, ty);
            (n, t)
        })
        .collect()
}

/// The `twin/update/delta` of a device: its twin, and each desired value that differs from
/// the reported one. None when nothing differs.
pub fn delta(db: &Connection, ns: &str, name: &str) -> Result<Option<DeviceTwinDelta>> {
    let Some(d) = device(db, ns, name)? else {
        return Ok(None);
    };
    let rows = props(db, ns, name)?;
    let mut delta = BTreeMap::new();
    for (prop, row) in &rows {
        if let Some((v, _)) = row.effective_desired() {
            if row.reported.as_ref().map(|r| &r.value) != Some(&v) {
                delta.insert(prop.clone(), v);
            }
        }
    }
    if delta.is_empty() {
        return Ok(None);
    }
    Ok(Some(DeviceTwinDelta {
        base: BaseMessage {
            event_id: format!("delta-{}", now_ms()),
            timestamp: now_ms(),
        },
        twin: full_twin(&d, &rows),
        delta,
    }))
}

/// What a twin/update produced: the answer, the document, and the delta when an `expected`
/// changed.
#[derive(Debug, Clone)]
pub struct UpdateOutcome {
    pub namespace: String,
    pub result: DeviceTwinUpdate,
    pub document: DeviceTwinDocument,
    pub delta: Option<DeviceTwinDelta>,
}

fn lookup(db: &Connection, mem: &mut TwinMemory, id: &str) -> Result<Arc<DeviceEntry>, Refusal> {
    if let Some(d) = mem.devices.get(id) {
        return Ok(d.clone());
    }
    let d = device_by_id(db, id)
        .map_err(internal)?
        .ok_or_else(|| refuse(404, format!("device {id:?} is not on this node")))?;
    let d = Arc::new(d);
    mem.devices.insert(id.to_string(), d.clone());
    Ok(d)
}

/// `$hw/events/device/{id}/twin/update`: check every property of the message (known
/// property, `actual` valid for its type and range, `expected` valid and writable), then
/// store reported values and desired edits and queue them for the hub. Writes go to `db`
/// as it is: the caller's transaction (the EventBus commits a batch of messages at once,
/// each in its own savepoint, rolled back when this refuses).
pub fn twin_update(
    db: &Connection,
    mem: &mut TwinMemory,
    id: &str,
    payload: &[u8],
) -> Result<UpdateOutcome, Refusal> {
    let msg: DeviceTwinUpdate = serde_json::from_slice(payload)
        .map_err(|e| refuse(400, format!("malformed twin update for {id}: {e}")))?;
    let d = lookup(db, mem, id)?;
    if msg.twin.is_empty() {
        return Err(refuse(
            400,
            format!("twin update for {id} names no property"),
        ));
    }
    // Everything is checked before anything is written.
    for (prop, t) in &msg.twin {
        let model = d.model.as_ref().and_then(|m| m.property(prop));
        let in_spec = d.spec.property(prop).is_some();
        if model.is_none() && !in_spec {
            return Err(refuse(404, format!("device {id} has no property {prop:?}")));
        }
        let actual = t.actual.as_ref().and_then(|a| a.value.as_deref());
        let expected = t.expected.as_ref().and_then(|a| a.value.as_deref());
        if actual.is_none() && expected.is_none() {
            return Err(refuse(
                400,
                format!("device {id} property {prop}: neither actual nor expected has a value"),
            ));
        }
        if let Some(m) = model {
            if let Some(v) = actual {
                m.check_value(v)
                    .map_err(|e| refuse(400, format!("device {id} property {prop}: actual {e}")))?;
            }
            if let Some(v) = expected {
                m.check_desired(v).map_err(|e| {
                    refuse(400, format!("device {id} property {prop}: expected {e}"))
                })?;
            }
        }
    }
    let ns = d.namespace.clone();
    let now = now_ms();
    let tx = db;
    let mut rows = props(tx, &ns, id).map_err(internal)?;
    let mut result = BTreeMap::new();
    let mut doc = BTreeMap::new();
    let mut expected_changed = false;
    for (prop, t) in &msg.twin {
        let ty = d
            .model
            .as_ref()
            .and_then(|m| m.property(prop))
            .map(|p| p.type_.twin_type());
        let row = rows.entry(prop.clone()).or_default();
        let last = msg_twin(row, ty);
        let mut reported = None;
        let mut edit = None;
        if let Some(v) = t.actual.as_ref().and_then(|a| a.value.clone()) {
            let ts = t
                .actual
                .as_ref()
                .and_then(|a| a.metadata.as_ref())
                .map(|m| m.timestamp)
                .filter(|t| *t > 0)
                .unwrap_or(now);
            let prev = row.reported.as_ref().map(|r| r.version).unwrap_or(0);
            let r = Versioned {
                value: v,
                version: next_reported_version(prev, now),
                origin: Origin::Edge,
                timestamp: ts,
            };
            row.reported = Some(r.clone());
            reported = Some(r);
        }
        if let Some(v) = t.expected.as_ref().and_then(|a| a.value.clone()) {
            let same = row.effective_desired().is_some_and(|(cur, _)| cur == v);
            if !same {
                let e = match &row.edit {
                    Some(e) => DesiredEdit {
                        value: v,
                        base: e.base,
                        version: e.version + 1,
                        timestamp: now,
                    },
                    None => {
                        let base = row.desired.as_ref().map(|d| d.version).unwrap_or(0);
                        DesiredEdit {
                            value: v,
                            base,
                            version: base + 1,
                            timestamp: now,
                        }
                    }
                };
                row.edit = Some(e.clone());
                edit = Some(e);
                expected_changed = true;
            }
        }
        put_prop(tx, &ns, id, prop, row).map_err(internal)?;
        if reported.is_some() || edit.is_some() {
            queue(
                tx,
                mem.acked(),
                &ns,
                id,
                prop,
                reported.as_ref(),
                edit.as_ref(),
                None,
            )
            .map_err(internal)?;
        }
        let current = msg_twin(row, ty);
        result.insert(prop.clone(), current.clone());
        doc.insert(
            prop.clone(),
            TwinDoc {
                last: Some(last),
                current: Some(current),
            },
        );
    }
    let base = BaseMessage {
        event_id: msg.base.event_id.clone(),
        timestamp: now,
    };
    let delta = if expected_changed {
        delta(db, &ns, id).map_err(internal)?
    } else {
        None
    };
    Ok(UpdateOutcome {
        namespace: ns,
        result: DeviceTwinUpdate {
            base: base.clone(),
            twin: result,
        },
        document: DeviceTwinDocument { base, twin: doc },
        delta,
    })
}

/// `twin/get`: every property of the device (expected/actual with timestamps, type,
/// versions).
pub fn twin_get(
    db: &Connection,
    mem: &mut TwinMemory,
    id: &str,
    payload: &[u8],
) -> Result<DeviceTwinUpdate, Refusal> {
    let event_id = serde_json::from_slice::<BaseMessage>(payload)
        .map(|b| b.event_id)
        .unwrap_or_default();
    let d = lookup(db, mem, id)?;
    let rows = props(db, &d.namespace, id).map_err(internal)?;
    Ok(DeviceTwinUpdate {
        base: BaseMessage {
            event_id,
            timestamp: now_ms(),
        },
        twin: full_twin(&d, &rows),
    })
}

/// `state/update`: store the device's state and queue it for the hub (in the caller's
/// transaction, like [`twin_update`]).
pub fn state_update(
    db: &Connection,
    mem: &mut TwinMemory,
    id: &str,
    payload: &[u8],
) -> Result<StateUpdateResult, Refusal> {
    let msg: StateUpdate = serde_json::from_slice(payload)
        .map_err(|e| refuse(400, format!("malformed state update for {id}: {e}")))?;
    if !matches!(msg.state.as_str(), "online" | "offline" | "unknown") {
        return Err(refuse(
            400,
            format!(
                "device {id}: state {:?} is not online, offline or unknown",
                msg.state
            ),
        ));
    }
    let d = lookup(db, mem, id)?;
    let ns = d.namespace.clone();
    let tx = db;
    let last_online = if msg.state == "online" {
        barge_util::time::now_rfc3339()
    } else {
        tx.query_row(
            "SELECT last_online FROM twin_state WHERE ns = ?1 AND device = ?2",
            params![ns, id],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(internal)?
        .unwrap_or_default()
    };
    tx.execute(
        "INSERT INTO twin_state (ns, device, state, last_online) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (ns, device) DO UPDATE SET state = excluded.state,
            last_online = excluded.last_online",
        params![ns, id, msg.state, last_online],
    )
    .map_err(internal)?;
    queue(tx, mem.acked(), &ns, id, "", None, None, Some(&msg.state)).map_err(internal)?;
    Ok(StateUpdateResult {
        base: BaseMessage {
            event_id: msg.base.event_id,
            timestamp: now_ms(),
        },
        device: DeviceState {
            name: id.to_string(),
            state: msg.state,
            last_online,
        },
    })
}

/// A device as `membership/get/result` and `membership/updated` show it.
pub fn membership_device(
    db: &Connection,
    ns: &str,
    name: &str,
) -> Result<Option<MembershipDevice>> {
    let Some(d) = device(db, ns, name)? else {
        return Ok(None);
    };
    let rows = props(db, ns, name)?;
    let (state, last_online) = db
        .query_row(
            "SELECT state, last_online FROM twin_state WHERE ns = ?1 AND device = ?2",
            params![ns, name],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()
        .with_context(|| format!("read the state of {ns}/{name}"))?
        .unwrap_or_else(|| ("unknown".into(), String::new()));
    Ok(Some(MembershipDevice {
        id: name.to_string(),
        name: name.to_string(),
        description: None,
        state,
        last_online,
        twin: full_twin(&d, &rows),
        namespace: Some(ns.to_string()),
        spec: Some(d.spec),
        model: d.model,
    }))
}

/// `membership/get`: every device of the node.
pub fn membership(db: &Connection) -> Result<Vec<MembershipDevice>> {
    let mut out = Vec::new();
    for (ns, name) in device_keys(db)? {
        if let Some(m) = membership_device(db, &ns, &name)? {
            out.push(m);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metamanager::Cache;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Change {
        Change::Put {
            object: Box::new(serde_json::from_value(v).unwrap()),
        }
    }

    fn model() -> Change {
        obj(
            json!({"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
            "metadata": {"name": "thermo", "namespace": "default", "resourceVersion": "1"},
            "spec": {"properties": [
                {"name": "temp", "type": "INT", "accessMode": "ReadWrite", "minimum": "0", "maximum": "100"},
                {"name": "hum", "type": "FLOAT", "accessMode": "ReadOnly"}]}}),
        )
    }

    fn dev(desired: &str, version: u64, rev: i64) -> Change {
        obj(
            json!({"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
            "metadata": {"name": "t1", "namespace": "default", "resourceVersion": rev.to_string()},
            "spec": {"deviceModelRef": {"name": "thermo"}, "nodeName": "n1",
                "properties": [{"name": "temp", "desired": {"value": desired,
                    "metadata": {"version": version.to_string(), "origin": "cloud", "timestamp": "1"}}},
                    {"name": "hum"}]}}),
        )
    }

    /// Device t1 removed from the node at `rev`.
    fn gone(rev: i64) -> Change {
        Change::Delete {
            key: ObjKey {
                kind: Kind::Device,
                namespace: "default".into(),
                name: "t1".into(),
            },
            revision: rev,
        }
    }

    fn snapshot(c: &mut Cache) -> (BTreeMap<String, PropRow>, u64) {
        (
            props(c.db(), "default", "t1").unwrap(),
            outbox_len(c.db()).unwrap(),
        )
    }

    #[test]
    fn sync_updates_and_mqtt_edits_merge_by_version_and_coalesce() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Cache::open(&d.path().join("cache.db")).unwrap();
        let fx = c.apply(2, false, &[model(), dev("30", 1, 2)]).unwrap();
        assert!(fx.added.contains(&("default".into(), "t1".into())));
        let delta = delta(c.db(), "default", "t1").unwrap().unwrap();
        assert_eq!(delta.delta.get("temp").map(String::as_str), Some("30"));

        // The mapper reports: reported stored and queued; the delta is gone.
        let out = twin_update(
            c.db(),
            &mut TwinMemory::default(),
            "t1",
            br#"{"event_id":"e1","twin":{"temp":{"actual":{"value":"30"}}}}"#,
        )
        .unwrap();
        assert_eq!(out.result.base.event_id, "e1");
        assert!(out.delta.is_none());
        assert!(super::delta(c.db(), "default", "t1").unwrap().is_none());

        // Bad input changes nothing.
        let before = snapshot(&mut c);
        for (id, body, code) in [
            ("t1", &b"{nope"[..], 400),
            (
                "ghost",
                br#"{"twin":{"temp":{"actual":{"value":"1"}}}}"#,
                404,
            ),
            ("t1", br#"{"twin":{"nope":{"actual":{"value":"1"}}}}"#, 404),
            (
                "t1",
                br#"{"twin":{"temp":{"actual":{"value":"101"}}}}"#,
                400,
            ),
            (
                "t1",
                br#"{"twin":{"temp":{"actual":{"value":"warm"}}}}"#,
                400,
            ),
            ("t1", br#"{"twin":{"hum":{"expected":{"value":"3"}}}}"#, 400),
            // One bad property refuses the whole message.
            (
                "t1",
                br#"{"twin":{"temp":{"actual":{"value":"5"}},"hum":{"actual":{"value":"x"}}}}"#,
                400,
            ),
        ] {
            let e = twin_update(c.db(), &mut TwinMemory::default(), id, body).unwrap_err();
            assert_eq!(e.code, code, "{id} {}: {e}", String::from_utf8_lossy(body));
        }
        assert_eq!(snapshot(&mut c), before);

        // Two edge edits while the hub is away: base 1, version 3; coalesced in the outbox.
        for v in ["40", "45"] {
            let body = format!(r#"{{"twin":{{"temp":{{"expected":{{"value":"{v}"}}}}}}}}"#);
            let out =
                twin_update(c.db(), &mut TwinMemory::default(), "t1", body.as_bytes()).unwrap();
            assert_eq!(out.delta.unwrap().delta["temp"], v);
        }
        let rows = props(c.db(), "default", "t1").unwrap();
        let e = rows["temp"].edit.clone().unwrap();
        assert_eq!((e.value.as_str(), e.base, e.version), ("45", 1, 3));
        assert_eq!(outbox_len(c.db()).unwrap(), 1);
        let out = pending(c.db(), 0).unwrap().unwrap();
        assert!(!out.more);
        let (seq, reports) = (out.seq, out.devices);
        let p = &reports[0].properties[0];
        assert_eq!(p.reported.as_ref().unwrap().value, "30");
        assert_eq!(p.desired.as_ref().unwrap().base, 1);
        assert_eq!(p.desired.as_ref().unwrap().version, 3);

        // A cloud change below the edit's version keeps the edit; one reaching it drops it.
        c.apply(3, false, &[dev("50", 2, 3)]).unwrap();
        let rows = props(c.db(), "default", "t1").unwrap();
        assert_eq!(rows["temp"].effective_desired().unwrap().0, "45");
        c.apply(4, false, &[dev("45", 3, 4)]).unwrap();
        let rows = props(c.db(), "default", "t1").unwrap();
        assert!(rows["temp"].edit.is_none());
        assert_eq!(rows["temp"].desired.as_ref().unwrap().version, 3);

        // Acked: gone; a report made after the batch was read survives the ack.
        twin_update(
            c.db(),
            &mut TwinMemory::default(),
            "t1",
            br#"{"twin":{"temp":{"actual":{"value":"45"}}}}"#,
        )
        .unwrap();
        {
            let (db, mem) = c.twin();
            mem.acks().acked(seq);
            flush_acks(db, mem).unwrap();
        }
        assert_eq!(outbox_len(c.db()).unwrap(), 1);

        // State and membership.
        let r = state_update(
            c.db(),
            &mut TwinMemory::default(),
            "t1",
            br#"{"state":"online"}"#,
        )
        .unwrap();
        assert!(!r.device.last_online.is_empty());
        assert_eq!(
            state_update(c.db(), &mut TwinMemory::default(), "t1", b"{}")
                .unwrap_err()
                .code,
            400
        );
        let m = membership(c.db()).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].state, "online");
        assert!(m[0].model.is_some() && m[0].spec.is_some());
        assert_eq!(m[0].twin["temp"].metadata.as_ref().unwrap().type_, "int");

        // Removed from the node: the twin and its outbox go with it.
        let fx = c.apply(5, false, &[gone(5)]).unwrap();
        assert_eq!(fx.removed, vec![("default".to_string(), "t1".to_string())]);
        assert_eq!(outbox_len(c.db()).unwrap(), 0);
        assert!(props(c.db(), "default", "t1").unwrap().is_empty());
    }

    #[test]
    fn the_outbox_goes_in_batches_and_acked_rows_go_once_a_drop_commits() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Cache::open(&d.path().join("cache.db")).unwrap();
        let r = Versioned {
            value: "1".into(),
            version: 1,
            origin: Origin::Edge,
            timestamp: 1,
        };
        for i in 0..BATCH + 1 {
            queue(
                c.db(),
                0,
                "default",
                "t1",
                &format!("p{i}"),
                Some(&r),
                None,
                None,
            )
            .unwrap();
        }
        let first = pending(c.db(), 0).unwrap().unwrap();
        assert!(first.more);
        assert_eq!(first.devices[0].properties.len(), BATCH);
        let second = pending(c.db(), first.seq).unwrap().unwrap();
        assert!(!second.more);
        assert_eq!(second.devices[0].properties.len(), 1);
        assert!(pending(c.db(), second.seq).unwrap().is_none());
        let (db, mem) = c.twin();
        mem.acks().acked(first.seq);
        flush_acks(db, mem).unwrap();
        assert_eq!(outbox_len(db).unwrap(), 1);
        // Everything else still commits with an fsync.
        let sync: i64 = db
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous is FULL again after a flush");
        // An ack applied in a transaction that rolls back is applied again by the next.
        mem.acks().acked(second.seq);
        {
            let tx = db.transaction().unwrap();
            assert_eq!(drop_acked(&tx, mem).unwrap(), Some(second.seq));
        }
        assert_eq!(outbox_len(db).unwrap(), 1);
        let tx = db.transaction().unwrap();
        let seq = drop_acked(&tx, mem).unwrap();
        tx.commit().unwrap();
        dropped(mem, seq);
        assert_eq!(outbox_len(db).unwrap(), 0);
        assert_eq!(drop_acked(db, mem).unwrap(), None, "nothing left to drop");
    }

    #[test]
    fn decoded_devices_are_forgotten_when_a_sync_changes_them() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Cache::open(&d.path().join("cache.db")).unwrap();
        c.apply(1, false, &[model(), dev("10", 1, 1)]).unwrap();
        let report = br#"{"twin":{"temp":{"actual":{"value":"90"}}}}"#;
        let (db, mem) = c.twin();
        twin_update(db, mem, "t1", report).unwrap();
        // The same model with a lower maximum: the decoded one must not be used again.
        let narrower = obj(
            json!({"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
            "metadata": {"name": "thermo", "namespace": "default", "resourceVersion": "2"},
            "spec": {"properties": [
                {"name": "temp", "type": "INT", "accessMode": "ReadWrite", "minimum": "0", "maximum": "50"}]}}),
        );
        c.apply(2, false, &[narrower]).unwrap();
        let (db, mem) = c.twin();
        assert_eq!(twin_update(db, mem, "t1", report).unwrap_err().code, 400);
        // Removed from the node: unknown at once.
        c.apply(3, false, &[gone(3)]).unwrap();
        let (db, mem) = c.twin();
        assert_eq!(twin_update(db, mem, "t1", report).unwrap_err().code, 404);
    }

    #[test]
    fn a_report_does_not_coalesce_into_a_row_the_hub_acked() {
        let mut c = Cache::open_in_memory().unwrap();
        let db = c.db();
        // Queue a reading of temp (and maybe an edit) with the hub's acks up to `acked`.
        let report = |acked, v: &str, version, edit: Option<&DesiredEdit>| {
            let rep = Versioned {
                value: v.into(),
                version,
                origin: Origin::Edge,
                timestamp: 1,
            };
            queue(db, acked, "default", "t1", "temp", Some(&rep), edit, None).unwrap();
        };
        let edit = DesiredEdit {
            value: "5".into(),
            base: 1,
            version: 2,
            timestamp: 1,
        };
        report(0, "1", 1, Some(&edit));
        let first = pending(db, 0).unwrap().unwrap();
        // Not acked yet: coalesced (the edit rides along with the newer reading).
        report(0, "2", 2, None);
        let p = pending(db, first.seq).unwrap().unwrap();
        assert_eq!(
            p.devices[0].properties[0].desired.as_ref().unwrap().value,
            "5"
        );
        // Acked (row not dropped yet): the next report replaces the row, without the edit.
        report(p.seq, "3", 3, None);
        let q = pending(db, p.seq).unwrap().unwrap();
        let prop = &q.devices[0].properties[0];
        assert_eq!(prop.reported.as_ref().unwrap().value, "3");
        assert!(prop.desired.is_none(), "an acked edit is not sent again");
        assert_eq!(outbox_len(db).unwrap(), 1);
    }
}
