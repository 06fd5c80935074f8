//! The harness of barge's edge end-to-end tests (issue 17): every part is the real thing,
//! started on this machine by the test and stopped when its guard drops.
//!
//! - [`etcd::Etcd`]: Debian's etcd 3.4 on free loopback ports, temp data dir.
//! - [`hub::Hub`]: `barge hub --etcd --listen --api --state-dir` (reads its admin.conf).
//! - [`agent::Agent`]: a device: own barge store, `barge edge join` / `barge edge run`, kill,
//!   power off (agent, shims and containers killed, run root wiped).
//! - [`fleet::Fleet`]: `barge fleet --config admin.conf ...`, `-o json` parsed.
//! - [`proxy::FaultProxy`]: a TCP proxy between agents and a hub that the test drives
//!   (pass, drop, blackhole, delay, flap).
//! - [`browser::Browser`]: headless Chromium (the dashboard tests).
//! - [`mqtt::Mosquitto`], [`mqtt::MqttClient`]: an MQTT broker on a free loopback port (killed
//!   and restarted by the test) and a client that records what it receives.
//! - [`raw::RawEdge`]: a hand-made edge for what a real agent never sends (forged tokens,
//!   foreign certificates, another node's pod).
//!
//! The binaries are found next to the test binary (`target/debug/barge` and its companions
//! `barge-hub`, `barge-edge`, `barge-fleet`, `barge-shim`), or in `$BARGE_BIN_DIR`: build
//! them first with `cargo build --workspace --bins`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod browser;
pub mod etcd;
pub mod fleet;
pub mod hub;
pub mod mqtt;
pub mod proxy;
pub mod raw;
pub mod util;

pub use agent::Agent;
pub use browser::Browser;
pub use etcd::Etcd;
pub use fleet::{Fleet, PodRow};
pub use hub::{AdminConf, Hub, HubOptions};
pub use mqtt::{Mosquitto, MqttClient};
pub use proxy::{Fault, FaultProxy};
pub use raw::RawEdge;
