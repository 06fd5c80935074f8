//! TLS to the hub: TLS 1.3 only, ALPN `barge-edge/1`, the hub's certificate checked against
//! the fleet CA (a private CA: the hub's address may be anything the device was told, so
//! the certificate's names are not checked; its chain to the CA is).
//!
//! - Join: the device has no CA yet. The token carries the SHA-256 of the CA certificate's
//!   DER; the hub sends its CA in its chain, and the connection goes on only if one of the
//!   presented certificates hashes to the pin and the hub's certificate is signed by it.
//! - Session and renew: the CA bundle from `ca.pem` (one or more CAs during a rotation),
//!   and the node certificate as the client certificate.

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use barge_edge_proto::token::sha256_hex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Which CA the hub's certificate must chain to.
#[derive(Debug)]
enum Trust {
    /// A presented certificate whose DER hashes (SHA-256, hex) to this.
    Pin(String),
    /// Any of these CAs.
    Roots(Arc<RootCertStore>),
}

#[derive(Debug)]
struct HubVerifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for HubVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        let algs = self.provider.signature_verification_algorithms.all;
        match &self.trust {
            Trust::Roots(roots) => rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                algs,
            )?,
            Trust::Pin(pin) => {
                let ca = intermediates
                    .iter()
                    .find(|c| sha256_hex(c.as_ref()) == *pin)
                    .ok_or_else(|| {
                        TlsError::General(format!(
                            "the hub's certificate chain has no CA with the token's hash {pin}"
                        ))
                    })?;
                let mut roots = RootCertStore::empty();
                roots.add(ca.clone().into_owned())?;
                rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &cert,
                    &roots,
                    &[],
                    now,
                    algs,
                )?
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn config(trust: Trust, client: Option<(&str, &str)>) -> Result<ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(HubVerifier {
        trust,
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 with aws-lc-rs")?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match client {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let certs = certs(cert_pem).context("node certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| anyhow!("node key: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .context("node certificate and key")?
        }
    };
    cfg.alpn_protocols = vec![barge_edge_proto::ALPN.to_vec()];
    Ok(cfg)
}

/// Every certificate in a PEM text.
pub fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let v = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("bad PEM: {e}"))?;
    if v.is_empty() {
        anyhow::bail!("no certificate in the PEM text");
    }
    Ok(v)
}

/// Join: trust the CA whose DER hashes to `pin`; no client certificate.
pub fn join_config(pin: &str) -> Result<ClientConfig> {
    config(Trust::Pin(pin.to_ascii_lowercase()), None)
}

/// Session: trust the CAs of `ca_pem`; present the node certificate.
pub fn session_config(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca_pem).context("CA bundle")? {
        roots
            .add(c)
            .context("CA bundle: a certificate is not a usable CA")?;
    }
    config(Trust::Roots(Arc::new(roots)), Some((cert_pem, key_pem)))
}

/// The server name to send (SNI): the host part of `host:port` (an IP address is fine).
pub fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    ServerName::try_from(host.to_string()).map_err(|e| anyhow!("hub address {addr:?}: {e}"))
}
