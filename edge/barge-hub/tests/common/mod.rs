//! Test harness: a real etcd per test (free loopback ports, temp data dir, killed on drop),
//! a hub started in-process against it, and a minimal edge client speaking the proto over
//! tokio-rustls.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barge_edge_proto::keys::CaRecord;
use barge_edge_proto::object::NodeInfo;
use barge_edge_proto::wire::{decode, encode, frame_len, EdgeMsg, HubMsg};
use barge_hub::config::Config;
use barge_hub::run::Started;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

/// A free loopback TCP port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running etcd, killed (and its data dir removed) on drop.
pub struct Etcd {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Etcd {
    pub async fn start() -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (cp, pp) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{cp}");
        let peer = format!("http://127.0.0.1:{pp}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let child = Command::new("etcd")
            .arg("--name=t")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd (Debian etcd-server) must be installed");
        let etcd = Etcd { child, url, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = etcd_client::Client::connect([&etcd.url], None).await {
                if c.status().await.is_ok() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not come up at {}",
                etcd.url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        etcd
    }

    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([&self.url], None)
            .await
            .unwrap()
    }
}

pub const PREFIX: &str = "/t/";

/// Hub flags for a test.
pub fn config(etcd: &Etcd, state: &std::path::Path) -> Config {
    Config {
        etcd: vec![etcd.url.clone()],
        etcd_prefix: PREFIX.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        api: "127.0.0.1:0".parse().unwrap(),
        api_sans: Vec::new(),
        // These tests talk plain HTTP to the API; `api_tls.rs` covers https.
        api_insecure_http: true,
        admin_cert_ttl_secs: 3600,
        state_dir: state.to_path_buf(),
        key_file: None,
        node_grace_secs: 40,
        heartbeat_secs: 10,
        cert_ttl_secs: 3600,
        renew_grace_secs: 3600,
        token_ttl_secs: 3600,
    }
}

pub struct TestHub {
    pub started: Started,
    pub state: tempfile::TempDir,
}

pub async fn hub(etcd: &Etcd, tweak: impl FnOnce(&mut Config)) -> TestHub {
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(etcd, state.path());
    tweak(&mut cfg);
    let started = barge_hub::run::start(cfg).await.unwrap();
    TestHub { started, state }
}

impl TestHub {
    pub fn addr(&self) -> SocketAddr {
        self.started.edge_addr
    }

    pub fn ca_pem(&self) -> String {
        self.started.hub.pki().bundle_pem()
    }

    pub async fn token(&self, ttl: Duration) -> String {
        barge_hub::tokens::create(&self.started.hub, ttl, false)
            .await
            .unwrap()
    }
}

/// The CA bundle as stored in etcd (what an edge would pin).
pub async fn ca_from_etcd(etcd: &Etcd) -> String {
    let mut c = etcd.client().await;
    let r = c.get(format!("{PREFIX}pki/ca"), None).await.unwrap();
    let rec: CaRecord = serde_json::from_slice(r.kvs()[0].value()).unwrap();
    rec.cas.iter().map(|c| c.cert_pem.clone()).collect()
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    for p in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        out.push(CertificateDer::from(p.unwrap().contents));
    }
    out
}

/// A node's identity on the test side: its key (never sent) and, once joined, its cert.
pub struct NodeId {
    pub name: String,
    pub key: rcgen::KeyPair,
    pub cert_pem: Option<String>,
}

impl NodeId {
    pub fn new(name: &str) -> NodeId {
        NodeId {
            name: name.into(),
            key: rcgen::KeyPair::generate().unwrap(),
            cert_pem: None,
        }
    }

    /// A CSR for `cn` signed by this node's key.
    pub fn csr(&self, cn: &str) -> String {
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.serialize_request(&self.key).unwrap().pem().unwrap()
    }
}

/// An edge connection.
pub struct Edge {
    tls: TlsStream<tokio::net::TcpStream>,
}

impl Edge {
    /// Connect, trusting `ca_pem`, presenting `node`'s certificate when it has one.
    pub async fn connect(addr: SocketAddr, ca_pem: &str, node: Option<&NodeId>) -> Edge {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(ca_pem) {
            roots.add(c).unwrap();
        }
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match node.and_then(|n| n.cert_pem.as_ref().map(|c| (n, c))) {
            Some((n, cert)) => b
                .with_client_auth_cert(
                    certs(cert),
                    PrivateKeyDer::try_from(n.key.serialize_der()).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![barge_edge_proto::ALPN.to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        Edge { tls }
    }

    pub async fn send(&mut self, msg: &EdgeMsg) {
        self.tls.write_all(&encode(msg).unwrap()).await.unwrap();
        self.tls.flush().await.unwrap();
    }

    /// The next message (None at end of stream); panics after 20 s.
    pub async fn recv(&mut self) -> Option<HubMsg> {
        tokio::time::timeout(Duration::from_secs(20), async {
            let mut h = [0u8; 4];
            if self.tls.read_exact(&mut h).await.is_err() {
                return None;
            }
            let mut body = vec![0u8; frame_len(h).unwrap()];
            self.tls.read_exact(&mut body).await.ok()?;
            Some(decode(&body).unwrap())
        })
        .await
        .expect("no message from the hub within 20 s")
    }

    /// The next message that is not a Ping/Pong.
    pub async fn recv_msg(&mut self) -> HubMsg {
        loop {
            match self.recv().await {
                Some(HubMsg::Ping) => self.send(&EdgeMsg::Pong).await,
                Some(HubMsg::Pong) => {}
                Some(m) => return m,
                None => panic!("hub closed the connection"),
            }
        }
    }
}

pub fn info() -> NodeInfo {
    NodeInfo {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    }
}

/// Join `node` with `token`; returns the hub's answer (cert stored on `node` when Joined).
pub async fn join(h: &TestHub, node: &mut NodeId, token: &str, labels: &[(&str, &str)]) -> HubMsg {
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), None).await;
    e.send(&EdgeMsg::Join {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        token: token.into(),
        name: node.name.clone(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        csr_pem: node.csr(&format!("node:{}", node.name)),
        info: info(),
    })
    .await;
    let m = e.recv().await.expect("an answer to join");
    if let HubMsg::Joined { cert_pem, .. } = &m {
        node.cert_pem = Some(cert_pem.clone());
    }
    m
}

/// Put a JSON object straight into etcd under the fleet prefix; returns its revision.
pub async fn put_object(
    etcd: &Etcd,
    plural: &str,
    ns: &str,
    name: &str,
    v: serde_json::Value,
) -> i64 {
    let mut c = etcd.client().await;
    let r = c
        .put(
            format!("{PREFIX}objects/{plural}/{ns}/{name}"),
            v.to_string(),
            None,
        )
        .await
        .unwrap();
    r.header().unwrap().revision()
}

/// Wait (bounded) until `f` is true.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn state_dir(h: &TestHub) -> PathBuf {
    h.state.path().to_path_buf()
}

impl Edge {
    /// Read raw bytes (to observe a handshake refused after the client's first flight).
    pub async fn read_raw(&mut self, b: &mut [u8]) -> std::io::Result<()> {
        self.tls.read_exact(b).await.map(|_| ())
    }
}

impl Edge {
    /// This end's address (what the hub logs as the peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.tls.get_ref().0.local_addr().unwrap()
    }
}

/// A `barge-hub` process (killed on drop) with its stderr in a file.
pub struct HubProcess {
    pub child: Child,
    pub log: PathBuf,
    pub edge: SocketAddr,
    pub state: tempfile::TempDir,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HubProcess {
    pub async fn start(etcd: &Etcd) -> HubProcess {
        HubProcess::start_with(etcd, None).await
    }

    /// With another hub's key file (same fleet CA).
    pub async fn start_with(etcd: &Etcd, key_file: Option<&std::path::Path>) -> HubProcess {
        let state = tempfile::tempdir().unwrap();
        let key_arg = key_file
            .map(|k| format!("--key-file={}", k.display()))
            .unwrap_or_else(|| format!("--key-file={}", state.path().join("hub.key").display()));
        let edge: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = state.path().join("hub.log");
        let child = Command::new(env!("CARGO_BIN_EXE_barge-hub"))
            .arg(format!("--etcd={}", etcd.url))
            .arg(format!("--etcd-prefix={PREFIX}"))
            .arg(format!("--listen={edge}"))
            .arg(format!("--api=127.0.0.1:{}", free_port()))
            .arg(format!("--state-dir={}", state.path().display()))
            .arg(key_arg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let p = HubProcess {
            child,
            log,
            edge,
            state,
        };
        p.wait_log("serving edges").await;
        p
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (bounded) for `needle` in the hub's log.
    pub async fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.log_text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "hub log never said {needle:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Store a join token straight in etcd (the `tokens/<id>` contract) for the fleet CA `ca_pem`.
pub async fn put_token(etcd: &Etcd, ca_pem: &str) -> String {
    use barge_edge_proto::token::{sha256_hex, JoinToken};
    let der = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes())
        .unwrap()
        .1
        .contents;
    let t = JoinToken {
        ca_hash: sha256_hex(&der),
        id: "tok001".into(),
        secret: "0123456789abcdefghij".into(),
    };
    let rec = barge_edge_proto::keys::TokenRecord {
        secret_sha256: t.secret_hash(),
        reusable: false,
        expires: "2999-01-01T00:00:00Z".into(),
        created: "2026-01-01T00:00:00Z".into(),
    };
    let mut c = etcd.client().await;
    c.put(
        format!("{PREFIX}tokens/{}", t.id),
        serde_json::to_vec(&rec).unwrap(),
        None,
    )
    .await
    .unwrap();
    t.render()
}
