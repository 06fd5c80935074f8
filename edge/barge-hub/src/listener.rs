//! The edges' TLS port: accept, handshake (TLS 1.3, ALPN `barge-edge/1`), one task per
//! connection (`session::handle`).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::hub::Hub;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Accept edges forever (each with the hub's TLS config of the moment: a CA rotation
/// takes effect for the next connection).
pub async fn serve(hub: Arc<Hub>, listener: TcpListener) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("edge listener: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(hub.tls());
        let hub = hub.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => crate::session::handle(hub, tls, peer).await,
                Ok(Err(e)) => tracing::warn!("edge {peer}: TLS handshake failed: {e}"),
                Err(_) => tracing::warn!("edge {peer}: TLS handshake timed out"),
            }
        });
    }
}
