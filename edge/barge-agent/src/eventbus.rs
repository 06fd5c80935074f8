//! EventBus: the agent's MQTT client (KubeEdge's topics, [`barge_edge_proto::device::mqtt`]).
//! Mappers and apps publish `twin/update`, `twin/get`, `state/update` and
//! `membership/get`; the agent answers on the matching result topics and publishes
//! `twin/update/delta`, `twin/update/document` and `membership/updated`. The twins themselves
//! are the DeviceTwin's ([`crate::devicetwin`]).
//!
//! Messages that arrive together (whatever queued while the previous batch was being
//! stored, or within [`COMMIT_GAP`] of it) are handled in one SQLite transaction, each in
//! its own savepoint (a refused one leaves nothing), committed durably before any answer
//! is published and before the broker gets its PUBACK (manual acks: a message the agent
//! has not stored is delivered again after a reconnection).
//!
//! The client id is `barge-edge-<node>` with a persistent session (clean session off) and QoS 1
//! subscriptions, with TCP_NODELAY. A broker that goes away is retried with backoff for as long as it takes
//! (pods run on regardless); on every connection the subscriptions are made again and the
//! deltas of every device are published again, so a mapper that missed one catches up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use barge_edge_proto::device::mqtt::{self, BaseMessage, DeviceTopic, ErrorResult};
use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Packet, Publish, QoS};
use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::{mpsc, Notify};

use crate::devicetwin::{self, SyncEffects, TwinMemory};
use crate::log::log;
use crate::metamanager::Cache;

/// Most MQTT messages stored in one SQLite transaction.
const BATCH: usize = 256;

/// Least time between two transactions of MQTT messages: messages closer together than
/// this share one (a mapper reporting every 6 ms: about two a transaction, at most 10 ms
/// later); an idle bus stores a message at once.
const COMMIT_GAP: std::time::Duration = std::time::Duration::from_millis(10);

/// The broker address when none is given.
pub const DEFAULT_URL: &str = "tcp://127.0.0.1:1883";

/// `tcp://HOST:PORT` (or `mqtt://`) -> (host, port).
pub fn parse_url(url: &str) -> Result<(String, u16)> {
    let rest = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("mqtt://"))
        .with_context(|| format!("MQTT broker {url:?}: expected tcp://HOST:PORT (or none)"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .with_context(|| format!("MQTT broker {url:?}: no port (tcp://HOST:PORT)"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("MQTT broker {url:?}: no host");
    }
    let port = port
        .parse::<u16>()
        .with_context(|| format!("MQTT broker {url:?}: bad port {port:?}"))?;
    Ok((host.to_string(), port))
}

/// What the rest of the agent tells the EventBus.
#[derive(Debug)]
pub enum BusCmd {
    /// A Sync batch was committed: publish deltas and membership changes.
    Synced(SyncEffects),
}

/// A running EventBus.
#[derive(Clone)]
pub struct EventBus {
    cmds: mpsc::UnboundedSender<BusCmd>,
}

impl EventBus {
    /// Tell the EventBus what a Sync batch changed.
    pub fn synced(&self, fx: SyncEffects) {
        if !fx.is_empty() {
            let _ = self.cmds.send(BusCmd::Synced(fx));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Input {
    Message(Publish),
    Connected,
}

/// Start the client against `url` for node `node`. `twin_ready` is woken whenever the
/// twin outbox grew (the EdgeHub then sends it to the hub).
pub fn start(
    url: &str,
    node: &str,
    cache: Arc<Mutex<Cache>>,
    twin_ready: Arc<Notify>,
) -> Result<EventBus> {
    let (host, port) = parse_url(url)?;
    let mut opts = MqttOptions::new(format!("barge-edge-{node}"), host, port);
    opts.set_clean_session(false)
        .set_keep_alive(Duration::from_secs(15))
        .set_max_packet_size(4 << 20, 4 << 20)
        // PUBACK only once the message is committed (Bus::handle).
        .set_manual_acks(true);
    let (client, mut eventloop) = AsyncClient::new(opts, 4096);
    // Small packets (PUBACKs, results, deltas) go out at once: with Nagle on, a publish
    // waits for the broker's delayed ACK of the previous one (~40 ms on Linux).
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Input>();
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<BusCmd>();
    let node = node.to_string();
    let url = url.to_string();
    {
        // The connection: reconnects (with backoff) inside poll() after every error.
        let client = client.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(200);
            let mut down_logged = false;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        log(format!(
                            "EventBus: connected to the MQTT broker at {url} (session present: {})",
                            ack.session_present
                        ));
                        wait = Duration::from_millis(200);
                        down_logged = false;
                        for t in mqtt::agent_subscriptions(&node) {
                            if let Err(e) = client.try_subscribe(t.clone(), QoS::AtLeastOnce) {
                                log(format!("EventBus: subscribe {t}: {e}"));
                            }
                        }
                        let _ = in_tx.send(Input::Connected);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = in_tx.send(Input::Message(p));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !down_logged {
                            log(format!(
                                "EventBus: MQTT broker at {url}: {e}; retrying with backoff"
                            ));
                            down_logged = true;
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        let bus = Bus {
            client,
            cache,
            twin_ready,
            node,
        };
        let mut last_commit: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                i = in_rx.recv() => match i {
                    Some(Input::Message(p)) => {
                        // Group commit: within COMMIT_GAP of the last transaction, wait for
                        // the gap's end; everything that queued meanwhile goes into the same
                        // transaction (one fsync). A lone message goes at once.
                        if let Some(t) = last_commit {
                            tokio::time::sleep_until(t + COMMIT_GAP).await;
                        }
                        let mut batch = vec![p];
                        let mut reconnected = false;
                        while batch.len() < BATCH {
                            match in_rx.try_recv() {
                                Ok(Input::Message(p)) => batch.push(p),
                                Ok(Input::Connected) => {
                                    reconnected = true;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        bus.handle(batch).await;
                        last_commit = Some(tokio::time::Instant::now());
                        if reconnected {
                            bus.republish_deltas().await;
                        }
                    }
                    Some(Input::Connected) => bus.republish_deltas().await,
                    None => break,
                },
                c = cmd_rx.recv() => match c {
                    Some(BusCmd::Synced(fx)) => bus.synced(fx).await,
                    None => break,
                },
            }
        }
    });
    Ok(EventBus { cmds: cmd_tx })
}

struct Bus {
    client: AsyncClient,
    cache: Arc<Mutex<Cache>>,
    twin_ready: Arc<Notify>,
    node: String,
}

/// What a batch of requests produced: messages to publish, and whether the outbox grew.
type Replies = (Vec<(String, Vec<u8>)>, bool);

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn error(topic: String, event_id: String, code: u16, reason: String) -> (String, Vec<u8>) {
    (
        topic,
        json(&ErrorResult {
            base: BaseMessage {
                event_id,
                timestamp: now_ms(),
            },
            code,
            reason,
        }),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn event_id(payload: &[u8]) -> String {
    serde_json::from_slice::<BaseMessage>(payload)
        .map(|b| b.event_id)
        .unwrap_or_default()
}

impl Bus {
    fn publish(&self, topic: String, payload: Vec<u8>) {
        // Never blocks: with the broker away the queue may fill; deltas are published again
        // on the next connection and requests are answered when they arrive.
        if let Err(e) = self
            .client
            .try_publish(topic.clone(), QoS::AtLeastOnce, false, payload)
        {
            log(format!("EventBus: publish {topic}: {e}"));
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Cache) -> T + Send + 'static,
    ) -> Option<T> {
        let cache = self.cache.clone();
        match tokio::task::spawn_blocking(move || f(&mut lock(&cache))).await {
            Ok(v) => Some(v),
            Err(e) => {
                log(format!("EventBus: a twin task failed: {e}"));
                None
            }
        }
    }

    /// Store a batch of messages (one transaction), answer them, then PUBACK them.
    async fn handle(&self, batch: Vec<Publish>) {
        let node = self.node.clone();
        let msgs: Vec<(String, Vec<u8>)> = batch
            .iter()
            .map(|p| (p.topic.clone(), p.payload.to_vec()))
            .collect();
        let r = self
            .blocking(move |c| {
                let (db, mem) = c.twin();
                dispatch_batch(db, mem, &node, &msgs)
            })
            .await;
        if let Some((out, grew)) = r {
            if grew {
                self.twin_ready.notify_one();
            }
            for (t, p) in out {
                self.publish(t, p);
            }
        }
        // Stored, refused or answered with an error: the broker may forget them. (Only a
        // crash before this point leaves them unacked, to be delivered again.)
        for p in &batch {
            if let Err(e) = self.client.ack(p).await {
                log(format!("EventBus: PUBACK of a message on {}: {e}", p.topic));
            }
        }
    }

    async fn synced(&self, fx: SyncEffects) {
        let node = self.node.clone();
        let r = self
            .blocking(move |c| -> Result<Vec<(String, Vec<u8>)>> {
                let db = c.db();
                // Membership first: a mapper learns of a device before its delta.
                let mut out = Vec::new();
                if !fx.added.is_empty() || !fx.removed.is_empty() {
                    let mut added = Vec::new();
                    for (ns, name) in &fx.added {
                        if let Some(m) = devicetwin::membership_device(db, ns, name)? {
                            added.push(m);
                        }
                    }
                    let removed = fx
                        .removed
                        .iter()
                        .map(|(ns, name)| mqtt::MembershipDevice {
                            id: name.clone(),
                            name: name.clone(),
                            namespace: Some(ns.clone()),
                            ..Default::default()
                        })
                        .collect();
                    out.push((
                        mqtt::membership_updated(&node),
                        json(&mqtt::MembershipUpdated {
                            base: BaseMessage {
                                event_id: format!("membership-{}", now_ms()),
                                timestamp: now_ms(),
                            },
                            added_devices: added,
                            removed_devices: removed,
                        }),
                    ));
                }
                for (ns, name) in &fx.changed {
                    if let Some(d) = devicetwin::delta(db, ns, name)? {
                        out.push((mqtt::twin_update_delta(name), json(&d)));
                    }
                }
                Ok(out)
            })
            .await;
        match r {
            Some(Ok(out)) => {
                for (t, p) in out {
                    self.publish(t, p);
                }
            }
            Some(Err(e)) => log(format!("EventBus: after a sync: {e:#}")),
            None => {}
        }
    }

    /// On every connection: the delta of every device (a mapper may have missed some).
    async fn republish_deltas(&self) {
        let r = self
            .blocking(|c| -> Result<Vec<(String, Vec<u8>)>> {
                let db = c.db();
                let mut out = Vec::new();
                for (ns, name) in devicetwin::device_keys(db)? {
                    if let Some(d) = devicetwin::delta(db, &ns, &name)? {
                        out.push((mqtt::twin_update_delta(&name), json(&d)));
                    }
                }
                Ok(out)
            })
            .await;
        match r {
            Some(Ok(out)) => {
                for (t, p) in out {
                    self.publish(t, p);
                }
            }
            Some(Err(e)) => log(format!("EventBus: republish deltas: {e:#}")),
            None => {}
        }
    }
}

/// The topic a request on `topic` is answered on (None: not a request the agent answers).
fn result_topic(node: &str, topic: &str) -> Option<String> {
    if topic == mqtt::membership_get(node) {
        return Some(mqtt::membership_get_result(node));
    }
    let (id, which) = mqtt::parse_device_topic(topic)?;
    Some(match which {
        DeviceTopic::TwinUpdate => mqtt::twin_update_result(id),
        DeviceTopic::TwinGet => mqtt::twin_get_result(id),
        DeviceTopic::StateUpdate => mqtt::state_update_result(id),
    })
}

/// Messages that arrived together, in one transaction: each in a savepoint (rolled back
/// when it is refused), then one commit, so a burst of reports costs one fsync. The answers
/// are returned only when the commit succeeded; otherwise every request gets a 500.
pub fn dispatch_batch(
    db: &mut Connection,
    mem: &mut TwinMemory,
    node: &str,
    msgs: &[(String, Vec<u8>)],
) -> Replies {
    let failed = |what: &str, e: rusqlite::Error| -> Replies {
        log(format!(
            "EventBus: {what} for {} message(s): {e}",
            msgs.len()
        ));
        let out = msgs
            .iter()
            .filter_map(|(topic, payload)| {
                result_topic(node, topic).map(|t| {
                    error(
                        t,
                        event_id(payload),
                        500,
                        format!("the agent could not {what}: {e}"),
                    )
                })
            })
            .collect();
        (out, false)
    };
    let tx = match db.transaction() {
        Ok(tx) => tx,
        Err(e) => return failed("begin a transaction", e),
    };
    let mut out = Vec::new();
    let mut grew = false;
    for (topic, payload) in msgs {
        // A savepoint per message (statements prepared once: this runs for every report).
        if let Err(e) = run(&tx, "SAVEPOINT twin_msg") {
            return failed("open a savepoint", e);
        }
        let (replies, g, keep) = dispatch(&tx, mem, node, topic, payload);
        let closed = if keep {
            grew |= g;
            run(&tx, "RELEASE twin_msg")
        } else {
            run(&tx, "ROLLBACK TO twin_msg").and_then(|()| run(&tx, "RELEASE twin_msg"))
        };
        if let Err(e) = closed {
            // Dropping the transaction rolls every message of the batch back.
            return failed("close a savepoint", e);
        }
        out.extend(replies);
    }
    match tx.commit() {
        Ok(()) => (out, grew),
        Err(e) => failed("commit the twin updates", e),
    }
}

/// Run one statement without results, prepared once per connection.
fn run(db: &Connection, sql: &str) -> rusqlite::Result<()> {
    db.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// One incoming message, inside the batch's transaction -> what to publish, whether the
/// twin outbox grew, and whether its writes are to be kept (false: refused).
pub fn dispatch(
    db: &Connection,
    mem: &mut TwinMemory,
    node: &str,
    topic: &str,
    payload: &[u8],
) -> (Vec<(String, Vec<u8>)>, bool, bool) {
    if topic == mqtt::membership_get(node) {
        let out = match devicetwin::membership(db) {
            Ok(devices) => (
                mqtt::membership_get_result(node),
                json(&mqtt::MembershipGetResult {
                    base: BaseMessage {
                        event_id: event_id(payload),
                        timestamp: now_ms(),
                    },
                    devices,
                }),
            ),
            Err(e) => error(
                mqtt::membership_get_result(node),
                event_id(payload),
                500,
                format!("{e:#}"),
            ),
        };
        return (vec![out], false, true);
    }
    let Some((id, which)) = mqtt::parse_device_topic(topic) else {
        return (Vec::new(), false, true);
    };
    match which {
        DeviceTopic::TwinUpdate => match devicetwin::twin_update(db, mem, id, payload) {
            Ok(o) => {
                let mut out = vec![
                    (mqtt::twin_update_result(id), json(&o.result)),
                    (mqtt::twin_update_document(id), json(&o.document)),
                ];
                if let Some(d) = o.delta {
                    out.push((mqtt::twin_update_delta(id), json(&d)));
                }
                (out, true, true)
            }
            Err(r) => {
                log(format!("EventBus: twin update of {id} refused: {r}"));
                (
                    vec![error(
                        mqtt::twin_update_result(id),
                        event_id(payload),
                        r.code,
                        r.reason,
                    )],
                    false,
                    false,
                )
            }
        },
        DeviceTopic::TwinGet => {
            let out = match devicetwin::twin_get(db, mem, id, payload) {
                Ok(t) => (mqtt::twin_get_result(id), json(&t)),
                Err(r) => error(
                    mqtt::twin_get_result(id),
                    event_id(payload),
                    r.code,
                    r.reason,
                ),
            };
            (vec![out], false, true)
        }
        DeviceTopic::StateUpdate => match devicetwin::state_update(db, mem, id, payload) {
            Ok(r) => (vec![(mqtt::state_update_result(id), json(&r))], true, true),
            Err(r) => (
                vec![error(
                    mqtt::state_update_result(id),
                    event_id(payload),
                    r.code,
                    r.reason,
                )],
                false,
                false,
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barge_edge_proto::wire::Change;
    use serde_json::json;

    fn put(v: serde_json::Value) -> Change {
        Change::Put {
            object: Box::new(serde_json::from_value(v).unwrap()),
        }
    }

    /// Every row of the twin tables, as text (what "nothing stored" compares).
    fn tables(db: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        for t in ["twin_props", "twin_state", "twin_outbox"] {
            let mut st = db
                .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2, 3"))
                .unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    let mut row = vec![t.to_string()];
                    for i in 0..n {
                        row.push(format!("{:?}", r.get_ref(i)?));
                    }
                    Ok(row.join("|"))
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out
    }

    fn msg(topic: &str, body: &str) -> (String, Vec<u8>) {
        (topic.to_string(), body.as_bytes().to_vec())
    }

    fn answers(out: &[(String, Vec<u8>)], topic: &str) -> Vec<serde_json::Value> {
        out.iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| serde_json::from_slice(p).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_commits_good_messages_and_refused_ones_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Cache::open(&d.path().join("cache.db")).unwrap();
        c.apply(
            2,
            false,
            &[
                put(json!({"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
                    "metadata": {"name": "thermo", "namespace": "default", "resourceVersion": "1"},
                    "spec": {"properties": [
                        {"name": "temp", "type": "INT", "accessMode": "ReadWrite", "minimum": "0", "maximum": "100"},
                        {"name": "hum", "type": "FLOAT", "accessMode": "ReadOnly"}]}})),
                put(json!({"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
                    "metadata": {"name": "t1", "namespace": "default", "resourceVersion": "2"},
                    "spec": {"deviceModelRef": {"name": "thermo"}, "nodeName": "n1",
                        "properties": [{"name": "temp"}, {"name": "hum"}]}})),
            ],
        )
        .unwrap();
        let upd = "$hw/events/device/t1/twin/update";
        let state = "$hw/events/device/t1/state/update";
        // Every kind of bad input, alone: refused with its code, nothing stored.
        let before = tables(c.db());
        let bad: &[(&str, &[u8], u16)] = &[
            (upd, b"{nope", 400),
            (upd, b"\xff\xfe\x00", 400),
            (upd, b"[]", 400),
            (upd, br#"{"twin": 5}"#, 400),
            (upd, br#"{"twin": {}}"#, 400),
            (upd, br#"{"twin":{"temp":{"actual":{}}}}"#, 400),
            (upd, br#"{"twin":{"temp":{"actual":{"value":21}}}}"#, 400),
            (upd, br#"{"twin":{"temp":{"actual":{"value":"101"}}}}"#, 400),
            (upd, br#"{"twin":{"temp":{"actual":{"value":"-1"}}}}"#, 400),
            (
                upd,
                br#"{"twin":{"temp":{"actual":{"value":"21.5"}}}}"#,
                400,
            ),
            (upd, br#"{"twin":{"hum":{"actual":{"value":"wet"}}}}"#, 400),
            (upd, br#"{"twin":{"hum":{"actual":{"value":"NaN"}}}}"#, 400),
            (
                upd,
                br#"{"twin":{"temp":{"expected":{"value":"500"}}}}"#,
                400,
            ),
            (upd, br#"{"twin":{"hum":{"expected":{"value":"3"}}}}"#, 400),
            (upd, br#"{"twin":{"volts":{"actual":{"value":"1"}}}}"#, 404),
            (
                "$hw/events/device/ghost/twin/update",
                br#"{"twin":{"temp":{"actual":{"value":"1"}}}}"#,
                404,
            ),
            (state, b"{", 400),
            (state, br#"{"state":"melting"}"#, 400),
            (
                "$hw/events/device/ghost/state/update",
                br#"{"state":"online"}"#,
                404,
            ),
        ];
        for (topic, body, code) in bad {
            let (db, mem) = c.twin();
            let (out, grew) = dispatch_batch(db, mem, "n1", &[(topic.to_string(), body.to_vec())]);
            assert!(!grew, "{topic} {}", String::from_utf8_lossy(body));
            assert_eq!(out.len(), 1, "{out:?}");
            let r: serde_json::Value = serde_json::from_slice(&out[0].1).unwrap();
            assert_eq!(
                r["code"],
                *code,
                "{topic} {}: {r}",
                String::from_utf8_lossy(body)
            );
            assert!(out[0].0.ends_with("/result"), "{}", out[0].0);
        }
        assert_eq!(tables(c.db()), before, "a refused message stored something");

        // Good and bad together in one transaction: the good ones stored, in order, the bad
        // ones answered with their refusal; event ids kept.
        let (db, mem) = c.twin();
        let (out, grew) = dispatch_batch(
            db,
            mem,
            "n1",
            &[
                msg(
                    upd,
                    r#"{"event_id":"a","twin":{"temp":{"actual":{"value":"20"}}}}"#,
                ),
                msg(
                    upd,
                    r#"{"event_id":"b","twin":{"temp":{"actual":{"value":"7"}},"hum":{"actual":{"value":"x"}}}}"#,
                ),
                msg(
                    upd,
                    r#"{"event_id":"c","twin":{"temp":{"actual":{"value":"22"}}}}"#,
                ),
                msg(state, r#"{"event_id":"d","state":"online"}"#),
            ],
        );
        assert!(grew);
        let results = answers(&out, "$hw/events/device/t1/twin/update/result");
        let ids: Vec<_> = results.iter().map(|r| r["event_id"].clone()).collect();
        assert_eq!(ids, vec![json!("a"), json!("b"), json!("c")]);
        assert_eq!(results[1]["code"], 400, "{}", results[1]);
        assert_eq!(results[2]["twin"]["temp"]["actual"]["value"], "22");
        assert_eq!(
            answers(&out, "$hw/events/device/t1/state/update/result").len(),
            1
        );
        let rows = devicetwin::props(c.db(), "default", "t1").unwrap();
        assert_eq!(rows["temp"].reported.as_ref().unwrap().value, "22");
        assert!(rows.get("hum").is_none_or(|r| r.reported.is_none()));
        // Coalesced: one outbox row for temp (the latest), one for the state.
        assert_eq!(devicetwin::outbox_len(c.db()).unwrap(), 2);
        let reports = devicetwin::pending(c.db(), 0).unwrap().unwrap().devices;
        assert_eq!(reports[0].properties.len(), 1);
        assert_eq!(
            reports[0].properties[0].reported.as_ref().unwrap().value,
            "22"
        );
        assert_eq!(reports[0].state.as_deref(), Some("online"));
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_url("tcp://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".to_string(), 1883)
        );
        assert_eq!(
            parse_url("mqtt://broker.local:8883/").unwrap(),
            ("broker.local".to_string(), 8883)
        );
        assert!(parse_url("127.0.0.1:1883").is_err());
        assert!(parse_url("tcp://127.0.0.1").is_err());
        assert!(parse_url("tcp://:1883").is_err());
    }
}
