//! [`Hub`]: what the sessions, the controller and the API share.

use std::sync::{Arc, RwLock};

use barge_edge_proto::keys::HubRecord;

use crate::config::Config;
use crate::pki::Pki;
use crate::store::cache::Cache;

/// The running hub.
pub struct Hub {
    pub config: Config,
    /// This hub's id (random, per process).
    pub id: String,
    /// The etcd key prefix.
    pub prefix: String,
    /// etcd (cheap to clone; clone it to call `&mut self` methods).
    pub etcd: etcd_client::Client,
    /// Sessions' unconditional writes (pod statuses, node records), batched.
    pub writes: crate::store::batch::Batcher,
    /// Tunnels to edges (local sessions, or forwarded to the hub holding the session).
    pub tunnels: crate::tunnel::Tunnels,
    /// This hub's etcd lease (`hubs/<id>`, `conns/<node>`, the controller lock).
    pub lease: i64,
    /// The fleet CA(s).
    pub pki: RwLock<Arc<Pki>>,
    /// Watched cache of `objects/`, `placements/`, `revoked/`.
    pub cache: Arc<Cache>,
    /// `host:port` edges are told to use for this hub.
    pub edge_endpoint: String,
    /// `http://host:port` of this hub's fleet API.
    pub api_url: String,
    /// The key file's key (opens the CA keys in `pki/ca`).
    pub seal: crate::pki::SealKey,
    /// The edge port's TLS config (rebuilt when the fleet's CAs change).
    pub tls: RwLock<Arc<rustls::ServerConfig>>,
    /// Names and IPs this hub's server certificate carries.
    pub tls_hosts: Vec<String>,
    /// The fleet API's TLS config (rebuilt when the fleet's CAs change); None with
    /// `--api-insecure-http`.
    pub api_tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
    /// Names and IPs the API's server certificate carries.
    pub api_tls_hosts: Vec<String>,
    /// The etcd mod revision of the `pki/ca` record loaded last (0: the one read at start):
    /// a reload from an older revision (a watch event arriving after the API's own reload)
    /// is skipped, so the CAs never go back. Held while reloading.
    pub pki_rev: std::sync::Mutex<i64>,
}

impl Hub {
    /// The current CAs.
    pub fn pki(&self) -> Arc<Pki> {
        match self.pki.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The edge port's current TLS config.
    pub fn tls(&self) -> Arc<rustls::ServerConfig> {
        match self.tls.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The fleet API's current TLS config (None: plain HTTP).
    pub fn api_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        match self.api_tls.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Take a new CA record (rotation): new CAs, new server certificates (edge port and API),
    /// and the new CA bundle in this hub's `admin.conf`.
    /// `rev` is the record's etcd mod revision: an older one than the last loaded is ignored.
    pub fn reload_pki(
        &self,
        rec: &barge_edge_proto::keys::CaRecord,
        rev: i64,
    ) -> anyhow::Result<()> {
        let mut loaded = match self.pki_rev.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if rev <= *loaded {
            return Ok(());
        }
        let pki = Pki::from_record(rec, &self.seal)?;
        let tls = pki.server_config(
            &self.tls_hosts,
            std::time::Duration::from_secs(self.config.renew_grace_secs),
        )?;
        let api_tls = if self.config.api_insecure_http {
            None
        } else {
            Some(pki.api_server_config(&self.api_tls_hosts)?)
        };
        // TLS first: whoever sees the new CAs through `pki()` finds the port serving them.
        match self.tls.write() {
            Ok(mut t) => *t = tls,
            Err(poisoned) => *poisoned.into_inner() = tls,
        }
        match self.api_tls.write() {
            Ok(mut t) => *t = api_tls,
            Err(poisoned) => *poisoned.into_inner() = api_tls,
        }
        *loaded = rev;
        if !self.config.api_insecure_http {
            crate::admin::update_ca(&self.config.state_dir, &pki.bundle_pem())?;
        }
        match self.pki.write() {
            Ok(mut p) => *p = Arc::new(pki),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(pki),
        }
        Ok(())
    }

    /// A key under the fleet's prefix (`objects/...` -> `/barge/objects/...`).
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Every live hub's edge endpoint (from `hubs/`), this one first.
    pub async fn hub_endpoints(&self) -> Vec<String> {
        let mut out = vec![self.edge_endpoint.clone()];
        match crate::store::list_json::<HubRecord>(&self.etcd, &self.key("hubs/")).await {
            Ok(list) => {
                for (_, rec) in list {
                    if !out.contains(&rec.edge_endpoint) {
                        out.push(rec.edge_endpoint);
                    }
                }
            }
            Err(e) => tracing::warn!("listing hubs: {e}"),
        }
        out
    }
}
