//! EventBus: the agent's MQTT client (KubeEdge's topics, [`barge_edge_proto::device::mqtt`]).
//! Mappers and apps publish `twin/update`, `twin/get`, `state/update` and
//! `membership/get`; the agent answers on the matching result topics and publishes
//! `twin/update/delta`, `twin/update/document` and `membership/updated`. The twins themselves
//! are the DeviceTwin's ([`crate::devicetwin`]).
//!
//! The client id is `barge-edge-<node>` with a persistent session (clean session off) and QoS 1
//! subscriptions. A broker that goes away is retried with backoff for as long as it takes
//! (pods run on regardless); on every connection the subscriptions are made again and the
//! deltas of every device are published again, so a mapper that missed one catches up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use barge_edge_proto::device::mqtt::{self, BaseMessage, DeviceTopic, ErrorResult};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Serialize;
use tokio::sync::{mpsc, Notify};

use crate::devicetwin::{self, SyncEffects};
use crate::log::log;
use crate::metamanager::Cache;

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
    Message(String, Vec<u8>),
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
        .set_max_packet_size(4 << 20, 4 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 4096);
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
                        let _ = in_tx.send(Input::Message(p.topic.clone(), p.payload.to_vec()));
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
        loop {
            tokio::select! {
                i = in_rx.recv() => match i {
                    Some(Input::Message(topic, payload)) => bus.handle(topic, payload).await,
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

/// What one request produced: messages to publish, and whether the outbox grew.
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

    async fn handle(&self, topic: String, payload: Vec<u8>) {
        let node = self.node.clone();
        let r = self
            .blocking(move |c| dispatch(c, &node, &topic, &payload))
            .await;
        let Some((out, grew)) = r else { return };
        for (t, p) in out {
            self.publish(t, p);
        }
        if grew {
            self.twin_ready.notify_one();
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

/// One incoming message -> what to publish, and whether the twin outbox grew.
pub fn dispatch(c: &mut Cache, node: &str, topic: &str, payload: &[u8]) -> Replies {
    let db = c.db();
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
        return (vec![out], false);
    }
    let Some((id, which)) = mqtt::parse_device_topic(topic) else {
        return (Vec::new(), false);
    };
    match which {
        DeviceTopic::TwinUpdate => match devicetwin::twin_update(db, id, payload) {
            Ok(o) => {
                let mut out = vec![
                    (mqtt::twin_update_result(id), json(&o.result)),
                    (mqtt::twin_update_document(id), json(&o.document)),
                ];
                if let Some(d) = o.delta {
                    out.push((mqtt::twin_update_delta(id), json(&d)));
                }
                (out, true)
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
                )
            }
        },
        DeviceTopic::TwinGet => {
            let out = match devicetwin::twin_get(db, id, payload) {
                Ok(t) => (mqtt::twin_get_result(id), json(&t)),
                Err(r) => error(
                    mqtt::twin_get_result(id),
                    event_id(payload),
                    r.code,
                    r.reason,
                ),
            };
            (vec![out], false)
        }
        DeviceTopic::StateUpdate => match devicetwin::state_update(db, id, payload) {
            Ok(r) => (vec![(mqtt::state_update_result(id), json(&r))], true),
            Err(r) => (
                vec![error(
                    mqtt::state_update_result(id),
                    event_id(payload),
                    r.code,
                    r.reason,
                )],
                false,
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
