//! The contract between `barge hub` (cloud), `barge edge` (the agent on each device) and
//! `barge fleet` (the operator's CLI). Nothing here does I/O: it is the shapes both sides
//! agree on, so that hub, agent and CLI can change independently.
//!
//! - [`object`]: Kubernetes-like resources (`apiVersion/kind/metadata/spec/status`).
//! - [`wire`]: the messages on the hub<->edge TLS connection and their framing.
//! - [`token`]: join tokens (`K10<ca-sha256>::<id>.<secret>`, k3s's shape).
//! - [`device`]: devices and their twins (KubeEdge's `DeviceModel`/`Device` shapes, twin
//!   versions and the conflict rule) and the MQTT topics and payloads of the edge's EventBus.
//! - [`keys`]: where the hub keeps each kind of state in etcd.
#![forbid(unsafe_code)]

pub mod device;
pub mod keys;
pub mod object;
pub mod token;
pub mod wire;

/// ALPN protocol id of the hub<->edge connection.
pub const ALPN: &[u8] = b"barge-edge/1";
/// The wire protocol version sent in `Hello` and `Join`.
pub const PROTOCOL_VERSION: u32 = 1;
