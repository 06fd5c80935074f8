//! `barge hub`: the cloud side of barge's edge (KubeEdge's CloudHub + EdgeController).
//!
//! Many hub processes can serve one fleet: all state is in etcd ([`barge_edge_proto::keys`]),
//! each hub keeps an in-memory cache of it (watched), holds the TLS sessions of the edges
//! connected to it, and forwards tunnel requests to the hub that holds a node's session.
//!
//! - `config`: the command line (fixed interface: `--etcd --listen --api --state-dir`).
//! - `hub`: [`hub::Hub`], the state every part shares.
//! - `store`: etcd access (prefix, transactions, the hub's lease) and the watched cache.
//! - `pki`: the fleet CA (sealed in etcd with the key file), node and hub certificates.
//! - `tokens`: one-time join tokens.
//! - `view`: a node's desired set (its Pods, the pods of Deployments placed on it and of
//!   matching DaemonSets, the ConfigMaps and Secrets they use; its Devices and their models).
//! - `devices`: DeviceModel/Device checks, desired versions, twin merging and status.
//! - `controller`: Deployment placement (one hub at a time, by an etcd lock).
//! - `limits`: the open-files limit and the edges' accept queue (10 000 edges per hub).
//! - `listener`, `session`: the edges' TLS port and one task per connected edge.
//! - `tunnel`: exec and logs streams to an edge through its session (local or forwarded).
//! - `api`: the fleet HTTP API (`--api`), and `admin`: `admin.conf`.
//! - `dashboard`: the fleet web dashboard on the API's listener (`/`, `/ui/...`).
//! - `run`: startup (what `barge-hub` runs).
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod config;
pub mod controller;
pub mod dashboard;
pub mod devices;
pub mod hub;
pub mod limits;
pub mod listener;
pub mod pki;
pub mod run;
pub mod session;
pub mod store;
pub mod tokens;
pub mod tunnel;
pub mod util;
pub mod view;

/// Errors a caller must tell apart (the API maps them to 404/409/400/403/503).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    /// etcd or the node's session is unreachable.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
