//! The mapper's side of the EventBus: MQTT options from a `tcp://HOST:PORT` URL, and
//! publishing KubeEdge's `twin/update` (`actual`) and `state/update` payloads at QoS 1.
//! Publishing never blocks a device: while the broker is away requests queue in rumqttc's
//! channel and go out on reconnect; when the queue is full the report is dropped (the next
//! collect cycle sends a fresh one).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use barge_edge_proto::device::mqtt::{
    self, BaseMessage, DeviceTwinUpdate, MsgTwin, StateUpdate, TwinValue, TypeMetadata,
    ValueMetadata,
};
use barge_edge_proto::device::PropertyType;
use rumqttc::{AsyncClient, MqttOptions, NetworkOptions, QoS};
use serde::Serialize;

/// Parse `tcp://HOST:PORT` (or `mqtt://`, or a bare `HOST:PORT`; port 1883 by default).
pub fn parse_url(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("mqtt://"))
        .unwrap_or(url);
    if rest.contains("://") {
        anyhow::bail!("MQTT URL {url:?}: only tcp:// is supported");
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("MQTT URL {url:?}: bad port {p:?}"))?,
        ),
        _ => (rest, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        anyhow::bail!("MQTT URL {url:?}: no host");
    }
    Ok((host.to_string(), port))
}

/// MQTT options: persistent session, a short keep-alive (a dead broker is noticed within
/// seconds), packets up to 4 MiB (membership answers carry every device's spec and model).
pub fn options(client_id: &str, host: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_keep_alive(Duration::from_secs(5))
        .set_clean_session(false)
        .set_max_packet_size(4 << 20, 4 << 20);
    o
}

/// TCP_NODELAY on the broker connection: a report or PUBACK goes out at once instead of
/// waiting (Nagle) for the broker's delayed ACK of the previous packet (~40 ms on Linux).
pub fn network_options() -> NetworkOptions {
    let mut n = NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A cheap handle to publish on the bus.
#[derive(Clone)]
pub struct Bus {
    client: AsyncClient,
    events: Arc<AtomicU64>,
    prefix: Arc<str>,
}

impl Bus {
    pub fn new(client: AsyncClient, client_id: &str) -> Bus {
        Bus {
            client,
            events: Arc::new(AtomicU64::new(0)),
            prefix: Arc::from(client_id),
        }
    }

    /// A fresh base message (event id unique within this mapper's run).
    pub fn base(&self) -> BaseMessage {
        let n = self.events.fetch_add(1, Ordering::Relaxed);
        BaseMessage {
            event_id: format!("{}-{}-{n}", self.prefix, now_ms()),
            timestamp: now_ms(),
        }
    }

    /// Publish `payload` as JSON at QoS 1 without waiting; false when it was dropped.
    pub fn publish<T: Serialize>(&self, topic: &str, payload: &T) -> bool {
        let body = match serde_json::to_vec(payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("encode the payload for {topic}: {e}");
                return false;
            }
        };
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, body)
        {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("publish on {topic} dropped: {e}");
                false
            }
        }
    }

    /// `twin/update` with the `actual` values of `values` (property -> (type, value)).
    pub fn report(&self, device: &str, values: &[(String, PropertyType, String)]) -> bool {
        let ts = now_ms();
        let twin: BTreeMap<String, MsgTwin> = values
            .iter()
            .map(|(name, ty, value)| {
                (
                    name.clone(),
                    MsgTwin {
                        actual: Some(TwinValue {
                            value: Some(value.clone()),
                            metadata: Some(ValueMetadata { timestamp: ts }),
                        }),
                        metadata: Some(TypeMetadata {
                            type_: ty.twin_type().to_string(),
                        }),
                        ..MsgTwin::default()
                    },
                )
            })
            .collect();
        let msg = DeviceTwinUpdate {
            base: self.base(),
            twin,
        };
        self.publish(&mqtt::twin_update(device), &msg)
    }

    /// `state/update` (`online` / `offline`).
    pub fn state(&self, device: &str, state: &str) -> bool {
        let msg = StateUpdate {
            base: self.base(),
            state: state.to_string(),
        };
        self.publish(&mqtt::state_update(device), &msg)
    }

    pub fn client(&self) -> &AsyncClient {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            parse_url("tcp://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883)
        );
        assert_eq!(parse_url("localhost").unwrap(), ("localhost".into(), 1883));
        assert_eq!(parse_url("tcp://[::1]:2000").unwrap(), ("::1".into(), 2000));
        assert!(parse_url("ssl://h:1").is_err());
        assert!(parse_url("tcp://h:x").is_err());
    }
}
