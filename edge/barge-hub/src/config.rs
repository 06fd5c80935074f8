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
    /// The fleet HTTP API and dashboard: https (TLS 1.3 and 1.2) with a server certificate
    /// from the fleet CA, unless --api-insecure-http.
    #[arg(long)]
    pub api: SocketAddr,
    /// More names or IPs for the API's server certificate (besides the listen IP, loopback
    /// and localhost): what users type in the URL. Repeatable or comma-separated.
    #[arg(long = "api-san", value_delimiter = ',')]
    pub api_sans: Vec<String>,
    /// Serve the fleet API and dashboard over plain HTTP (no TLS, no client certificates):
    /// only for a trusted loopback or a TLS-terminating proxy in front.
    #[arg(long)]
    pub api_insecure_http: bool,
    /// Lifetime of admin client certificates (`barge fleet cert create`).
    #[arg(long, default_value_t = 365 * 24 * 3600)]
    pub admin_cert_ttl_secs: u64,
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
