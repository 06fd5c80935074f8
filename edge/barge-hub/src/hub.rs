//! [`Hub`]: what the sessions, the controller and the API share.
//!
//! (Skeleton: the hub-core work fills in the etcd client, cache, PKI and session registry.)

use crate::config::Config;

/// The running hub.
pub struct Hub {
    pub config: Config,
    /// This hub's id (random, per process).
    pub id: String,
    /// The etcd key prefix.
    pub prefix: String,
    /// Tunnels to edges (local sessions, or forwarded to the hub holding the session).
    pub tunnels: crate::tunnel::Tunnels,
}
