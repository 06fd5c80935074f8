//! Test fixtures: a real mosquitto, a real pymodbus server, the `barge-mapper` binary, and
//! an MQTT client playing the edge agent (answers `membership/get`, records what the mapper
//! publishes). Every process is killed on drop; ports are picked free on loopback.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barge_edge_proto::device::mqtt::{self, MembershipDevice, MembershipGetResult};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (and reaped) on drop.
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// mosquitto on 127.0.0.1:`port`.
pub struct Mosquitto {
    pub port: u16,
    _dir: tempfile::TempDir,
    pub proc: Proc,
}

impl Mosquitto {
    pub fn start(port: u16) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (Debian package mosquitto)");
        let proc = Proc(Some(child));
        wait_port(port, "mosquitto");
        Mosquitto {
            port,
            _dir: dir,
            proc,
        }
    }

    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modbus_server.py")
}

/// The pymodbus server of tests/modbus_server.py.
pub struct ModbusServer {
    pub port: u16,
    pub proc: Proc,
}

impl ModbusServer {
    pub fn start(port: u16) -> ModbusServer {
        let child = Command::new("python3")
            .arg(script())
            .arg("serve")
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 (with pymodbus)");
        let proc = Proc(Some(child));
        wait_port(port, "the pymodbus server");
        ModbusServer { port, proc }
    }

    /// Holding register `addr`, read with pymodbus's client.
    pub fn holding(&self, addr: u16) -> u16 {
        let out = Command::new("python3")
            .arg(script())
            .arg("read")
            .arg(self.port.to_string())
            .arg(addr.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

/// The `barge-mapper` binary, its stderr in a file.
pub struct Mapper {
    pub proc: Proc,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mapper {
    pub fn start(mqtt: &str, node: &str, protocols: &[&str]) -> Mapper {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mapper.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_barge-mapper"));
        cmd.arg("--mqtt").arg(mqtt).arg("--node").arg(node);
        for p in protocols {
            cmd.arg("--protocol").arg(p);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Mapper {
            proc: Proc(Some(child)),
            log,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A message the mapper published: topic and JSON payload.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub body: Value,
    pub at: Instant,
}

/// The edge agent's part: answers `membership/get` for `node` with `devices`, records every
/// `twin/update` and `state/update`, resubscribes after a broker restart.
pub struct Agent {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    pub devices: Arc<Mutex<Vec<MembershipDevice>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Agent {
    /// Connected and subscribed when this returns (so no `membership/get` is missed).
    pub async fn start(port: u16, node: &str, devices: Vec<MembershipDevice>) -> Agent {
        let mut o = MqttOptions::new(format!("test-agent-{}", free_port()), "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut ev) = AsyncClient::new(o, 256);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready = Some(ready_tx);
        let devices = Arc::new(Mutex::new(devices));
        let (c, d, node) = (client.clone(), devices.clone(), node.to_string());
        let task = tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let subs = [
                            mqtt::membership_get(&node),
                            "$hw/events/device/+/twin/update".into(),
                            "$hw/events/device/+/state/update".into(),
                        ]
                        .map(|t| rumqttc::SubscribeFilter::new(t, QoS::AtLeastOnce));
                        c.try_subscribe_many(subs).unwrap();
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic == mqtt::membership_get(&node) {
                            let ans = MembershipGetResult {
                                devices: d.lock().unwrap().clone(),
                                ..Default::default()
                            };
                            c.try_publish(
                                mqtt::membership_get_result(&node),
                                QoS::AtLeastOnce,
                                false,
                                serde_json::to_vec(&ans).unwrap(),
                            )
                            .unwrap();
                        }
                        let body = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        let _ = tx.send(Msg {
                            topic: p.topic.clone(),
                            body,
                            at: Instant::now(),
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(15), ready_rx)
            .await
            .expect("the test agent did not subscribe within 15 s")
            .unwrap();
        Agent {
            client,
            rx,
            devices,
            task,
        }
    }

    /// The first message (from now) for which `f` gives Some, within `secs`.
    pub async fn wait<T>(
        &mut self,
        secs: u64,
        what: &str,
        mut f: impl FnMut(&Msg) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => {
                    if let Some(t) = f(&m) {
                        return t;
                    }
                }
                Ok(None) => panic!("agent stopped while waiting for {what}"),
                Err(_) => panic!("timed out ({secs} s) waiting for {what}"),
            }
        }
    }

    /// Publish `body` as JSON on `topic` (QoS 1).
    pub fn publish(&self, topic: &str, body: &Value) {
        self.client
            .try_publish(
                topic,
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(body).unwrap(),
            )
            .unwrap();
    }

    /// Every message received within `d` from now.
    pub async fn collect(&mut self, d: Duration) -> Vec<Msg> {
        let deadline = tokio::time::Instant::now() + d;
        let mut out = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            out.push(m);
        }
        out
    }

    /// Forget what was received so far.
    pub fn drain(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Wait for `state/update` of `device` with `state`.
    pub async fn wait_state(&mut self, device: &str, state: &str, secs: u64) {
        let topic = mqtt::state_update(device);
        self.wait(secs, &format!("{device} {state}"), |m| {
            (m.topic == topic && m.body["state"] == state).then_some(())
        })
        .await
    }

    /// Wait for a reported value of `device`/`prop` for which `ok` holds; returns it.
    pub async fn wait_actual(
        &mut self,
        device: &str,
        prop: &str,
        secs: u64,
        mut ok: impl FnMut(&str) -> bool,
    ) -> String {
        let topic = mqtt::twin_update(device);
        self.wait(secs, &format!("{device}/{prop} report"), |m| {
            if m.topic != topic {
                return None;
            }
            let v = m.body["twin"][prop]["actual"]["value"].as_str()?;
            ok(v).then(|| v.to_string())
        })
        .await
    }

    /// Publish a delta for `device` (what the agent does when desired != reported).
    pub fn delta(&self, device: &str, prop: &str, value: &str) {
        let body = serde_json::json!({
            "event_id": "d1", "timestamp": 1,
            "twin": {}, "delta": {prop: value}
        });
        self.client
            .try_publish(
                mqtt::twin_update_delta(device),
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&body).unwrap(),
            )
            .unwrap();
    }
}

/// A membership entry from JSON `spec` and `model` (KubeEdge shapes).
pub fn device(name: &str, spec: Value, model: Value) -> MembershipDevice {
    MembershipDevice {
        id: name.into(),
        name: name.into(),
        namespace: Some("default".into()),
        spec: Some(serde_json::from_value(spec).unwrap()),
        model: Some(serde_json::from_value(model).unwrap()),
        ..Default::default()
    }
}

/// Wait (10 s at most) until the mapper's log contains `line`.
pub async fn wait_log(mapper: &Mapper, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mapper.log().contains(line) {
        assert!(
            Instant::now() < deadline,
            "no {line:?} in the mapper's log:\n{}",
            mapper.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The test Modbus device `name` on the pymodbus server at `port` (tests/modbus_server.py's
/// registers; `missing` is a register the server does not have).
pub fn modbus_device(name: &str, port: u16) -> MembershipDevice {
    let hr = |offset: u16, extra: Value| {
        let mut c = serde_json::json!({"register": "HoldingRegister", "offset": offset});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        serde_json::json!({"protocolName": "modbus", "configData": c})
    };
    let prop = |name: &str, visitors: Value| serde_json::json!({"name": name, "collectCycle": 200, "visitors": visitors});
    device(
        name,
        serde_json::json!({
            "deviceModelRef": {"name": "pump-model"},
            "nodeName": "edge-1",
            "protocol": {"protocolName": "modbus",
                         "configData": {"ip": "127.0.0.1", "port": port, "slaveID": 1, "timeout": 1000}},
            "properties": [
                prop("temperature", hr(0, serde_json::json!({"scale": 0.1}))),
                prop("swapped", hr(1, serde_json::json!({"isSwap": true}))),
                prop("counter", hr(2, serde_json::json!({"limit": 2, "isRegisterSwap": true}))),
                prop("setpoint", hr(4, serde_json::json!({}))),
                prop("humidity", serde_json::json!({"protocolName": "modbus",
                    "configData": {"register": "InputRegister", "offset": 0}})),
                prop("switch", serde_json::json!({"protocolName": "modbus",
                    "configData": {"register": "CoilRegister", "offset": 0}})),
                prop("missing", hr(100, serde_json::json!({}))),
            ]
        }),
        serde_json::json!({
            "protocol": "modbus",
            "properties": [
                {"name": "temperature", "type": "DOUBLE", "accessMode": "ReadOnly"},
                {"name": "swapped", "type": "INT", "accessMode": "ReadOnly"},
                {"name": "counter", "type": "INT", "accessMode": "ReadOnly"},
                {"name": "setpoint", "type": "INT", "accessMode": "ReadWrite", "minimum": "0", "maximum": "1000"},
                {"name": "humidity", "type": "INT", "accessMode": "ReadOnly"},
                {"name": "switch", "type": "BOOLEAN", "accessMode": "ReadWrite"},
                {"name": "missing", "type": "INT", "accessMode": "ReadOnly"},
            ]
        }),
    )
}
