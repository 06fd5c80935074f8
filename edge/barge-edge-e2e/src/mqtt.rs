//! [`Mosquitto`]: Debian's broker (`/usr/sbin/mosquitto`) on a free loopback port, anonymous,
//! no persistence, `set_tcp_nodelay` (as the README advises), its config and log in a temp dir;
//! killed on drop, restartable on the same port (a broker that went away and came back).
//! [`MqttClient`]: a test's MQTT client (rumqttc) that records every message it receives.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use crate::util::{free_port, listening, Proc};

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
    starts: u32,
}

impl Mosquitto {
    /// A broker on a free loopback port (retried on another port if it cannot listen).
    pub fn start() -> Mosquitto {
        for _ in 0..5 {
            let mut m = Mosquitto {
                port: free_port(),
                dir: tempfile::tempdir().expect("temp dir for mosquitto"),
                proc: None,
                starts: 0,
            };
            if m.try_start() {
                return m;
            }
        }
        panic!("mosquitto did not start on five free ports ({MOSQUITTO} installed?)");
    }

    fn try_start(&mut self) -> bool {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n",
                self.port
            ),
        )
        .expect("write mosquitto.conf");
        self.starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("mosquitto-{}.log", self.starts));
        let mut cmd = Command::new(MOSQUITTO);
        cmd.arg("-c").arg(&conf);
        let mut p = Proc::spawn(cmd, &log);
        let addr = self.addr();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if !p.running() {
                return false;
            }
            if listening(addr) {
                self.proc = Some(p);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `tcp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// SIGKILL the broker (every session and queued message is lost: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.try_start() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("mosquitto did not come back on port {}", self.port);
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A received message: topic and payload (JSON when it parses, else a string).
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub json: Value,
}

/// A test's MQTT client: subscribes to `topics` (again after every reconnection), records
/// everything it receives.
pub struct MqttClient {
    client: Client,
    rx: Mutex<Receiver<Msg>>,
}

impl MqttClient {
    pub fn connect(broker: &Mosquitto, id: &str, topics: &[&str]) -> MqttClient {
        let mut o = MqttOptions::new(id, "127.0.0.1", broker.port);
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut conn) = Client::new(o, 1000);
        let (tx, rx) = channel();
        let n_topics = topics.len();
        let (c2, topics) = (
            client.clone(),
            topics.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        );
        let (ready_tx, ready_rx) = channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for t in &topics {
                            let _ = c2.try_subscribe(t.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let json = serde_json::from_slice(&p.payload).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&p.payload).into_owned())
                        });
                        if tx
                            .send(Msg {
                                topic: p.topic.clone(),
                                json,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(rumqttc::ConnectionError::RequestsDone) => return,
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        // Subscribed (every SubAck) before the test goes on.
        for _ in 0..n_topics {
            let _ = ready_rx.recv_timeout(Duration::from_secs(10));
        }
        MqttClient {
            client,
            rx: Mutex::new(rx),
        }
    }

    /// Publish (QoS 1).
    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .expect("queue an MQTT publish");
    }

    /// The first message from now on for which `f` is true, within `timeout`.
    pub fn wait(&self, timeout: Duration, mut f: impl FnMut(&Msg) -> bool) -> Option<Msg> {
        let end = Instant::now() + timeout;
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(m) if f(&m) => return Some(m),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Forget what was received so far.
    pub fn drain(&self) {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        while rx.try_recv().is_ok() {}
    }
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}
