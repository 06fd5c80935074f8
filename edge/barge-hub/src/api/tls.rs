//! The fleet API's https listener: TLS handshake (the hub's API config of the moment, so a CA
//! rotation takes effect for the next connection), the client certificate judged once per
//! connection ([`ClientCert`], put in every request's extensions), then HTTP/1.1 with
//! upgrades (exec, ServiceBus) on the API's router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::hub::Hub;
use crate::pki::{PeerCert, ADMIN_CN_PREFIX};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The client certificate of a request's connection.
#[derive(Debug, Clone)]
pub enum ClientCert {
    /// None presented (or plain HTTP).
    None,
    /// It chains to a fleet CA and is valid now.
    Valid(PeerCert),
    /// Presented but refused: why.
    Invalid(String),
}

impl ClientCert {
    /// The admin name of a valid `admin:<name>` certificate.
    pub fn admin(&self) -> Option<&str> {
        match self {
            ClientCert::Valid(p) => p.common_name.strip_prefix(ADMIN_CN_PREFIX),
            _ => None,
        }
    }
}

/// Judge the chain a client presented (leaf first) against the hub's current CAs.
pub fn judge(
    hub: &Hub,
    chain: Option<&[rustls::pki_types::CertificateDer<'static>]>,
) -> ClientCert {
    match chain {
        None | Some([]) => ClientCert::None,
        Some(chain) => match hub.pki().check_client(chain) {
            Ok(peer) => ClientCert::Valid(peer),
            Err(why) => ClientCert::Invalid(why),
        },
    }
}

/// Serve `router` over TLS on `listener` until the process ends.
pub async fn serve(hub: Arc<Hub>, listener: TcpListener, router: Router) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("fleet API: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(cfg) = hub.api_tls() else {
            tracing::error!("fleet API: no TLS config (plain HTTP is served by axum::serve)");
            return;
        };
        let acceptor = TlsAcceptor::from(cfg);
        let hub = hub.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!("fleet API {peer}: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("fleet API {peer}: TLS handshake timed out");
                    return;
                }
            };
            let cert = judge(&hub, tls.get_ref().1.peer_certificates());
            if let ClientCert::Invalid(why) = &cert {
                tracing::warn!("fleet API {peer}: client certificate refused: {why}");
            }
            let svc = TowerToHyperService::new(router.layer(axum::Extension(cert)));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("fleet API {peer}: {e}");
            }
        });
    }
}
