//! `barge hub` flags. `--etcd --listen --api --state-dir` are the fixed interface.

use std::net::SocketAddr;
use std::path::PathBuf;

/// `barge hub --etcd http://H:P[,…] --listen ADDR:PORT --api ADDR:PORT --state-dir DIR`
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "barge hub",
    about = "barge's cloud hub: edges connect to --listen (TLS), the fleet API is on --api"
)]
pub struct Config {
    /// etcd endpoints, comma-separated (`http://127.0.0.1:2379`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub etcd: Vec<String>,
    /// Key prefix in etcd (tests give each fleet its own).
    #[arg(long, default_value = barge_edge_proto::keys::PREFIX)]
    pub etcd_prefix: String,
    /// Edges connect here (TLS 1.3).
    #[arg(long)]
    pub listen: SocketAddr,
    /// `host:port` edges are told to use for this hub (default: --listen).
    #[arg(long)]
    pub advertise: Option<String>,
    /// The fleet HTTP API.
    #[arg(long)]
    pub api: SocketAddr,
    /// `admin.conf`, the key file that seals the CA key in etcd, the hub's own certificate.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The key file sealing the CA key (default: STATE_DIR/hub.key, made on first start).
    /// Every hub of a fleet needs the same one.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// A node silent this long is NotReady.
    #[arg(long, default_value_t = 40)]
    pub node_grace_secs: u64,
    /// Ping interval on edge sessions.
    #[arg(long, default_value_t = 10)]
    pub heartbeat_secs: u64,
    /// Lifetime of node certificates.
    #[arg(long, default_value_t = 90 * 24 * 3600)]
    pub cert_ttl_secs: u64,
    /// How long after expiry a node certificate may still renew itself (proof of the old key).
    #[arg(long, default_value_t = 180 * 24 * 3600)]
    pub renew_grace_secs: u64,
    /// Default lifetime of join tokens.
    #[arg(long, default_value_t = 24 * 3600)]
    pub token_ttl_secs: u64,
}
