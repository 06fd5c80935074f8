//! `barge edge`: the agent on each device (KubeEdge's edge half, in one small process).
//!
//! - [`config`]: the agent's files under `ROOT/edge/` (key, certificate, CA, edge.json).
//! - [`tls`], [`conn`]: TLS 1.3 to the hub (CA pinned by the join token's hash, then the CA
//!   bundle) and the frame I/O.
//! - [`join`]: `barge-edge join` (key made here, CSR sent, certificate stored).
//! - [`metamanager`]: the desired-state cache (SQLite, one transaction per Sync batch).
//! - [`edgehub`]: the session with the hubs (backoff + jitter, Hello/Sync/Ack, status,
//!   twin reports from the outbox and their acks).
//! - [`devicetwin`]: devices' twins (desired, pending edge edits, reported) and the outbox of
//!   reports for the hub, in the cache's SQLite database.
//! - [`eventbus`]: the MQTT client (KubeEdge's topics) mappers and apps talk to.
//! - [`render`], [`edged`]: desired pods to `kube play` YAML with a content hash; pods made,
//!   replaced, removed and restored through the engine; their status from engine events.
//! - [`tunnel`]: Exec and Logs streams from the hub.
//! - [`servicebus`]: Connect streams from the hub (TCP to host ports and pod IPs).
//! - [`sim`]: `barge edge sim`, many hollow agents (real TLS and protocol, no engine).
#![forbid(unsafe_code)]

pub mod backoff;
pub mod config;
pub mod conn;
pub mod devicetwin;
pub mod edged;
pub mod edgehub;
pub mod eventbus;
pub mod info;
pub mod join;
pub mod log;
pub mod metamanager;
pub mod render;
pub mod servicebus;
pub mod sim;
pub mod tls;
pub mod tunnel;
