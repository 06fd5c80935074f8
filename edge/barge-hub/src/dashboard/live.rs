//! What the dashboard shows besides the hub's object cache ([`crate::store::cache`]): the
//! agents' reports (`status/nodes/`, `status/pods/`, `status/devices/`) and the live sessions
//! (`conns/`), loaded once at one revision and kept current by an etcd watch (reloaded on any
//! watch error or compaction), so pages and the event stream never range-read etcd.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use barge_edge_proto::keys::{ConnRecord, DeviceTwinRecord, NodeRecord};
use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use serde_json::Value;
use tokio::sync::watch;

/// Reports by key: a persistent map, so that a change (one of 10 000 nodes acking, say)
/// makes the next [`Reports`] in O(log n), sharing the rest with the one readers hold.
pub type Reported<T> = imbl::OrdMap<String, Arc<T>>;

/// The reports at one revision.
#[derive(Debug, Default, Clone)]
pub struct Reports {
    pub nodes: Reported<NodeRecord>,
    pub conns: Reported<ConnRecord>,
    /// `node/ns/name` -> the PodStatus the agent reported.
    pub pods: Reported<Value>,
    /// `ns/name` -> the device's twin record.
    pub devices: Reported<DeviceTwinRecord>,
}

/// The watched reports; [`Live::subscribe`] wakes on every change.
pub struct Live {
    state: RwLock<Arc<Reports>>,
    changed: watch::Sender<u64>,
}

const PREFIXES: [&str; 2] = ["status/", "conns/"];

impl Live {
    /// Load the reports and keep them current in a background task.
    pub fn start(etcd: Client, prefix: String) -> Arc<Live> {
        let live = Arc::new(Live {
            state: RwLock::new(Arc::new(Reports::default())),
            changed: watch::channel(0).0,
        });
        let me = live.clone();
        tokio::spawn(async move { me.run(etcd, prefix).await });
        live
    }

    /// The current reports.
    pub fn reports(&self) -> Arc<Reports> {
        match self.state.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Notified after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn replace(&self, r: Reports) {
        match self.state.write() {
            Ok(mut s) => *s = Arc::new(r),
            Err(p) => *p.into_inner() = Arc::new(r),
        }
        self.changed.send_modify(|n| *n += 1);
    }

    async fn run(self: Arc<Self>, etcd: Client, prefix: String) {
        loop {
            match self.load(&etcd, &prefix).await {
                Ok(rev) => {
                    if let Err(e) = self.watch_from(&etcd, &prefix, rev).await {
                        tracing::warn!("dashboard watch on {prefix}status/: {e}; reloading");
                    }
                }
                Err(e) => tracing::warn!("dashboard load of {prefix}status/: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn load(&self, etcd: &Client, prefix: &str) -> anyhow::Result<i64> {
        let mut c = etcd.clone();
        let mut r = Reports::default();
        let mut at = None;
        for sub in PREFIXES {
            let mut opts = GetOptions::new().with_prefix();
            if let Some(rev) = at {
                opts = opts.with_revision(rev);
            }
            let resp = c.get(format!("{prefix}{sub}"), Some(opts)).await?;
            if at.is_none() {
                at = resp.header().map(|h| h.revision());
            }
            for kv in resp.kvs() {
                apply(
                    &mut r,
                    prefix,
                    &String::from_utf8_lossy(kv.key()),
                    Some(kv.value()),
                );
            }
        }
        self.replace(r);
        Ok(at.unwrap_or(0))
    }

    async fn watch_from(&self, etcd: &Client, prefix: &str, rev: i64) -> anyhow::Result<()> {
        let mut c = etcd.clone();
        let opts = || {
            WatchOptions::new()
                .with_prefix()
                .with_start_revision(rev + 1)
        };
        let mut stream = c
            .watch(format!("{prefix}{}", PREFIXES[0]), Some(opts()))
            .await?;
        stream
            .watch(format!("{prefix}{}", PREFIXES[1]), Some(opts()))
            .await?;
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
            let mut r = (*self.reports()).clone();
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let put = ev.event_type() == EventType::Put;
                apply(
                    &mut r,
                    prefix,
                    &String::from_utf8_lossy(kv.key()),
                    put.then(|| kv.value()),
                );
            }
            self.replace(r);
        }
        anyhow::bail!("watch stream ended")
    }
}

/// Apply one key's new value (None: deleted).
fn apply(r: &mut Reports, prefix: &str, key: &str, value: Option<&[u8]>) {
    let Some(rest) = key.strip_prefix(prefix) else {
        return;
    };
    fn put<T: serde::de::DeserializeOwned>(
        map: &mut Reported<T>,
        key: &str,
        k: &str,
        value: Option<&[u8]>,
    ) {
        match value {
            None => {
                map.remove(k);
            }
            Some(v) => match serde_json::from_slice(v) {
                Ok(t) => {
                    map.insert(k.to_string(), Arc::new(t));
                }
                Err(e) => tracing::warn!("etcd key {key}: malformed record skipped: {e}"),
            },
        }
    }
    if let Some(k) = rest.strip_prefix("status/nodes/") {
        put(&mut r.nodes, key, k, value);
    } else if let Some(k) = rest.strip_prefix("status/pods/") {
        put(&mut r.pods, key, k, value);
    } else if let Some(k) = rest.strip_prefix("status/devices/") {
        put(&mut r.devices, key, k, value);
    } else if let Some(k) = rest.strip_prefix("conns/") {
        put(&mut r.conns, key, k, value);
    }
}
