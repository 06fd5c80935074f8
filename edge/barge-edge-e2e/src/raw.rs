//! [`RawEdge`]: a hand-made edge speaking the wire protocol (`barge_edge_proto::wire`) to a
//! hub's TLS port, for what the real agent never does: forged tokens, certificates the hub
//! did not issue, asking about another node's pod. It checks the hub, not itself: it does not
//! verify the hub's certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use barge_edge_proto::object::NodeInfo;
use barge_edge_proto::wire::{self, EdgeMsg, HubMsg};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A node identity: certificate and key (PEM).
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A key and a CSR for `node:<name>` (PEM): (csr, key).
pub fn csr(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("generate a key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CSR params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("node:{name}"));
    let csr = params.serialize_request(&key).expect("serialize CSR");
    (csr.pem().expect("CSR PEM"), key.serialize_pem())
}

/// A self-signed certificate for `node:<name>`: one the hub did not issue.
pub fn self_signed(name: &str) -> Identity {
    let key = rcgen::KeyPair::generate().expect("generate a key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("cert params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("node:{name}"));
    let cert = params.self_signed(&key).expect("self-sign");
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// Some plausible node info.
pub fn node_info() -> NodeInfo {
    NodeInfo {
        architecture: std::env::consts::ARCH.into(),
        os: "linux".into(),
        kernel_version: "test".into(),
        agent_version: "e2e-raw".into(),
        cpus: 1,
        memory_bytes: 1 << 30,
        addresses: vec!["127.0.0.1".into()],
    }
}

/// One TLS connection to a hub's edge port.
pub struct RawEdge {
    rt: tokio::runtime::Runtime,
    tls: Option<TlsStream<TcpStream>>,
}

/// How long one receive waits.
const RECV_TIMEOUT: Duration = Duration::from_secs(15);

impl RawEdge {
    /// Connect to `addr` with TLS 1.3 and ALPN `barge-edge/1`, presenting `identity` if
    /// given. `Err` carries the connect or handshake error (a hub refusing a certificate
    /// may do it in the handshake).
    pub fn connect(addr: SocketAddr, identity: Option<&Identity>) -> Result<RawEdge, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
        let mut config = match identity {
            Some(id) => {
                let certs: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("certificate PEM: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())
                    .map_err(|e| format!("key PEM: {e}"))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("client certificate: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![barge_edge_proto::ALPN.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tls = rt.block_on(async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            let name = ServerName::IpAddress(addr.ip().into());
            tokio::time::timeout(RECV_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| format!("TLS handshake with {addr} timed out"))?
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))
        })?;
        Ok(RawEdge { rt, tls: Some(tls) })
    }

    /// Send one message.
    pub fn send(&mut self, msg: &EdgeMsg) -> Result<(), String> {
        let frame = wire::encode(msg).map_err(|e| e.to_string())?;
        let tls = self.tls.as_mut().ok_or("connection closed")?;
        self.rt
            .block_on(async {
                tls.write_all(&frame).await?;
                tls.flush().await
            })
            .map_err(|e| format!("send: {e}"))
    }

    /// Receive one message; `Err` on EOF, a reset, a bad frame or after 15 s.
    pub fn recv(&mut self) -> Result<HubMsg, String> {
        let tls = self.tls.as_mut().ok_or("connection closed")?;
        self.rt.block_on(async {
            tokio::time::timeout(RECV_TIMEOUT, async {
                let mut head = [0u8; 4];
                tls.read_exact(&mut head)
                    .await
                    .map_err(|e| format!("read frame header: {e}"))?;
                let n = wire::frame_len(head).map_err(|e| e.to_string())?;
                let mut body = vec![0u8; n];
                tls.read_exact(&mut body)
                    .await
                    .map_err(|e| format!("read frame: {e}"))?;
                wire::decode::<HubMsg>(&body).map_err(|e| e.to_string())
            })
            .await
            .map_err(|_| "no message from the hub in 15 s".to_string())?
        })
    }

    /// Receive until a message that is not a Ping/Pong (answering Pings).
    pub fn recv_skip_pings(&mut self) -> Result<HubMsg, String> {
        loop {
            match self.recv()? {
                HubMsg::Ping => self.send(&EdgeMsg::Pong)?,
                HubMsg::Pong => {}
                m => return Ok(m),
            }
        }
    }

    /// Join with `token` as `name`: the issued identity, or the hub's answer when it is not
    /// `Joined` (an `Error`), or the transport error.
    pub fn join(addr: SocketAddr, token: &str, name: &str) -> Result<Identity, String> {
        let mut c = RawEdge::connect(addr, None)?;
        let (csr_pem, key_pem) = csr(name);
        c.send(&EdgeMsg::Join {
            protocol: barge_edge_proto::PROTOCOL_VERSION,
            token: token.into(),
            name: name.into(),
            labels: Default::default(),
            csr_pem,
            info: node_info(),
        })?;
        match c.recv()? {
            HubMsg::Joined { cert_pem, .. } => Ok(Identity { cert_pem, key_pem }),
            HubMsg::Error { code, message } => Err(format!("error {code}: {message}")),
            other => Err(format!("unexpected answer: {other:?}")),
        }
    }

    /// Connect with `identity` and say Hello as `name` with an empty inventory; the hub's
    /// first answer (Welcome or Error), or the transport error.
    pub fn hello(
        addr: SocketAddr,
        identity: &Identity,
        name: &str,
    ) -> Result<(RawEdge, HubMsg), String> {
        let mut c = RawEdge::connect(addr, Some(identity))?;
        c.send(&EdgeMsg::Hello {
            protocol: barge_edge_proto::PROTOCOL_VERSION,
            name: name.into(),
            revision: 0,
            inventory: vec![],
            info: node_info(),
        })?;
        let m = c.recv()?;
        Ok((c, m))
    }
}

/// Accepts any server certificate (the tests check the hub's side, not the edge's pinning),
/// while still checking the handshake signatures.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
