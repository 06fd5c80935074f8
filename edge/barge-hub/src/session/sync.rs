//! A node's session after Hello: Welcome, the first Sync (answering the inventory), live
//! Syncs from cache changes, Acks, statuses, device twin reports ([`super::twin`]),
//! heartbeats, tunnels, renewals.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use barge_edge_proto::keys::{self, ConnRecord, NodeRecord};
use barge_edge_proto::object::{Kind, NodeInfo, ObjKey, Object};
use barge_edge_proto::wire::{codes, unb64, Change, EdgeMsg, Held, HubMsg};
use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use super::status::StatusBuffer;
use super::{frame, Refusal};
use crate::hub::Hub;
use crate::pki::PeerCert;
use crate::store::batch::Write;
use crate::store::cache::Snapshot;
use crate::tunnel::TunnelOutput;
use crate::util::now_secs;

/// Changes per Sync frame.
const BATCH: usize = 500;
/// How often the node record's last_seen is refreshed in etcd while nothing else changes.
const LAST_SEEN_EVERY: Duration = Duration::from_secs(60);

pub struct Hello {
    pub protocol: u32,
    pub name: String,
    pub revision: i64,
    pub inventory: Vec<Held>,
    pub info: NodeInfo,
}

fn node_key(name: &str) -> ObjKey {
    ObjKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: name.to_string(),
    }
}

/// Whether this Hello may start a session: a current certificate naming the node, a node
/// that exists and is not revoked.
pub fn admit(hub: &Hub, cert: Option<&PeerCert>, hello: &Hello) -> Result<(), Refusal> {
    if hello.protocol != barge_edge_proto::PROTOCOL_VERSION {
        return Err(Refusal::new(
            codes::PROTOCOL,
            format!("protocol version {} is not supported", hello.protocol),
        ));
    }
    let Some(cert) = cert else {
        return Err(Refusal::new(
            codes::BAD_CERTIFICATE,
            "hello needs the node certificate as the TLS client certificate",
        ));
    };
    if cert.expired() {
        return Err(Refusal::new(
            codes::BAD_CERTIFICATE,
            format!(
                "certificate expired at {}; renew it first",
                barge_util::time::rfc3339_secs(cert.not_after)
            ),
        ));
    }
    if cert.node() != Some(hello.name.as_str()) {
        return Err(Refusal::new(
            codes::NAME_CONFLICT,
            format!(
                "certificate is for {:?}, hello says node {:?}",
                cert.common_name, hello.name
            ),
        ));
    }
    let snap = hub.cache.snapshot();
    if snap.revoked.contains(&hello.name) {
        return Err(Refusal::new(
            codes::REVOKED,
            format!(
                "node {} was revoked; join again with a new token",
                hello.name
            ),
        ));
    }
    if !snap.objects.contains_key(&node_key(&hello.name)) {
        return Err(Refusal::new(
            codes::REVOKED,
            format!(
                "node {} was deleted; join again with a new token",
                hello.name
            ),
        ));
    }
    Ok(())
}

/// What differs between what the node holds (`held`) and its view now, as ordered
/// changes: puts of data (ConfigMaps, Secrets, DeviceModels), then of Devices, then of
/// pods, each in revision order, then deletes in the reverse order (a batch never leaves a
/// pod without its data or a device without its model). Updates `held`.
pub fn diff(name: &str, snap: &Snapshot, held: &mut BTreeMap<ObjKey, i64>) -> Vec<Change> {
    let Some(node) = snap.objects.get(&node_key(name)) else {
        return Vec::new();
    };
    let view = crate::view::node_view(node, &snap.objects, &snap.placements);
    let rank = |k: Kind| match k {
        Kind::Pod => 2,
        Kind::Device => 1,
        _ => 0,
    };
    let mut puts: Vec<_> = view
        .iter()
        .filter(|(k, o)| held.get(*k) != Some(&o.revision()))
        .collect();
    puts.sort_by_key(|(k, o)| (rank(k.kind), o.revision(), (*k).clone()));
    let mut dels: Vec<ObjKey> = held
        .keys()
        .filter(|k| !view.contains_key(*k))
        .cloned()
        .collect();
    dels.sort_by_key(|k| (2 - rank(k.kind), k.clone()));
    let mut out = Vec::with_capacity(puts.len() + dels.len());
    for (k, o) in puts {
        held.insert(k.clone(), o.revision());
        out.push(Change::Put {
            object: Box::new(Object::clone(o)),
        });
    }
    for k in dels {
        held.remove(&k);
        out.push(Change::Delete {
            key: k,
            revision: snap.revision,
        });
    }
    out
}

/// Run the session until the link dies, the node is revoked, or a newer session replaces it.
pub async fn run(
    hub: Arc<Hub>,
    tls: TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    hello: Hello,
    cert: PeerCert,
) {
    let name = hello.name.clone();
    let (mut rd, mut wr) = tokio::io::split(tls);
    let (out_tx, mut out_rx) = mpsc::channel::<HubMsg>(256);
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            if let Err(e) = frame::write(&mut wr, &msg).await {
                tracing::debug!("edge session write: {e}");
                break;
            }
        }
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut wr).await;
    });
    let (in_tx, mut in_rx) = mpsc::channel::<anyhow::Result<EdgeMsg>>(256);
    let reader = tokio::spawn(async move {
        loop {
            match frame::read::<EdgeMsg, _>(&mut rd).await {
                Ok(Some(m)) => {
                    if in_tx.send(Ok(m)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = in_tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });

    let mut s = Session {
        hub: hub.clone(),
        name: name.clone(),
        peer,
        tx: out_tx.clone(),
        held: hello
            .inventory
            .iter()
            .map(|h| (h.key.clone(), h.revision))
            .collect(),
        removed: BTreeSet::new(),
        record: NodeRecord::default(),
        record_dirty: true,
        record_written: Instant::now(),
        statuses: StatusBuffer::default(),
        issuer: cert.issuer.clone(),
        rotate_deadline: None,
        status_seq: None,
    };
    let handle = hub.tunnels.register(&name, out_tx.clone());
    let result = s.serve(&hello, &cert, &handle, &mut in_rx).await;
    let was_current = hub.tunnels.unregister(&name, &handle);
    handle.fail_all(&format!("node {name}: session closed"));
    match &result {
        Ok(()) => tracing::info!("edge {peer}: node {name}: session ended"),
        Err(r) => {
            tracing::warn!(
                "edge {peer}: node {name}: session closed: {}: {}",
                r.code,
                r.message
            );
            let _ = out_tx
                .send(HubMsg::Error {
                    code: r.code.to_string(),
                    message: r.message.clone(),
                })
                .await;
        }
    }
    // Pending pod statuses go out; the node record's last word (last_seen) and the removal
    // of conns/<node> only if this session still holds the node: when the node already
    // reconnected elsewhere (this session was a half-dead one), the newer session's record
    // must not be overwritten with this one's older acked revision.
    if let Err(e) = s.statuses.flush(&hub, &name).await {
        tracing::warn!("node {name}: final pod status write: {e}");
    }
    if was_current {
        s.record.last_seen = barge_util::time::rfc3339_secs(now_secs());
        let key = keys::conn(&hub.prefix, &name);
        let status_key = keys::node_status(&hub.prefix, &name);
        match crate::store::to_json(&s.record) {
            Ok(record) => {
                let txn = Txn::new()
                    .when([Compare::lease(key.clone(), CompareOp::Equal, hub.lease)])
                    .and_then([
                        TxnOp::put(status_key, record, None),
                        TxnOp::delete(key.clone(), None),
                    ]);
                let mut c = hub.etcd.clone();
                if let Err(e) = c.txn(txn).await {
                    tracing::warn!("node {name}: final record and removing {key}: {e}");
                }
            }
            Err(e) => tracing::warn!("node {name}: final record: {e}"),
        }
    }
    drop(s);
    drop(out_tx);
    reader.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

struct Session {
    hub: Arc<Hub>,
    name: String,
    peer: SocketAddr,
    tx: mpsc::Sender<HubMsg>,
    /// What the edge holds (key -> revision), as far as the hub has told it.
    held: BTreeMap<ObjKey, i64>,
    /// Pods the hub told the edge to delete (their late statuses are ignored, not refused).
    removed: BTreeSet<ObjKey>,
    record: NodeRecord,
    record_dirty: bool,
    record_written: Instant,
    statuses: StatusBuffer,
    /// The issuer of the node's certificate in use (updated by an in-session renewal).
    issuer: String,
    /// Set when the fleet's signing CA is seen to differ from `issuer` (a CA rotation): the
    /// session is closed at that time unless the edge renewed meanwhile, so that it
    /// reconnects and renews at Welcome (jittered so a fleet does not reconnect at once).
    rotate_deadline: Option<Instant>,
    /// The latest `PodStatus.seq` received, acked once its statuses are stored.
    status_seq: Option<u64>,
}

/// How long a session whose certificate is from a replaced CA may wait for the edge to
/// renew in-session before it is closed: 3 s plus up to 5 heartbeats (at most 60 s) of
/// jitter.
fn rotation_delay(heartbeat: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut b);
    let spread = (heartbeat * 5).min(Duration::from_secs(57));
    let frac = u16::from_le_bytes(b) as f64 / u16::MAX as f64;
    Duration::from_secs(3) + spread.mul_f64(frac)
}

impl Session {
    async fn send(&self, msg: HubMsg) -> Result<(), Refusal> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| Refusal::new(codes::UNAVAILABLE, "connection closed"))
    }

    async fn serve(
        &mut self,
        hello: &Hello,
        cert: &PeerCert,
        handle: &crate::tunnel::SessionHandle,
        in_rx: &mut mpsc::Receiver<anyhow::Result<EdgeMsg>>,
    ) -> Result<(), Refusal> {
        let hub = self.hub.clone();
        let name = self.name.clone();
        let cert_not_after = cert.not_after;
        // The node's record: keep what is stored (acked revision), refresh the rest.
        let status_key = keys::node_status(&hub.prefix, &name);
        if let Some((rec, _)) = crate::store::get_json::<NodeRecord>(&hub.etcd, &status_key).await?
        {
            self.record = rec;
        }
        self.record.info = hello.info.clone();
        self.record.last_seen = barge_util::time::rfc3339_secs(now_secs());
        self.record.cert_not_after = Some(barge_util::time::rfc3339_secs(cert_not_after));
        let conn = ConnRecord {
            hub: hub.id.clone(),
            since: self.record.last_seen.clone(),
        };
        let conn_key = keys::conn(&hub.prefix, &name);
        let mut c = hub.etcd.clone();
        c.put(
            conn_key.clone(),
            crate::store::to_json(&conn)?,
            Some(PutOptions::new().with_lease(hub.lease)),
        )
        .await
        .map_err(|e| Refusal::from(crate::store::unavailable(&conn_key, e)))?;
        self.flush(true).await?;

        // Follow before reading the snapshot: a change in between still wakes the loop.
        let mut changed = hub.cache.follow(&name);
        let snap = hub.cache.snapshot();
        let heartbeat = Duration::from_secs(hub.config.heartbeat_secs.max(1));
        let pki = hub.pki();
        let life = cert_not_after - now_secs();
        let ttl = hub.config.cert_ttl_secs as i64;
        self.send(HubMsg::Welcome {
            hub: hub.id.clone(),
            revision: snap.revision,
            hubs: hub.hub_endpoints().await,
            heartbeat_secs: heartbeat.as_secs(),
            ca_bundle_pem: pki.bundle_pem(),
            // Past two thirds of its life, or signed by a CA that no longer signs (rotation).
            renew: life * 3 < ttl || cert.issuer != pki.cas[0].subject(),
        })
        .await?;
        tracing::info!(
            "edge {}: node {name}: session started (held {} objects, revision {})",
            self.peer,
            self.held.len(),
            hello.revision
        );
        // The first Sync answers the inventory (sent even when empty: the edge is current).
        self.sync(&snap, true).await?;
        // Not held for the session's life: each wake-up reads the cache anew.
        drop(snap);

        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut last_ping = Instant::now();
        loop {
            tokio::select! {
                msg = in_rx.recv() => {
                    let msg = match msg {
                        None => return Ok(()),
                        Some(Err(e)) => return Err(Refusal::new(codes::PROTOCOL, format!("bad frame: {e}"))),
                        Some(Ok(m)) => m,
                    };
                    last_heard = Instant::now();
                    self.on_msg(msg, handle).await?;
                }
                _ = changed.changed() => {
                    let snap = hub.cache.snapshot();
                    if snap.revoked.contains(&name) {
                        return Err(Refusal::new(codes::REVOKED, format!("node {name} was revoked")));
                    }
                    if !snap.objects.contains_key(&node_key(&name)) {
                        return Err(Refusal::new(codes::REVOKED, format!("node {name} was deleted")));
                    }
                    self.sync(&snap, false).await?;
                }
                _ = tick.tick() => {
                    if hub.pki().cas[0].subject() == self.issuer {
                        self.rotate_deadline = None;
                    } else {
                        let deadline = *self
                            .rotate_deadline
                            .get_or_insert_with(|| Instant::now() + rotation_delay(heartbeat));
                        if Instant::now() >= deadline {
                            return Err(Refusal::new(codes::UNAVAILABLE, format!(
                                "node {name}: the fleet CA rotated and its certificate is from the old one: reconnect to renew"
                            )));
                        }
                    }
                    if last_heard.elapsed() > heartbeat * 3 {
                        return Err(Refusal::new(codes::UNAVAILABLE, format!(
                            "nothing heard for {:?} (3 heartbeats): link is dead",
                            last_heard.elapsed()
                        )));
                    }
                    if last_ping.elapsed() >= heartbeat {
                        last_ping = Instant::now();
                        self.send(HubMsg::Ping).await?;
                    }
                    self.flush(false).await?;
                }
                _ = handle.close.notified() => {
                    return Err(Refusal::new(codes::UNAVAILABLE, format!("a newer session of node {name} replaced this one")));
                }
            }
        }
    }

    /// Send what changed since the last Sync (nothing when nothing changed, unless `first`).
    async fn sync(&mut self, snap: &Snapshot, first: bool) -> Result<(), Refusal> {
        let changes = diff(&self.name, snap, &mut self.held);
        for ch in &changes {
            if let Change::Delete { key, .. } = ch {
                self.removed.insert(key.clone());
            }
            if let Change::Put { object } = ch {
                self.removed.remove(&object.key());
            }
        }
        if changes.is_empty() && !first {
            return Ok(());
        }
        if changes.is_empty() {
            return self
                .send(HubMsg::Sync {
                    revision: snap.revision,
                    full: false,
                    changes,
                })
                .await;
        }
        let mut rest = changes;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(BATCH));
            self.send(HubMsg::Sync {
                revision: snap.revision,
                full: false,
                changes: rest,
            })
            .await?;
            rest = tail;
        }
        Ok(())
    }

    async fn on_msg(
        &mut self,
        msg: EdgeMsg,
        handle: &crate::tunnel::SessionHandle,
    ) -> Result<(), Refusal> {
        match msg {
            EdgeMsg::Ack { revision } => {
                if revision > self.record.acked_revision {
                    self.record.acked_revision = revision;
                    self.record_dirty = true;
                }
            }
            EdgeMsg::NodeStatus { usage } => {
                // Kept in memory and written with the next record write (an ack, or the
                // once-a-minute last_seen refresh): heartbeats alone must not write to etcd
                // every few seconds per node. Readiness comes from `conns/<node>` meanwhile.
                self.record.usage = usage;
            }
            EdgeMsg::PodStatus { pods, gone, seq } => {
                if seq.is_some() {
                    self.status_seq = seq;
                }
                for p in pods {
                    if p.key.kind != Kind::Pod || !self.held.contains_key(&p.key) {
                        if self.removed.contains(&p.key) {
                            continue;
                        }
                        tracing::warn!(
                            "edge {}: node {} reported status for {}, which is not its own; refused",
                            self.peer,
                            self.name,
                            p.key
                        );
                        return Err(Refusal::new(
                            codes::FORBIDDEN,
                            format!("{} is not a pod of node {}", p.key, self.name),
                        ));
                    }
                    self.statuses.put(p.key, p.status);
                }
                for k in gone {
                    if k.kind == Kind::Pod {
                        self.statuses.gone(k);
                    }
                }
            }
            EdgeMsg::Data { stream, fd, data } => {
                let data = unb64(&data).map_err(|e| {
                    Refusal::new(codes::PROTOCOL, format!("data on stream {stream}: {e}"))
                })?;
                if !handle
                    .deliver(stream, TunnelOutput::Data { fd, data })
                    .await
                {
                    let _ = self.send(HubMsg::Cancel { stream }).await;
                }
            }
            EdgeMsg::StreamEnd {
                stream,
                exit_code,
                error,
            } => {
                handle
                    .deliver(stream, TunnelOutput::End { exit_code, error })
                    .await;
            }
            EdgeMsg::Ping => self.send(HubMsg::Pong).await?,
            EdgeMsg::Pong => {}
            EdgeMsg::Renew { csr_pem } => {
                let cert = PeerCert {
                    common_name: format!("node:{}", self.name),
                    not_after: 0,
                    issuer: String::new(),
                };
                let (msg, not_after) =
                    super::renew::renew(&self.hub, Some(&cert), &csr_pem).await?;
                self.issuer = self.hub.pki().cas[0].subject().to_string();
                self.record.cert_not_after = Some(barge_util::time::rfc3339_secs(not_after));
                self.record_dirty = true;
                self.send(msg).await?;
            }
            EdgeMsg::Twin { seq, devices } => {
                super::twin::merge(&self.hub, &self.name, &devices).await?;
                self.send(HubMsg::TwinAck { seq }).await?;
            }
            EdgeMsg::Join { .. } | EdgeMsg::Hello { .. } => {
                return Err(Refusal::new(
                    codes::PROTOCOL,
                    "join/hello are only valid as a connection's first frame",
                ));
            }
        }
        Ok(())
    }

    /// Write buffered pod statuses, and the node record when it changed (or `force`, or
    /// last_seen is a minute old).
    async fn flush(&mut self, force: bool) -> Result<(), Refusal> {
        self.statuses.flush(&self.hub, &self.name).await?;
        if let Some(seq) = self.status_seq.take() {
            self.send(HubMsg::StatusAck { seq }).await?;
        }
        if self.record_written.elapsed() >= LAST_SEEN_EVERY {
            self.record.last_seen = barge_util::time::rfc3339_secs(now_secs());
            self.record_dirty = true;
        }
        if !(self.record_dirty || force) {
            return Ok(());
        }
        let key = keys::node_status(&self.hub.prefix, &self.name);
        let record = crate::store::to_json(&self.record)?;
        self.hub
            .writes
            .write(&key.clone(), vec![Write::put(key, record)])
            .await?;
        self.record_dirty = false;
        self.record_written = Instant::now();
        Ok(())
    }
}
