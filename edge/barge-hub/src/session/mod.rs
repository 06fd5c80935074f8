//! One task per edge connection: the first frame decides what it is (Join, Renew or
//! Hello -> a session; see `barge_edge_proto::wire`).

mod frame;
mod join;
mod renew;
mod status;
mod sync;
mod twin;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use barge_edge_proto::wire::{codes, EdgeMsg, HubMsg};
use tokio::io::AsyncWriteExt;
use tokio_rustls::server::TlsStream;

use crate::hub::Hub;
use crate::pki::PeerCert;

/// How long an edge may take to send its first frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// A refusal: the `HubMsg::Error` code and message.
#[derive(Debug)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    fn msg(&self) -> HubMsg {
        HubMsg::Error {
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}

impl From<crate::Error> for Refusal {
    fn from(e: crate::Error) -> Refusal {
        let code = match e {
            crate::Error::Unavailable(_) | crate::Error::Internal(_) => codes::UNAVAILABLE,
            crate::Error::Forbidden(_) => codes::FORBIDDEN,
            _ => codes::PROTOCOL,
        };
        Refusal::new(code, e.to_string())
    }
}

/// Serve one TLS connection from an edge.
pub async fn handle(hub: Arc<Hub>, mut tls: TlsStream<tokio::net::TcpStream>, peer: SocketAddr) {
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|der| PeerCert::parse(der));
    let cert = match cert {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            refuse(
                &mut tls,
                peer,
                &Refusal::new(codes::BAD_CERTIFICATE, e.to_string()),
            )
            .await;
            return;
        }
    };
    let first = match tokio::time::timeout(FIRST_FRAME_TIMEOUT, frame::read::<EdgeMsg, _>(&mut tls))
        .await
    {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            refuse(
                &mut tls,
                peer,
                &Refusal::new(codes::PROTOCOL, format!("first frame: {e}")),
            )
            .await;
            return;
        }
        Err(_) => {
            tracing::info!("edge {peer}: no first frame within {FIRST_FRAME_TIMEOUT:?}; closing");
            return;
        }
    };
    match first {
        EdgeMsg::Join {
            protocol,
            token,
            name,
            labels,
            csr_pem,
            info,
        } => {
            let req = join::JoinRequest {
                protocol,
                token,
                name,
                labels,
                csr_pem,
                info,
            };
            match join::join(&hub, &req).await {
                Ok(msg) => {
                    tracing::info!("edge {peer}: node {} joined", req.name);
                    let _ = frame::write(&mut tls, &msg).await;
                    let _ = tls.shutdown().await;
                }
                Err(r) => {
                    tracing::warn!(
                        "edge {peer}: join as {:?} refused: {}: {}",
                        req.name,
                        r.code,
                        r.message
                    );
                    refuse(&mut tls, peer, &r).await;
                }
            }
        }
        EdgeMsg::Renew { csr_pem } => match renew::renew(&hub, cert.as_ref(), &csr_pem).await {
            Ok((msg, _)) => {
                let _ = frame::write(&mut tls, &msg).await;
                let _ = tls.shutdown().await;
            }
            Err(r) => {
                tracing::warn!("edge {peer}: renew refused: {}: {}", r.code, r.message);
                refuse(&mut tls, peer, &r).await;
            }
        },
        EdgeMsg::Hello {
            protocol,
            name,
            revision,
            inventory,
            info,
        } => {
            let hello = sync::Hello {
                protocol,
                name,
                revision,
                inventory,
                info,
            };
            if let Err(r) = sync::admit(&hub, cert.as_ref(), &hello) {
                tracing::warn!(
                    "edge {peer}: hello as {:?} refused: {}: {}",
                    hello.name,
                    r.code,
                    r.message
                );
                refuse(&mut tls, peer, &r).await;
                return;
            }
            if let Some(cert) = cert {
                sync::run(hub, tls, peer, hello, cert).await;
            }
        }
        other => {
            let r = Refusal::new(
                codes::PROTOCOL,
                format!(
                    "expected Join, Renew or Hello as the first frame, got {}",
                    msg_name(&other)
                ),
            );
            refuse(&mut tls, peer, &r).await;
        }
    }
}

/// Send an Error and close.
async fn refuse(tls: &mut TlsStream<tokio::net::TcpStream>, peer: SocketAddr, r: &Refusal) {
    tracing::debug!("edge {peer}: sending error {}: {}", r.code, r.message);
    let _ = frame::write(tls, &r.msg()).await;
    let _ = tls.shutdown().await;
}

/// A message's type name, for errors.
fn msg_name(m: &EdgeMsg) -> &'static str {
    match m {
        EdgeMsg::Join { .. } => "join",
        EdgeMsg::Renew { .. } => "renew",
        EdgeMsg::Hello { .. } => "hello",
        EdgeMsg::Ack { .. } => "ack",
        EdgeMsg::PodStatus { .. } => "podStatus",
        EdgeMsg::NodeStatus { .. } => "nodeStatus",
        EdgeMsg::Data { .. } => "data",
        EdgeMsg::StreamEnd { .. } => "streamEnd",
        EdgeMsg::Twin { .. } => "twin",
        EdgeMsg::Ping => "ping",
        EdgeMsg::Pong => "pong",
    }
}
