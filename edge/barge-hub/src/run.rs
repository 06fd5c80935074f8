//! Startup: etcd, the hub's id and lease, the CA, the cache, `hubs/<id>`, `admin.conf`, then
//! the edge listener, the controller and the fleet API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use barge_edge_proto::keys::{self, CaRecord, HubRecord};
use etcd_client::{PutOptions, WatchOptions};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::hub::Hub;
use crate::pki::{Pki, SealKey};
use crate::store::cache::Cache;

/// A started hub (tests use the bound addresses; `--listen 127.0.0.1:0` works).
pub struct Started {
    pub hub: Arc<Hub>,
    pub edge_addr: SocketAddr,
    pub api_addr: SocketAddr,
}

/// An address others can dial: the unspecified address becomes loopback.
fn dialable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// The host part of `host:port` (IPv6 brackets removed).
fn host_of(endpoint: &str) -> String {
    let host = endpoint
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(endpoint);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

/// Start every part of the hub and return once it serves.
pub async fn start(config: Config) -> anyhow::Result<Started> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating state dir {}", config.state_dir.display()))?;
    let mut prefix = config.etcd_prefix.clone();
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    let etcd = crate::store::connect(&config.etcd).await?;
    let id = crate::tokens::random_alnum(10)?;
    let key_file = config
        .key_file
        .clone()
        .unwrap_or_else(|| config.state_dir.join("hub.key"));
    let seal = SealKey::load_or_create(&key_file)?;
    let pki = Pki::load_or_create(&etcd, &prefix, &seal)
        .await
        .with_context(|| format!("fleet CA (key file {})", key_file.display()))?;

    let nofile = crate::limits::raise_nofile();
    tracing::info!("open-files limit: {nofile}");
    let edge_listener = crate::limits::listen(config.listen, crate::limits::EDGE_BACKLOG)
        .with_context(|| format!("listening for edges on {}", config.listen))?;
    let api_listener = TcpListener::bind(config.api)
        .await
        .with_context(|| format!("listening for the fleet API on {}", config.api))?;
    let edge_addr = edge_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;
    let edge_endpoint = config
        .advertise
        .clone()
        .unwrap_or_else(|| dialable(edge_addr).to_string());
    let scheme = if config.api_insecure_http {
        "http"
    } else {
        "https"
    };
    let api_url = format!("{scheme}://{}", dialable(api_addr));

    // The server certificate names the advertised host, the listen IP and loopback.
    let mut hosts = vec![host_of(&edge_endpoint)];
    let mut extra = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    if !edge_addr.ip().is_unspecified() {
        extra.insert(0, edge_addr.ip().to_string());
    }
    for h in extra {
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let tls = pki.server_config(&hosts, Duration::from_secs(config.renew_grace_secs))?;
    // The API's certificate: its listen IP (loopback when unspecified), localhost, --api-san.
    let mut api_hosts = vec![dialable(api_addr).ip().to_string()];
    for h in ["127.0.0.1", "localhost"]
        .into_iter()
        .map(String::from)
        .chain(config.api_sans.iter().cloned())
    {
        if !api_hosts.contains(&h) {
            api_hosts.push(h);
        }
    }
    let api_tls = if config.api_insecure_http {
        None
    } else {
        Some(pki.api_server_config(&api_hosts)?)
    };

    let lease = crate::store::lease::grant(&etcd).await?;
    let cache = Arc::new(Cache::default());
    cache.start(etcd.clone(), prefix.clone()).await?;
    let hub = Arc::new(Hub {
        tunnels: crate::tunnel::Tunnels::new(etcd.clone(), prefix.clone(), id.clone()),
        config,
        id,
        prefix,
        writes: crate::store::batch::Batcher::start(etcd.clone()),
        etcd,
        lease,
        pki: RwLock::new(Arc::new(pki)),
        cache,
        edge_endpoint,
        api_url,
        seal,
        tls: RwLock::new(tls),
        tls_hosts: hosts,
        api_tls: RwLock::new(api_tls),
        api_tls_hosts: api_hosts,
        pki_rev: std::sync::Mutex::new(0),
    });
    let rec = HubRecord {
        edge_endpoint: hub.edge_endpoint.clone(),
        api_url: hub.api_url.clone(),
    };
    let hub_key = keys::hub(&hub.prefix, &hub.id);
    hub.etcd
        .clone()
        .put(
            hub_key.clone(),
            crate::store::to_json(&rec)?,
            Some(PutOptions::new().with_lease(hub.lease)),
        )
        .await
        .with_context(|| format!("etcd: writing {hub_key}"))?;
    crate::admin::ensure(&hub).await?;

    tokio::spawn(crate::listener::serve(hub.clone(), edge_listener));
    tokio::spawn(watch_pki(hub.clone()));
    tokio::spawn(crate::controller::run(hub.clone()));
    let api_hub = hub.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::api::serve(api_hub, api_listener).await {
            tracing::error!("fleet API: {e:#}");
        }
    });
    tracing::info!(
        "hub {} serving edges on {edge_addr} (advertised {}), fleet API on {}",
        hub.id,
        hub.edge_endpoint,
        hub.api_url
    );
    Ok(Started {
        hub,
        edge_addr,
        api_addr,
    })
}

/// Follow `pki/ca` (CA rotation by any hub): reload the CAs and the server certificate.
async fn watch_pki(hub: Arc<Hub>) {
    let key = hub.key("pki/ca");
    loop {
        // Catch up first (a change may have happened while no watch ran), then follow.
        let mut rev = 0;
        match crate::store::get_json::<CaRecord>(&hub.etcd, &key).await {
            Ok(Some((rec, r))) => {
                rev = r;
                if rec
                    .cas
                    .iter()
                    .map(|c| c.cert_pem.as_str())
                    .collect::<String>()
                    != hub.pki().bundle_pem()
                {
                    reload(&hub, &rec, r);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("watching {key}: {e}"),
        }
        let mut c = hub.etcd.clone();
        let opts = WatchOptions::new().with_start_revision(rev + 1);
        match c.watch(key.clone(), Some(opts)).await {
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(resp)) => {
                        for ev in resp.events() {
                            let Some(kv) = ev.kv() else { continue };
                            match serde_json::from_slice::<CaRecord>(kv.value()) {
                                Ok(rec) => reload(&hub, &rec, kv.mod_revision()),
                                Err(e) => tracing::warn!("{key}: malformed CA record: {e}"),
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("watching {key}: {e}");
                        break;
                    }
                }
            },
            Err(e) => tracing::warn!("watching {key}: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn reload(hub: &Hub, rec: &CaRecord, rev: i64) {
    match hub.reload_pki(rec, rev) {
        Ok(()) => tracing::info!("fleet CAs reloaded ({} trusted)", rec.cas.len()),
        Err(e) => tracing::error!("fleet CA changed but cannot be loaded: {e:#}"),
    }
}

/// `barge hub`: start, then serve until SIGINT/SIGTERM; on the way out revoke the lease
/// so this hub's sessions (`conns/`) and record vanish at once.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let hub = started.hub;
    tracing::info!("hub {}: stopping", hub.id);
    let _ = hub.etcd.clone().lease_revoke(hub.lease).await;
    Ok(())
}
