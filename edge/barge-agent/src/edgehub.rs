//! EdgeHub: the agent's link to the hubs. Connects to each hub in turn (exponential backoff
//! with full jitter after every hub failed), says Hello with the cache's revision and
//! inventory, applies Sync batches to the cache (one transaction each, acked after the
//! commit), answers Pings, sends pod statuses (coalesced per pod, batched) and node status
//! with every heartbeat, renews the certificate when the hub says so, and updates the CA
//! bundle and the hub list from Welcome.
//!
//! The workloads are behind [`Workloads`]: they are restored from the cache at start, before
//! and whatever the hub does (offline autonomy).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use barge_edge_proto::object::{ObjKey, PodStatus};
use barge_edge_proto::wire::{codes, EdgeMsg, HubMsg, PodReport};
use tokio::sync::{mpsc, Notify};

use crate::backoff::Backoff;
use crate::config::{write, EdgePaths};
use crate::conn;
use crate::edged::Workloads;
use crate::log::log;
use crate::metamanager::Cache;

/// Tunables (`barge-edge run` flags).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Heartbeat until a hub's Welcome says otherwise.
    pub heartbeat: Duration,
    /// How long status changes are gathered before they are sent.
    pub status_batch: Duration,
    /// Retry pods that could not be made this often.
    pub retry: Duration,
    /// The EventBus's MQTT broker (`tcp://HOST:PORT`); None: no devices on this node.
    pub mqtt: Option<String>,
    /// Keep the cache in memory instead of `cache.db` (`edge sim`: no offline restore).
    pub cache_in_memory: bool,
    /// Nothing this agent runs blocks (the cache in memory, hollow workloads: `edge sim`):
    /// cache and workload calls run on the async threads instead of being handed to the
    /// blocking pool, which spares 10 000 hollow agents a thread hand-off per message.
    pub inline_work: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            status_batch: Duration::from_secs(1),
            retry: Duration::from_secs(10),
            mqtt: None,
            cache_in_memory: false,
            inline_work: false,
        }
    }
}

/// A status without its observation time (what decides whether it changed).
fn essence(s: &PodStatus) -> PodStatus {
    let mut s = s.clone();
    s.observed_at = String::new();
    s
}

/// Pod statuses waiting to be sent, coalesced per pod.
#[derive(Default)]
struct Outbox {
    /// The latest status of every pod (what was last seen, sent or not).
    latest: BTreeMap<ObjKey, PodReport>,
    /// Pods whose latest status is not sent yet.
    dirty: BTreeSet<ObjKey>,
    /// Removed pods not sent yet.
    gone: BTreeSet<ObjKey>,
    /// Removed pods sent but not acked yet (`StatusAck`), with the `seq` that carried them:
    /// sent again on the next connection.
    gone_unacked: BTreeMap<ObjKey, u64>,
    /// The `seq` of the last `PodStatus` sent.
    seq: u64,
}

impl Outbox {
    fn take(&mut self) -> Option<EdgeMsg> {
        if self.dirty.is_empty() && self.gone.is_empty() {
            return None;
        }
        self.seq += 1;
        let pods = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|k| self.latest.get(&k).cloned())
            .collect();
        let gone: Vec<ObjKey> = std::mem::take(&mut self.gone).into_iter().collect();
        for k in &gone {
            self.gone_unacked.insert(k.clone(), self.seq);
        }
        Some(EdgeMsg::PodStatus {
            pods,
            gone,
            seq: Some(self.seq),
        })
    }

    /// The hub stored every `PodStatus` up to `seq`.
    fn acked(&mut self, seq: u64) {
        self.gone_unacked.retain(|_, s| *s > seq);
    }

    /// A new connection: every status, and every removal not acked, goes again.
    fn resend_all(&mut self) {
        let keys: Vec<ObjKey> = self.latest.keys().cloned().collect();
        self.dirty.extend(keys);
        let gone: Vec<ObjKey> = std::mem::take(&mut self.gone_unacked).into_keys().collect();
        self.gone.extend(gone);
    }
}

/// Shared by the agent's tasks.
struct Shared {
    paths: EdgePaths,
    name: String,
    cache: Arc<Mutex<Cache>>,
    work: Arc<dyn Workloads>,
    opts: RunOptions,
    /// Wakes the reconciler (the cache changed).
    reconcile: Notify,
    /// Wakes the status collector (a pod's status may have changed).
    status_changed: Notify,
    /// Wakes the session (statuses are ready to send).
    status_ready: Notify,
    outbox: Mutex<Outbox>,
    /// Wakes the session (the twin outbox grew).
    twin_ready: Arc<Notify>,
    /// Where the hub's twin acks are recorded (the acked rows are deleted at heartbeats).
    twin_acks: crate::devicetwin::Acks,
    /// The MQTT EventBus (None with `--mqtt none`).
    bus: Option<crate::eventbus::EventBus>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run the agent until the process is stopped: restore workloads from the cache, then keep
/// a session with some hub.
pub async fn run(paths: EdgePaths, work: Arc<dyn Workloads>, opts: RunOptions) -> Result<()> {
    let edge = paths.load()?;
    let mut opts = opts;
    if let Some(url) = &opts.mqtt {
        if url == "none" {
            opts.mqtt = None;
        }
    }
    let cache = if opts.cache_in_memory {
        Cache::open_in_memory()?
    } else {
        Cache::open(&paths.cache())?
    };
    let twin_acks = cache.twin_acks();
    let cache = Arc::new(Mutex::new(cache));
    let twin_ready = Arc::new(Notify::new());
    let bus = match &opts.mqtt {
        Some(url) => Some(crate::eventbus::start(
            url,
            &edge.name,
            cache.clone(),
            twin_ready.clone(),
        )?),
        None => None,
    };
    let shared = Arc::new(Shared {
        name: edge.name.clone(),
        paths,
        cache,
        twin_ready,
        twin_acks,
        bus,
        work,
        opts,
        reconcile: Notify::new(),
        status_changed: Notify::new(),
        status_ready: Notify::new(),
        outbox: Mutex::new(Outbox::default()),
    });
    // Restore first: the cache's pods run whether or not a hub answers.
    shared.reconcile.notify_one();
    tokio::spawn(reconciler(shared.clone()));
    tokio::spawn(status_collector(shared.clone()));
    {
        let s = shared.clone();
        let w = shared.work.clone();
        std::thread::Builder::new()
            .name("edged-events".into())
            .spawn(move || w.watch(Box::new(move || s.status_changed.notify_one())))
            .context("start the event watcher thread")?;
    }
    connect_loop(shared).await
}

/// Run `f`, which may block: on the blocking pool, or inline with `inline_work`.
async fn off_thread<T: Send + 'static>(
    s: &Shared,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if s.opts.inline_work {
        Ok(f())
    } else {
        tokio::task::spawn_blocking(f).await
    }
}

/// Reconcile whenever the cache changes (and retry failures now and then).
async fn reconciler(s: Arc<Shared>) {
    let mut failed = false;
    let started = Instant::now();
    let mut first = true;
    loop {
        if failed {
            let _ = tokio::time::timeout(s.opts.retry, s.reconcile.notified()).await;
        } else {
            s.reconcile.notified().await;
        }
        let s2 = s.clone();
        let r = off_thread(&s, move || {
            let objects = lock(&s2.cache).objects(None)?;
            Ok::<bool, anyhow::Error>(s2.work.reconcile(&objects))
        })
        .await;
        failed = match r {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                log(format!("reconcile: {e:#}"));
                true
            }
            Err(e) => {
                log(format!("reconcile panicked: {e}"));
                true
            }
        };
        if first {
            first = false;
            log(format!(
                "cached pods restored in {} ms after start{}",
                started.elapsed().as_millis(),
                if failed {
                    " (some failed; retrying)"
                } else {
                    ""
                }
            ));
        }
        s.status_changed.notify_one();
    }
}

/// Gather status changes for `status_batch`, then hand the changed ones to the session.
async fn status_collector(s: Arc<Shared>) {
    loop {
        s.status_changed.notified().await;
        tokio::time::sleep(s.opts.status_batch).await;
        let w = s.work.clone();
        let Ok((pods, gone)) = off_thread(&s, move || w.statuses()).await else {
            continue;
        };
        let mut changed = false;
        {
            let mut o = lock(&s.outbox);
            for p in pods {
                let same = o
                    .latest
                    .get(&p.key)
                    .is_some_and(|old| essence(&old.status) == essence(&p.status));
                if !same {
                    o.dirty.insert(p.key.clone());
                    o.gone.remove(&p.key);
                    o.gone_unacked.remove(&p.key);
                    o.latest.insert(p.key.clone(), p);
                    changed = true;
                }
            }
            for k in gone {
                o.latest.remove(&k);
                o.dirty.remove(&k);
                o.gone.insert(k);
                changed = true;
            }
        }
        if changed {
            s.status_ready.notify_one();
        }
    }
}

/// Hubs in turn; backoff after a full round failed, or after a session ended.
async fn connect_loop(s: Arc<Shared>) -> Result<()> {
    let mut backoff = Backoff::new(s.opts.backoff_base, s.opts.backoff_max);
    let mut next = 0usize;
    let mut failed_in_round = 0usize;
    loop {
        let hubs = s.paths.load().map(|e| e.hubs).unwrap_or_default();
        if hubs.is_empty() {
            bail!("edge.json lists no hub");
        }
        let addr = hubs[next % hubs.len()].clone();
        next = next.wrapping_add(1);
        match session(&s, &addr).await {
            Ok(()) => {
                log(format!("hub {addr}: session ended"));
                backoff.reset();
                failed_in_round = 0;
                tokio::time::sleep(backoff.next_wait()).await;
            }
            Err(e) => {
                log(format!("hub {addr}: {e:#}"));
                failed_in_round += 1;
                if failed_in_round >= hubs.len() {
                    failed_in_round = 0;
                    let wait = backoff.next_wait();
                    log(format!(
                        "no hub reachable; next try in {} ms",
                        wait.as_millis()
                    ));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

struct Creds {
    ca: String,
    cert: String,
    key: String,
}

fn creds(p: &EdgePaths) -> Result<Creds> {
    p.finish_swap()?;
    Ok(Creds {
        ca: p.read(&p.ca())?,
        cert: p.read(&p.cert())?,
        key: p.read(&p.key())?,
    })
}

/// A connection whose first frame is Renew (the certificate expired while offline): store
/// the new certificate and key.
async fn renew_first(s: &Shared, addr: &str) -> Result<()> {
    let c = creds(&s.paths)?;
    let cfg = crate::tls::session_config(&c.ca, &c.cert, &c.key)?;
    let mut tls = conn::connect(addr, cfg).await?;
    let (key_pem, csr_pem) = crate::join::new_key_and_csr(&s.name)?;
    conn::send(&mut tls, &EdgeMsg::Renew { csr_pem }).await?;
    match conn::recv_some(&mut tls).await? {
        HubMsg::Renewed {
            cert_pem,
            ca_bundle_pem,
        } => store_renewed(&s.paths, &key_pem, &cert_pem, &ca_bundle_pem),
        HubMsg::Error { code, message } => Err(conn::hub_error(&code, &message)),
        other => bail!("renew: unexpected answer: {other:?}"),
    }
}

fn store_renewed(p: &EdgePaths, key_pem: &str, cert_pem: &str, ca_pem: &str) -> Result<()> {
    crate::tls::certs(cert_pem).context("renewed certificate")?;
    if !ca_pem.trim().is_empty() {
        crate::tls::certs(ca_pem).context("CA bundle")?;
        write(&p.ca(), ca_pem.as_bytes(), 0o644)?;
    }
    p.swap_identity(key_pem, cert_pem)?;
    log("certificate renewed");
    Ok(())
}

/// A hub that has not acked the last Twin after this long gets the next one anyway.
const TWIN_OVERDUE: Duration = Duration::from_millis(100);

/// Least time between two `Twin` messages: reports closer together than this go as one.
const TWIN_GAP: Duration = Duration::from_millis(10);

/// When the twin outbox goes to the hub (Nagle-like): at once when no `Twin` is waiting
/// for its `TwinAck` and the last went more than [`TWIN_GAP`] ago; otherwise what queues
/// meanwhile (coalesced per device and property in the outbox) waits for that ack and the
/// gap and goes as one message, or after [`TWIN_OVERDUE`] when the ack is late. An idle
/// link adds no delay; a busy one sends fewer, larger messages (a mapper reporting every
/// 6 ms: about two reports a message, at most 10 ms later).
#[derive(Default)]
struct TwinSender {
    /// The highest outbox seq sent in this session.
    sent: u64,
    /// The highest seq the hub acked in this session.
    acked: u64,
    /// When the oldest unacked Twin was sent.
    since: Option<Instant>,
    /// When the last Twin was sent.
    last: Option<Instant>,
    /// The outbox grew while a Twin was in flight or within the gap.
    waiting: bool,
}

impl TwinSender {
    fn may_send(&self) -> bool {
        self.since.is_none_or(|t| t.elapsed() >= TWIN_OVERDUE)
            && self.last.is_none_or(|t| t.elapsed() >= TWIN_GAP)
    }

    /// When a waiting outbox goes at the latest: the end of the gap, or when the ack of
    /// the Twin in flight is overdue.
    fn due_at(&self) -> tokio::time::Instant {
        let now = Instant::now();
        let gap = self.last.map_or(now, |t| t + TWIN_GAP);
        let at = match self.since {
            Some(t) => gap.max(t + TWIN_OVERDUE),
            None => gap,
        };
        tokio::time::Instant::from_std(at)
    }

    fn acked(&mut self, seq: u64) {
        self.acked = self.acked.max(seq);
        if self.acked >= self.sent {
            self.since = None;
        }
    }

    /// Send everything the outbox holds after what was sent (≤ BATCH rows a message).
    async fn send<F, Fut>(&mut self, s: &Arc<Shared>, send: &F) -> Result<()>
    where
        F: Fn(EdgeMsg) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        self.waiting = false;
        loop {
            let s2 = s.clone();
            let after = self.sent;
            let batch = off_thread(s, move || {
                crate::devicetwin::pending(lock(&s2.cache).db(), after)
            })
            .await
            .context("read the twin outbox")??;
            let Some(p) = batch else {
                return Ok(());
            };
            self.sent = p.seq;
            let now = Instant::now();
            self.since.get_or_insert(now);
            self.last = Some(now);
            send(EdgeMsg::Twin {
                seq: p.seq,
                devices: p.devices,
            })
            .await?;
            if !p.more {
                return Ok(());
            }
        }
    }
}

/// One session with the hub at `addr`: Ok when it was established and later ended.
async fn session(s: &Arc<Shared>, addr: &str) -> Result<()> {
    let c = creds(&s.paths)?;
    let cfg = crate::tls::session_config(&c.ca, &c.cert, &c.key)?;
    let mut tls = conn::connect(addr, cfg).await?;
    let s2 = s.clone();
    let (revision, inventory) = off_thread(s, move || {
        let mut c = lock(&s2.cache);
        // This session sends the twin outbox from its start: drop what the last one acked.
        let (db, mem) = c.twin();
        crate::devicetwin::flush_acks(db, mem)?;
        Ok::<_, anyhow::Error>((c.revision()?, c.inventory()?))
    })
    .await
    .context("read the cache")??;
    conn::send(
        &mut tls,
        &EdgeMsg::Hello {
            protocol: barge_edge_proto::PROTOCOL_VERSION,
            name: s.name.clone(),
            revision,
            inventory,
            info: crate::info::node_info(),
        },
    )
    .await?;
    let (hb, renew) = match conn::recv_some(&mut tls).await? {
        HubMsg::Welcome {
            hub,
            revision: hub_rev,
            hubs,
            heartbeat_secs,
            ca_bundle_pem,
            renew,
        } => {
            log(format!(
                "connected to hub {hub} at {addr} (fleet revision {hub_rev}, cache revision {revision})"
            ));
            let mut edge = s.paths.load()?;
            if !hubs.is_empty() && hubs != edge.hubs {
                edge.hubs = hubs;
                s.paths.save(&edge)?;
            }
            if !ca_bundle_pem.trim().is_empty() && ca_bundle_pem != c.ca {
                crate::tls::certs(&ca_bundle_pem).context("the hub's CA bundle")?;
                write(&s.paths.ca(), ca_bundle_pem.as_bytes(), 0o644)?;
                log("CA bundle updated");
            }
            let hb = if heartbeat_secs > 0 {
                Duration::from_secs(heartbeat_secs)
            } else {
                s.opts.heartbeat
            };
            (hb, renew)
        }
        HubMsg::Error { code, message } => {
            if code == codes::BAD_CERTIFICATE {
                log(format!(
                    "hub {addr} refused the certificate ({message}); asking for a renewal"
                ));
                renew_first(s, addr).await?;
            }
            return Err(conn::hub_error(&code, &message));
        }
        other => bail!("expected Welcome, got {other:?}"),
    };

    let (rd, wr) = tokio::io::split(tls);
    // Writer task: every message to the hub goes through `out`.
    let (out, mut out_rx) = mpsc::channel::<EdgeMsg>(256);
    let writer = tokio::spawn(async move {
        let mut wr = wr;
        while let Some(m) = out_rx.recv().await {
            conn::send(&mut wr, &m).await?;
        }
        Ok::<(), anyhow::Error>(())
    });
    // Reader task: frames from the hub into `inbox` (reads are not cancel-safe).
    let (in_tx, mut inbox) = mpsc::channel::<Result<Option<HubMsg>>>(64);
    let reader = tokio::spawn(async move {
        let mut rd = rd;
        loop {
            let m = conn::recv(&mut rd).await;
            let end = !matches!(m, Ok(Some(_)));
            if in_tx.send(m).await.is_err() || end {
                break;
            }
        }
    });
    let result = session_loop(s, &out, &mut inbox, hb, renew).await;
    reader.abort();
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    result
}

async fn session_loop(
    s: &Arc<Shared>,
    out: &mpsc::Sender<EdgeMsg>,
    inbox: &mut mpsc::Receiver<Result<Option<HubMsg>>>,
    hb: Duration,
    renew: bool,
) -> Result<()> {
    let send = |m: EdgeMsg| async move {
        out.send(m)
            .await
            .map_err(|_| anyhow::anyhow!("the connection to the hub is closed"))
    };
    // Everything known is sent again to a new session (the hub may have missed it), and
    // every removal the last one did not ack.
    lock(&s.outbox).resend_all();
    s.status_ready.notify_one();
    // The whole twin outbox goes to a new session (what was sent before was not acked).
    let mut twin = TwinSender::default();
    s.twin_ready.notify_one();
    let mut pending_key: Option<String> = None;
    if renew {
        let (key, csr_pem) = crate::join::new_key_and_csr(&s.name)?;
        pending_key = Some(key);
        send(EdgeMsg::Renew { csr_pem }).await?;
    }
    let mut tunnels = crate::tunnel::Tunnels::new(s.work.clone(), out.clone());
    let bus = crate::servicebus::ServiceBus::new(s.work.clone(), out.clone());
    let mut ticker = tokio::time::interval(hb);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rx = Instant::now();
    let mut cpu = None;
    loop {
        tokio::select! {
            m = inbox.recv() => {
                let m = match m {
                    Some(Ok(Some(m))) => m,
                    Some(Ok(None)) | None => return Ok(()),
                    Some(Err(e)) => return Err(e),
                };
                last_rx = Instant::now();
                match m {
                    HubMsg::Sync { revision, full, changes } => {
                        let s2 = s.clone();
                        let n = changes.len();
                        let fx = off_thread(s, move || {
                            lock(&s2.cache).apply(revision, full, &changes)
                        })
                        .await
                        .context("apply a Sync batch")??;
                        send(EdgeMsg::Ack { revision }).await?;
                        if let Some(bus) = &s.bus {
                            bus.synced(fx);
                        }
                        log(format!("applied sync to revision {revision} ({n} changes{})",
                            if full { ", full" } else { "" }));
                        s.reconcile.notify_one();
                    }
                    HubMsg::Ping => send(EdgeMsg::Pong).await?,
                    HubMsg::TwinAck { seq } => {
                        twin.acked(seq);
                        // The acked rows are deleted at the next heartbeat (or Sync batch):
                        // no transaction per ack.
                        s.twin_acks.acked(seq);
                        // What queued while that one was in flight goes now, as one
                        // message (or at the end of the gap).
                        if twin.waiting && twin.may_send() {
                            twin.send(s, &send).await?;
                        }
                    }
                    HubMsg::StatusAck { seq } => lock(&s.outbox).acked(seq),
                    HubMsg::Pong => {}
                    HubMsg::Renewed { cert_pem, ca_bundle_pem } => {
                        match pending_key.take() {
                            Some(key) => store_renewed(&s.paths, &key, &cert_pem, &ca_bundle_pem)?,
                            None => log("the hub sent a certificate nobody asked for; ignored"),
                        }
                    }
                    HubMsg::Error { code, message } => {
                        return Err(conn::hub_error(&code, &message));
                    }
                    HubMsg::Connect { stream, target } => bus.open(stream, target),
                    HubMsg::Data { stream, fd: 0, data } if bus.has(stream) => {
                        bus.data(stream, &data).await
                    }
                    HubMsg::Cancel { stream } if bus.has(stream) => bus.cancel(stream),
                    HubMsg::Exec { .. } | HubMsg::Logs { .. } | HubMsg::Data { .. }
                    | HubMsg::Cancel { .. } => tunnels.handle(m),
                    other => log(format!("unexpected message from the hub ignored: {other:?}")),
                }
            }
            _ = ticker.tick() => {
                if last_rx.elapsed() > hb * 3 {
                    bail!("the hub was silent for three heartbeats");
                }
                send(EdgeMsg::Ping).await?;
                // Acked twin reports not dropped by a write since (the reports stopped).
                let s2 = s.clone();
                off_thread(s, move || {
                    let mut c = lock(&s2.cache);
                    let (db, mem) = c.twin();
                    crate::devicetwin::flush_acks(db, mem)
                })
                .await
                .context("drop acked twin reports")??;
                let w = s.work.clone();
                let (pods, running) = off_thread(s, move || w.counts())
                    .await
                    .unwrap_or((0, 0));
                let usage = crate::info::usage(&mut cpu, pods, running);
                send(EdgeMsg::NodeStatus { usage }).await?;
            }
            _ = s.twin_ready.notified() => {
                if twin.may_send() {
                    twin.send(s, &send).await?;
                } else {
                    twin.waiting = true;
                }
            }
            _ = tokio::time::sleep_until(twin.due_at()), if twin.waiting => {
                twin.send(s, &send).await?;
            }
            _ = s.status_ready.notified() => {
                let msg = lock(&s.outbox).take();
                if let Some(m) = msg {
                    send(m).await?;
                }
            }
        }
    }
}
