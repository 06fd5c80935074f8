//! The mapper's main loop: keep the MQTT connection (rumqttc reconnects on the next poll),
//! subscribe and ask `membership/get` on every (re)connection, follow `membership/updated`,
//! run one task per device of a served protocol (restarted when its spec or model changes,
//! stopped when it leaves the node), and route `twin/update/delta` to the device's task.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use barge_edge_proto::device::mqtt::{
    self, DeviceTwinDelta, MembershipDevice, MembershipGetResult, MembershipUpdated,
};
use rumqttc::{AsyncClient, Event, Packet, QoS, SubscribeFilter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bus::{self, Bus};
use crate::config::{Config, Protocol};
use crate::device::{self, DeviceCmd};
use crate::modbus::ModbusDriver;
use crate::virtual_device::VirtualDriver;

/// The delta topic of every device.
const DELTA_FILTER: &str = "$hw/events/device/+/twin/update/delta";

struct Running {
    /// What the task was started from (a change restarts it).
    from: MembershipDevice,
    tx: mpsc::Sender<DeviceCmd>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Mapper {
    node: String,
    protocols: Vec<Protocol>,
    bus: Bus,
    devices: HashMap<String, Running>,
}

impl Mapper {
    fn protocol_of(&self, d: &MembershipDevice) -> Option<Protocol> {
        let name = d.spec.as_ref()?.protocol.as_ref()?.protocol_name.as_str();
        self.protocols.iter().copied().find(|p| p.name() == name)
    }

    /// Start, restart or keep a device.
    fn upsert(&mut self, d: MembershipDevice) {
        let id = device::device_id(&d).to_string();
        let Some(protocol) = self.protocol_of(&d) else {
            if self.devices.remove(&id).is_some() {
                tracing::info!("device {id}: no longer of a served protocol; stopped");
            }
            return;
        };
        if let Some(r) = self.devices.get(&id) {
            if r.from.spec == d.spec && r.from.model == d.model && r.from.namespace == d.namespace {
                return;
            }
            tracing::info!("device {id}: spec or model changed; restarting");
        }
        let (tx, rx) = mpsc::channel(64);
        let bus = self.bus.clone();
        let task = match protocol {
            Protocol::Modbus => tokio::spawn(device::run::<ModbusDriver>(d.clone(), bus, rx)),
            Protocol::Virtual => tokio::spawn(device::run::<VirtualDriver>(d.clone(), bus, rx)),
        };
        self.devices.insert(id, Running { from: d, tx, task });
    }

    fn remove(&mut self, id: &str) {
        if self.devices.remove(id).is_some() {
            tracing::info!("device {id}: removed from node {}; stopped", self.node);
        }
    }

    fn on_connected(&self) {
        let subs = [
            mqtt::membership_get_result(&self.node),
            mqtt::membership_updated(&self.node),
            DELTA_FILTER.to_string(),
        ]
        .map(|t| SubscribeFilter::new(t, QoS::AtLeastOnce));
        if let Err(e) = self.bus.client().try_subscribe_many(subs) {
            tracing::warn!("subscribe: {e}");
        }
        let ask = self.bus.base();
        self.bus.publish(&mqtt::membership_get(&self.node), &ask);
    }

    fn on_publish(&mut self, topic: &str, payload: &[u8]) {
        if topic == mqtt::membership_get_result(&self.node) {
            match serde_json::from_slice::<MembershipGetResult>(payload) {
                Ok(m) => {
                    let keep: Vec<String> = m
                        .devices
                        .iter()
                        .map(|d| device::device_id(d).to_string())
                        .collect();
                    let gone: Vec<String> = self
                        .devices
                        .keys()
                        .filter(|k| !keep.contains(k))
                        .cloned()
                        .collect();
                    for id in gone {
                        self.remove(&id);
                    }
                    tracing::info!(
                        "membership: {} device(s) on node {}",
                        m.devices.len(),
                        self.node
                    );
                    for d in m.devices {
                        self.upsert(d);
                    }
                }
                Err(e) => tracing::warn!("malformed payload on {topic}: {e}; ignored"),
            }
        } else if topic == mqtt::membership_updated(&self.node) {
            match serde_json::from_slice::<MembershipUpdated>(payload) {
                Ok(m) => {
                    for d in &m.removed_devices {
                        self.remove(device::device_id(d));
                    }
                    for d in m.added_devices {
                        self.upsert(d);
                    }
                }
                Err(e) => tracing::warn!("malformed payload on {topic}: {e}; ignored"),
            }
        } else if let Some(id) = topic
            .strip_prefix("$hw/events/device/")
            .and_then(|r| r.strip_suffix("/twin/update/delta"))
        {
            let Some(r) = self.devices.get(id) else {
                return;
            };
            match serde_json::from_slice::<DeviceTwinDelta>(payload) {
                Ok(d) if !d.delta.is_empty() => {
                    if r.tx.try_send(DeviceCmd::Delta(d.delta)).is_err() {
                        tracing::warn!("device {id}: too many deltas queued; this one dropped");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("malformed payload on {topic}: {e}; ignored"),
            }
        }
    }
}

/// Run the mapper until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let (host, port) = bus::parse_url(&config.mqtt)?;
    let client_id = config.client_id();
    let (client, mut events) = AsyncClient::new(bus::options(&client_id, &host, port), 1024);
    events.set_network_options(bus::network_options());
    let mut mapper = Mapper {
        node: config.node.clone(),
        protocols: config.protocols(),
        bus: Bus::new(client.clone(), &client_id),
        devices: HashMap::new(),
    };
    tracing::info!(
        "mapper {client_id}: node {}, broker {host}:{port}",
        config.node
    );
    tokio::pin!(shutdown);
    let mut connected = false;
    loop {
        let ev = tokio::select! {
            _ = &mut shutdown => break,
            ev = events.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!("connected to the broker {host}:{port}");
                connected = true;
                mapper.on_connected();
            }
            Ok(Event::Incoming(Packet::Publish(p))) => mapper.on_publish(&p.topic, &p.payload),
            Ok(_) => {}
            Err(e) => {
                if connected {
                    tracing::warn!("broker {host}:{port}: {e}; reconnecting");
                    connected = false;
                } else {
                    tracing::debug!("broker {host}:{port}: {e}");
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
    tracing::info!("stopping");
    mapper.devices.clear();
    if connected && client.try_disconnect().is_ok() {
        // Let the DISCONNECT go out (bounded).
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match events.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
    Ok(())
}
