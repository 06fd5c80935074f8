//! The watched cache: every object (`objects/`), placement (`placements/`) and revocation
//! (`revoked/`) of the fleet, in memory. Loaded with one consistent read (three prefix gets
//! at the same revision), then kept current by a watch from that revision + 1; on any watch
//! error or compaction the cache reloads and rewatches. The controller waits on
//! [`Cache::subscribe`] (every change); sessions on [`Cache::follow`] (only the changes that
//! concern their node, [`super::fanout`]); both read a [`Snapshot`]. Objects are shared
//! (`Arc`): a new snapshot per change copies the map, not the objects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use barge_edge_proto::keys::{Placement, Revoked};
use barge_edge_proto::object::{Kind, ObjKey, Object};
use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use tokio::sync::watch;

use super::fanout::{Changed, Fanout, Follow};

/// The cached state at one revision.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// The etcd revision the cache reflects.
    pub revision: i64,
    pub objects: crate::view::Objects,
    /// (namespace, deployment) -> placement.
    pub placements: BTreeMap<(String, String), Placement>,
    pub revoked: BTreeSet<String>,
}

/// The cache: an `Arc<Snapshot>` swapped on each change (readers never block writers long).
pub struct Cache {
    state: RwLock<Arc<Snapshot>>,
    changed: watch::Sender<i64>,
    fanout: Arc<Fanout>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            state: RwLock::new(Arc::new(Snapshot::default())),
            changed: watch::channel(0).0,
            fanout: Arc::default(),
        }
    }
}

impl Cache {
    /// The current state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Notified (with the revision) after every change.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }

    /// Follow the changes that concern `node` (a session's wake-up).
    pub fn follow(&self, node: &str) -> Follow {
        self.fanout.follow(node)
    }

    /// Wait until the cache has reached `revision` (after a write of our own).
    pub async fn wait_for(&self, revision: i64) {
        let mut rx = self.subscribe();
        let _ = rx.wait_for(|r| *r >= revision).await;
    }

    fn replace(&self, snap: Snapshot) {
        self.replace_arc(Arc::new(snap));
    }

    fn replace_arc(&self, snap: Arc<Snapshot>) {
        let rev = snap.revision;
        match self.state.write() {
            Ok(mut s) => *s = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        self.changed.send_replace(rev);
    }

    /// Load the cache once (startup waits for this) and keep it current in a task.
    pub async fn start(self: &Arc<Self>, etcd: Client, prefix: String) -> crate::Result<()> {
        let snap = load(&etcd, &prefix).await?;
        let rev = snap.revision;
        self.replace(snap);
        let me = self.clone();
        tokio::spawn(async move { me.watch_loop(etcd, prefix, rev).await });
        Ok(())
    }

    async fn watch_loop(self: Arc<Self>, etcd: Client, prefix: String, mut rev: i64) {
        loop {
            if let Err(e) = self.watch_from(&etcd, &prefix, rev).await {
                tracing::warn!("cache watch on {prefix}: {e}; reloading");
            }
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                match load(&etcd, &prefix).await {
                    Ok(snap) => {
                        rev = snap.revision;
                        self.replace(snap);
                        self.fanout.notify_all();
                        break;
                    }
                    Err(e) => tracing::warn!("cache reload of {prefix}: {e}"),
                }
            }
        }
    }

    async fn watch_from(&self, etcd: &Client, prefix: &str, rev: i64) -> anyhow::Result<()> {
        let mut c = etcd.clone();
        let mut stream = None;
        for sub in ["objects/", "placements/", "revoked/"] {
            let opts = WatchOptions::new()
                .with_prefix()
                .with_start_revision(rev + 1);
            let key = format!("{prefix}{sub}");
            match stream.as_mut() {
                None => stream = Some(c.watch(key, Some(opts)).await?),
                Some(s) => {
                    let s: &mut etcd_client::WatchStream = s;
                    s.watch(key, Some(opts)).await?
                }
            }
        }
        let Some(mut stream) = stream else {
            return Ok(());
        };
        while let Some(resp) = stream.message().await? {
            if resp.compact_revision() > 0 {
                anyhow::bail!("watch compacted at revision {}", resp.compact_revision());
            }
            if resp.canceled() {
                anyhow::bail!("watch canceled: {}", resp.cancel_reason());
            }
            if resp.events().is_empty() {
                continue;
            }
            let old = self.snapshot();
            let mut snap = (*old).clone();
            let mut changed = Vec::with_capacity(resp.events().len());
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let key = String::from_utf8_lossy(kv.key());
                let put = ev.event_type() == EventType::Put;
                if let Some(c) = apply(
                    &mut snap,
                    prefix,
                    &key,
                    put.then(|| (kv.value(), kv.mod_revision())),
                ) {
                    changed.push(c);
                }
                snap.revision = snap.revision.max(kv.mod_revision());
            }
            if let Some(h) = resp.header() {
                snap.revision = snap.revision.max(h.revision());
            }
            let snap = Arc::new(snap);
            self.replace_arc(snap.clone());
            let woken = self.fanout.notify(&old, &snap, &changed);
            tracing::debug!(
                "cache: revision {}: {} keys changed, {woken} of {} sessions concerned",
                snap.revision,
                changed.len(),
                self.fanout.followers()
            );
        }
        anyhow::bail!("watch stream ended")
    }
}

/// Read the three prefixes at one revision.
async fn load(etcd: &Client, prefix: &str) -> crate::Result<Snapshot> {
    let mut c = etcd.clone();
    let mut snap = Snapshot::default();
    let mut at = None;
    for sub in ["objects/", "placements/", "revoked/"] {
        let key = format!("{prefix}{sub}");
        let mut opts = GetOptions::new().with_prefix();
        if let Some(rev) = at {
            opts = opts.with_revision(rev);
        }
        let resp = c
            .get(key.clone(), Some(opts))
            .await
            .map_err(|e| super::unavailable(&key, e))?;
        if at.is_none() {
            at = resp.header().map(|h| h.revision());
        }
        for kv in resp.kvs() {
            let k = String::from_utf8_lossy(kv.key());
            let _ = apply(&mut snap, prefix, &k, Some((kv.value(), kv.mod_revision())));
        }
    }
    snap.revision = at.unwrap_or(0);
    Ok(snap)
}

/// Apply one key's new value (None: deleted) to the snapshot; what changed, if anything.
fn apply(
    snap: &mut Snapshot,
    prefix: &str,
    key: &str,
    value: Option<(&[u8], i64)>,
) -> Option<Changed> {
    let rest = key.strip_prefix(prefix)?;
    if let Some(rest) = rest.strip_prefix("objects/") {
        let mut parts = rest.splitn(3, '/');
        let (Some(plural), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let kind = Kind::parse(plural)?;
        let okey = ObjKey {
            kind,
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        match value {
            None => {
                snap.objects.remove(&okey);
            }
            Some((bytes, rev)) => match serde_json::from_slice::<Object>(bytes) {
                Ok(mut obj) if obj.kind == kind => {
                    obj.metadata.resource_version = Some(rev.to_string());
                    obj.metadata.name = name.to_string();
                    if kind.namespaced() {
                        obj.metadata.namespace = Some(ns.to_string());
                    }
                    snap.objects.insert(okey.clone(), Arc::new(obj));
                }
                Ok(obj) => tracing::warn!(
                    "etcd key {key}: object of kind {} under {plural} skipped",
                    obj.kind
                ),
                Err(e) => tracing::warn!("etcd key {key}: malformed object skipped: {e}"),
            },
        }
        Some(Changed::Object(okey))
    } else if let Some(rest) = rest.strip_prefix("placements/") {
        let (ns, name) = rest.split_once('/')?;
        let k = (ns.to_string(), name.to_string());
        match value {
            None => {
                snap.placements.remove(&k);
            }
            Some((bytes, _)) => match serde_json::from_slice::<Placement>(bytes) {
                Ok(p) => {
                    snap.placements.insert(k, p);
                }
                Err(e) => tracing::warn!("etcd key {key}: malformed placement skipped: {e}"),
            },
        }
        Some(Changed::Placement(ns.to_string(), name.to_string()))
    } else if let Some(node) = rest.strip_prefix("revoked/") {
        match value {
            None => {
                snap.revoked.remove(node);
            }
            Some((bytes, _)) => {
                if serde_json::from_slice::<Revoked>(bytes).is_err() {
                    tracing::warn!("etcd key {key}: malformed revocation (still honoured)");
                }
                snap.revoked.insert(node.to_string());
            }
        }
        Some(Changed::Revoked(node.to_string()))
    } else {
        None
    }
}
