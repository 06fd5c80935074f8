//! The fleet CA and the certificates it signs.
//!
//! - The CA is made once per fleet: the first hub generates it and stores it at `pki/ca`
//!   with a create-if-absent transaction; a hub that loses that race reloads the winner's.
//!   Its private key is sealed with AES-256-GCM under the hub's key file (32 random bytes,
//!   mode 0600, made on first start; every hub of a fleet needs the same file).
//! - Node certificates are signed from the edge's CSR (the key never leaves the device):
//!   CN `node:<name>`, client auth, the configured lifetime.
//! - Each hub process makes its own server certificate (SANs: its advertised host/IPs).
//! - Edge TLS: client certificates are optional at the TLS level (a Join has none), checked
//!   against every CA of the bundle; a certificate that expired within the renew grace is
//!   let through the handshake, and the session then only accepts a Renew with it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use barge_edge_proto::keys::{CaEntry, CaRecord};
use barge_edge_proto::token::sha256_hex;
use base64::Engine as _;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};

use crate::util::now_secs;

/// The sealing key (the key file's 32 bytes).
pub struct SealKey([u8; 32]);

impl SealKey {
    /// Read the key file, or make it (32 random bytes, mode 0600, atomically) when absent.
    pub fn load_or_create(path: &Path) -> anyhow::Result<SealKey> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "key file {}: {} bytes, expected 32",
                        path.display(),
                        bytes.len()
                    )
                })?;
                Ok(SealKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                aws_lc_rs::rand::fill(&mut key)
                    .map_err(|_| anyhow::anyhow!("no randomness for the key file"))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                barge_util::fs::write_atomic(
                    path,
                    &key,
                    0o600,
                    barge_util::fs::Durability::Durable,
                )
                .with_context(|| format!("writing key file {}", path.display()))?;
                Ok(SealKey(key))
            }
            Err(e) => Err(e).with_context(|| format!("reading key file {}", path.display())),
        }
    }

    /// Seal: base64 of nonce || ciphertext+tag.
    pub fn seal(&self, plain: &[u8]) -> anyhow::Result<String> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, &self.0)
            .map_err(|_| anyhow::anyhow!("AES-256-GCM key setup failed"))?;
        let mut buf = plain.to_vec();
        let nonce = key
            .seal_in_place_append_tag(Aad::empty(), &mut buf)
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Open what [`SealKey::seal`] made (fails on a wrong key file or tampering).
    pub fn open(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .context("sealed key is not base64")?;
        if raw.len() < NONCE_LEN {
            anyhow::bail!("sealed key is too short");
        }
        let (n, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n)
            .map_err(|_| anyhow::anyhow!("sealed key: bad nonce"))?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &self.0)
            .map_err(|_| anyhow::anyhow!("AES-256-GCM key setup failed"))?;
        let mut buf = ct.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::empty(), &mut buf)
            .map_err(|_| {
                anyhow::anyhow!("cannot open the sealed CA key: this hub's key file is not the one the fleet's CA was sealed with")
            })?;
        Ok(plain.to_vec())
    }
}

/// One CA, usable for signing.
pub struct Ca {
    pub cert_pem: String,
    pub der: CertificateDer<'static>,
    key: KeyPair,
    /// Parsed once (sessions compare it every second).
    subject: String,
}

impl Ca {
    fn new(cert_pem: String, key: KeyPair) -> anyhow::Result<Ca> {
        let der = pem_to_der(&cert_pem)?;
        let subject = x509_parser::parse_x509_certificate(&der)
            .map(|(_, c)| c.subject().to_string())
            .map_err(|e| anyhow::anyhow!("CA certificate: {e}"))?;
        Ok(Ca {
            cert_pem,
            der,
            key,
            subject,
        })
    }

    /// The CA's subject (what node certificates it signed carry as issuer).
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// The fleet's CAs: `cas[0]` signs node certificates, every one is trusted, and the last
/// (the oldest during a rotation) signs hubs' server certificates, so that edges that do
/// not know the new CA yet still reach a hub and learn it.
pub struct Pki {
    pub cas: Vec<Ca>,
}

fn odt(secs: i64) -> anyhow::Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(secs).context("certificate time out of range")
}

fn random_serial() -> anyhow::Result<SerialNumber> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| anyhow::anyhow!("no randomness"))?;
    b[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&b))
}

fn pem_to_der(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("CA certificate PEM: {e}"))?;
    Ok(CertificateDer::from(p.contents))
}

/// Make a new CA (10 years).
pub fn new_ca() -> anyhow::Result<(String, KeyPair)> {
    let key = KeyPair::generate().context("generating the CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        // Unique per CA (two CAs made within a second must still differ: node certificates
        // are told apart by their issuer during a rotation).
        format!(
            "barge fleet CA {} {}",
            barge_util::time::rfc3339_secs(now_secs()),
            crate::tokens::random_alnum(8)?
        ),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = odt(now_secs() - 3600)?;
    params.not_after = odt(now_secs() + 10 * 365 * 86400)?;
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key).context("self-signing the CA")?;
    Ok((cert.pem(), key))
}

impl Pki {
    /// Load the fleet CA from `pki/ca`, or make it if there is none (race-free: a
    /// create-if-absent transaction; the loser loads the winner's).
    pub async fn load_or_create(
        etcd: &Client,
        prefix: &str,
        seal: &SealKey,
    ) -> anyhow::Result<Pki> {
        let key = format!("{prefix}pki/ca");
        if let Some((rec, _)) = crate::store::get_json::<CaRecord>(etcd, &key).await? {
            return Pki::from_record(&rec, seal);
        }
        let (cert_pem, ca_key) = new_ca()?;
        let rec = CaRecord {
            cas: vec![CaEntry {
                cert_pem,
                sealed_key: seal.seal(ca_key.serialize_pem().as_bytes())?,
            }],
        };
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), crate::store::to_json(&rec)?, None)]);
        let mut c = etcd.clone();
        let resp = c.txn(txn).await.context("etcd: storing the fleet CA")?;
        if resp.succeeded() {
            tracing::info!("made the fleet CA (stored sealed at {key})");
            return Pki::from_record(&rec, seal);
        }
        let (rec, _) = crate::store::get_json::<CaRecord>(etcd, &key)
            .await?
            .context("fleet CA vanished right after another hub stored it")?;
        Pki::from_record(&rec, seal)
    }

    /// Open a stored record.
    pub fn from_record(rec: &CaRecord, seal: &SealKey) -> anyhow::Result<Pki> {
        let mut cas = Vec::new();
        for e in &rec.cas {
            let pem = seal.open(&e.sealed_key)?;
            let pem = String::from_utf8(pem).context("sealed CA key is not PEM")?;
            let key = KeyPair::from_pem(&pem).context("sealed CA key")?;
            cas.push(Ca::new(e.cert_pem.clone(), key)?);
        }
        if cas.is_empty() {
            anyhow::bail!("the fleet CA record in etcd lists no CA");
        }
        Ok(Pki { cas })
    }

    /// Every CA certificate, PEM, concatenated (what edges trust).
    pub fn bundle_pem(&self) -> String {
        self.cas.iter().map(|c| c.cert_pem.as_str()).collect()
    }

    /// SHA-256 of the DER of the CA that signs hubs' server certificates (join tokens pin
    /// it: the edge checks the hub's chain against it).
    pub fn ca_hash(&self) -> String {
        sha256_hex(&self.server_ca().der)
    }

    fn server_ca(&self) -> &Ca {
        &self.cas[self.cas.len() - 1]
    }

    /// Whether `hash` pins one of the fleet's CAs.
    pub fn pins(&self, hash: &str) -> bool {
        self.cas.iter().any(|c| sha256_hex(&c.der) == hash)
    }

    fn issuer(&self) -> anyhow::Result<Issuer<'static, &KeyPair>> {
        issuer_of(&self.cas[0])
    }

    /// Sign a node certificate from `csr_pem`; the CSR's CN must be `node:<name>`.
    /// Returns the certificate PEM and its expiry (unix seconds).
    pub fn sign_node(
        &self,
        csr_pem: &str,
        name: &str,
        ttl: Duration,
    ) -> crate::Result<(String, i64)> {
        let bad = |m: String| crate::Error::BadRequest(m);
        // rcgen checks the CSR's signature (proof of the key) while parsing it.
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| bad(format!("CSR: {e}")))?;
        let cn = csr_common_name(csr_pem).map_err(|e| bad(format!("CSR: {e}")))?;
        if cn != format!("node:{name}") {
            return Err(bad(format!(
                "CSR common name is {cn:?}, expected \"node:{name}\""
            )));
        }
        let now = now_secs();
        let not_after = now + ttl.as_secs() as i64;
        let internal = |e: anyhow::Error| crate::Error::Internal(format!("signing: {e}"));
        let p = &mut csr.params;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, format!("node:{name}"));
        p.subject_alt_names.clear();
        p.custom_extensions.clear();
        p.is_ca = IsCa::NoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = odt(now - 300).map_err(internal)?;
        p.not_after = odt(not_after).map_err(internal)?;
        p.serial_number = Some(random_serial().map_err(internal)?);
        p.use_authority_key_identifier_extension = true;
        let issuer = self.issuer().map_err(internal)?;
        let cert = csr
            .signed_by(&issuer)
            .map_err(|e| crate::Error::Internal(format!("signing node {name}: {e}")))?;
        Ok((cert.pem(), not_after))
    }

    /// This hub's TLS server certificate (made per process), for `hosts` (names or IPs).
    pub fn server_cert(
        &self,
        hosts: &[String],
    ) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let key = KeyPair::generate().context("generating the hub's key")?;
        let mut params = CertificateParams::new(hosts.to_vec())
            .with_context(|| format!("hub certificate names {hosts:?}"))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "barge hub");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = odt(now_secs() - 300)?;
        params.not_after = odt(now_secs() + 365 * 86400)?;
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &issuer_of(self.server_ca())?)
            .context("signing the hub certificate")?;
        let key_der = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| anyhow::anyhow!("hub key: {e}"))?;
        Ok((
            vec![cert.der().clone(), self.server_ca().der.clone()],
            key_der,
        ))
    }

    /// The edge port's TLS config: TLS 1.3, ALPN `barge-edge/1`, client certificates
    /// optional and checked against every fleet CA (expired ones accepted within `grace`).
    pub fn server_config(
        &self,
        hosts: &[String],
        grace: Duration,
    ) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in &self.cas {
            roots
                .add(ca.der.clone())
                .context("adding the fleet CA to the trust store")?;
        }
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .context("building the client certificate verifier")?;
        let verifier = Arc::new(GraceVerifier { inner, grace });
        let (chain, key) = self.server_cert(hosts)?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3 with aws-lc-rs")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .context("hub certificate")?;
        cfg.alpn_protocols = vec![barge_edge_proto::ALPN.to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// The role an admin client certificate's common name carries: `admin:<name>`.
pub const ADMIN_CN_PREFIX: &str = "admin:";

impl Pki {
    /// Sign an admin client certificate from `csr_pem` (CN `admin:<name>`, client auth, `ttl`).
    /// Returns the certificate PEM and its expiry (unix seconds).
    pub fn sign_admin(
        &self,
        csr_pem: &str,
        name: &str,
        ttl: Duration,
    ) -> crate::Result<(String, i64)> {
        let bad = |m: String| crate::Error::BadRequest(m);
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| bad(format!("CSR: {e}")))?;
        let cn = csr_common_name(csr_pem).map_err(|e| bad(format!("CSR: {e}")))?;
        let want = format!("{ADMIN_CN_PREFIX}{name}");
        if cn != want {
            return Err(bad(format!("CSR common name is {cn:?}, expected {want:?}")));
        }
        let now = now_secs();
        let not_after = now + ttl.as_secs() as i64;
        let internal = |e: anyhow::Error| crate::Error::Internal(format!("signing: {e}"));
        let p = &mut csr.params;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, want);
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, "barge fleet admin");
        p.subject_alt_names.clear();
        p.custom_extensions.clear();
        p.is_ca = IsCa::NoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = odt(now - 300).map_err(internal)?;
        p.not_after = odt(not_after).map_err(internal)?;
        p.serial_number = Some(random_serial().map_err(internal)?);
        p.use_authority_key_identifier_extension = true;
        let issuer = self.issuer().map_err(internal)?;
        let cert = csr
            .signed_by(&issuer)
            .map_err(|e| crate::Error::Internal(format!("signing admin {name}: {e}")))?;
        Ok((cert.pem(), not_after))
    }

    /// The fleet API's TLS config: TLS 1.3 and 1.2 (browsers, curl), ALPN `http/1.1`, this
    /// hub's server certificate for `hosts`. A client certificate is asked for (the fleet CAs
    /// as hints) but not required, and the handshake only checks that the client holds its
    /// key: the API judges the certificate itself ([`Pki::check_client`]) so that a bad one
    /// gets a clear 401 instead of a TLS alert.
    pub fn api_server_config(&self, hosts: &[String]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let hints = self
            .cas
            .iter()
            .filter_map(|ca| {
                x509_parser::parse_x509_certificate(&ca.der)
                    .ok()
                    .map(|(_, c)| DistinguishedName::from(c.subject().as_raw().to_vec()))
            })
            .collect();
        let verifier = Arc::new(ProofOfKeyVerifier {
            provider: provider.clone(),
            hints,
        });
        let (chain, key) = self.server_cert(hosts)?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("TLS 1.3/1.2 with aws-lc-rs")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .context("hub API certificate")?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Judge a client certificate chain (leaf first) presented to the fleet API: it must
    /// chain to one of the fleet's CAs, be within its validity and allow client auth.
    pub fn check_client(&self, chain: &[CertificateDer<'static>]) -> Result<PeerCert, String> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err("no client certificate".into());
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in &self.cas {
            roots
                .add(ca.der.clone())
                .map_err(|e| format!("fleet CA: {e}"))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("client certificate verifier: {e}"))?;
        verifier
            .verify_client_cert(leaf, rest, UnixTime::now())
            .map_err(|e| match e {
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => "the client certificate has expired".to_string(),
                rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                ) => "the client certificate is not signed by the fleet's CA".to_string(),
                other => format!("the client certificate is not valid: {other}"),
            })?;
        PeerCert::parse(leaf).map_err(|e| format!("{e:#}"))
    }
}

/// The API's client certificate check at handshake time: only the proof of the key (the
/// handshake signature); the chain is judged per connection by [`Pki::check_client`].
#[derive(Debug)]
struct ProofOfKeyVerifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    hints: Vec<DistinguishedName>,
}

impl ClientCertVerifier for ProofOfKeyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What `GET /api/v1/ca` shows of one CA.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaInfo {
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    /// SHA-256 of the DER.
    pub sha256: String,
    /// Signs new node and admin certificates (the newest).
    pub signs_certificates: bool,
    /// Signs hubs' server certificates (the oldest during a rotation).
    pub signs_servers: bool,
}

impl Pki {
    /// Every CA, newest first.
    pub fn info(&self) -> Vec<CaInfo> {
        let n = self.cas.len();
        self.cas
            .iter()
            .enumerate()
            .map(|(i, ca)| {
                let (nb, na) = x509_parser::parse_x509_certificate(&ca.der)
                    .map(|(_, c)| {
                        (
                            c.validity().not_before.timestamp(),
                            c.validity().not_after.timestamp(),
                        )
                    })
                    .unwrap_or((0, 0));
                CaInfo {
                    subject: ca.subject().to_string(),
                    not_before: barge_util::time::rfc3339_secs(nb),
                    not_after: barge_util::time::rfc3339_secs(na),
                    sha256: sha256_hex(&ca.der),
                    signs_certificates: i == 0,
                    signs_servers: i == n - 1,
                }
            })
            .collect()
    }
}

fn issuer_of(ca: &Ca) -> anyhow::Result<Issuer<'static, &KeyPair>> {
    Issuer::from_ca_cert_der(&ca.der, &ca.key).context("reading the CA certificate")
}

/// CA rotation, step 1: a new CA signs node certificates from now on (`cas[0]`); the old
/// one stays trusted and keeps signing hubs' server certificates, so connected and
/// reconnecting edges get the two-CA bundle in `Welcome` and renew (`Welcome.renew`) without
/// a new join. Every hub picks the change up through its watch of `pki/ca`.
pub async fn rotate(etcd: &Client, prefix: &str, seal: &SealKey) -> anyhow::Result<()> {
    let key = format!("{prefix}pki/ca");
    let (mut rec, rev) = crate::store::get_json::<CaRecord>(etcd, &key)
        .await?
        .context("no fleet CA to rotate")?;
    if rec.cas.len() > 1 {
        anyhow::bail!("a CA rotation is already in progress (retire the old CA first)");
    }
    let (cert_pem, ca_key) = new_ca()?;
    rec.cas.insert(
        0,
        CaEntry {
            cert_pem,
            sealed_key: seal.seal(ca_key.serialize_pem().as_bytes())?,
        },
    );
    store_record(etcd, &key, rev, &rec).await
}

/// CA rotation, step 2 (once the edges renewed): drop every CA but the current one; hubs
/// then serve certificates signed by it.
pub async fn retire_old(etcd: &Client, prefix: &str) -> anyhow::Result<()> {
    let key = format!("{prefix}pki/ca");
    let (mut rec, rev) = crate::store::get_json::<CaRecord>(etcd, &key)
        .await?
        .context("no fleet CA")?;
    rec.cas.truncate(1);
    store_record(etcd, &key, rev, &rec).await
}

async fn store_record(etcd: &Client, key: &str, rev: i64, rec: &CaRecord) -> anyhow::Result<()> {
    let txn = Txn::new()
        .when([Compare::mod_revision(key, CompareOp::Equal, rev)])
        .and_then([TxnOp::put(key, crate::store::to_json(rec)?, None)]);
    let mut c = etcd.clone();
    if !c
        .txn(txn)
        .await
        .context("etcd: storing the fleet CA")?
        .succeeded()
    {
        anyhow::bail!("the fleet CA changed meanwhile; retry");
    }
    Ok(())
}

/// The common name of a CSR's subject.
pub fn csr_common_name(csr_pem: &str) -> anyhow::Result<String> {
    use x509_parser::prelude::FromDer as _;
    let (_, p) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("not PEM: {e}"))?;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&p.contents)
            .map_err(|e| anyhow::anyhow!("not a certificate request: {e}"))?;
    let cn = csr
        .certification_request_info
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| anyhow::anyhow!("no common name"))?;
    Ok(cn.to_string())
}

/// What a (verified) client certificate says: its CN and expiry (unix seconds).
#[derive(Debug, Clone)]
pub struct PeerCert {
    pub common_name: String,
    pub not_after: i64,
    /// The issuer's distinguished name.
    pub issuer: String,
}

impl PeerCert {
    pub fn parse(der: &[u8]) -> anyhow::Result<PeerCert> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| anyhow::anyhow!("client certificate: {e}"))?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or_else(|| anyhow::anyhow!("client certificate has no common name"))?
            .to_string();
        Ok(PeerCert {
            common_name,
            not_after: cert.validity().not_after.timestamp(),
            issuer: cert.issuer().to_string(),
        })
    }

    /// The node name (`node:<name>` CN).
    pub fn node(&self) -> Option<&str> {
        self.common_name.strip_prefix("node:")
    }

    pub fn expired(&self) -> bool {
        now_secs() > self.not_after
    }
}

/// WebPKI client verification, except that a certificate expired less than `grace` ago
/// passes (checked as of its last valid second); sessions then refuse everything but a
/// Renew with it.
#[derive(Debug)]
struct GraceVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    grace: Duration,
}

impl ClientCertVerifier for GraceVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            )) => {
                let Ok(peer) = PeerCert::parse(end_entity) else {
                    return Err(rustls::Error::InvalidCertificate(
                        CertificateError::BadEncoding,
                    ));
                };
                let expired_for = now.as_secs() as i64 - peer.not_after;
                if expired_for < 0 || expired_for as u64 > self.grace.as_secs() {
                    return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
                }
                let then = UnixTime::since_unix_epoch(Duration::from_secs(
                    (peer.not_after - 1).max(0) as u64,
                ));
                self.inner
                    .verify_client_cert(end_entity, intermediates, then)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_wrong_key() {
        let k = SealKey([7; 32]);
        let s = k.seal(b"secret").unwrap();
        assert_eq!(k.open(&s).unwrap(), b"secret");
        assert!(SealKey([8; 32]).open(&s).is_err());
    }

    #[test]
    fn signs_csr_with_matching_cn_only() {
        let (pem, key) = new_ca().unwrap();
        let pki = Pki {
            cas: vec![Ca::new(pem, key).unwrap()],
        };
        let nk = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "node:a1");
        let csr = p.serialize_request(&nk).unwrap().pem().unwrap();
        let (cert, _) = pki.sign_node(&csr, "a1", Duration::from_secs(60)).unwrap();
        let der = pem_to_der(&cert).unwrap();
        assert_eq!(PeerCert::parse(&der).unwrap().node(), Some("a1"));
        assert!(matches!(
            pki.sign_node(&csr, "b2", Duration::from_secs(60)),
            Err(crate::Error::BadRequest(_))
        ));
    }
}
