//! A fake hub for the agent's tests: a CA, a TLS 1.3 listener speaking the edge protocol
//! (Join, Hello -> Welcome, then whatever the test sends), every edge message recorded.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barge_edge_proto::token::sha256_hex;
use barge_edge_proto::wire::{self, EdgeMsg, HubMsg};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub const TOKEN_CRED: &str = "abc123.0123456789abcdefgh";

pub struct Ca {
    pub der: Vec<u8>,
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).unwrap();
        Ca {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A join token pinning this CA.
    pub fn token(&self) -> String {
        format!("K10{}::{TOKEN_CRED}", sha256_hex(&self.der))
    }

    /// Sign a node CSR.
    pub fn sign_csr(&self, csr: &str) -> String {
        let mut p = CertificateSigningRequestParams::from_pem(csr).unwrap();
        p.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.signed_by(&self.issuer).unwrap().pem()
    }

    /// A server certificate for 127.0.0.1 and its key.
    fn server(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "hub");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

type Outbox = Arc<Mutex<Option<mpsc::UnboundedSender<HubMsg>>>>;

/// How the fake hub welcomes edges.
#[derive(Debug, Clone, Default)]
pub struct HubOpts {
    /// `Welcome.renew`.
    pub renew: bool,
    /// PEM appended to the CA bundle in Welcome (a CA rotation's new CA).
    pub extra_ca: String,
}

pub struct FakeHub {
    pub addr: String,
    pub ca: Arc<Ca>,
    rt: Option<tokio::runtime::Runtime>,
    events: Mutex<std::sync::mpsc::Receiver<EdgeMsg>>,
    out: Outbox,
    /// Whether a session (after Welcome) is open.
    pub revision: i64,
}

async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Option<EdgeMsg> {
    let mut h = [0u8; 4];
    r.read_exact(&mut h).await.ok()?;
    let n = wire::frame_len(h).ok()?;
    let mut b = vec![0u8; n];
    r.read_exact(&mut b).await.ok()?;
    wire::decode(&b).ok()
}

async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, m: &HubMsg) -> bool {
    let f = wire::encode(m).unwrap();
    w.write_all(&f).await.is_ok() && w.flush().await.is_ok()
}

impl FakeHub {
    /// A hub with its own CA on a free loopback port.
    pub fn start() -> FakeHub {
        Self::start_with(Arc::new(Ca::new("fake fleet CA")), "127.0.0.1:0")
    }

    /// A hub with `ca` on `bind` (to come back on the same port).
    pub fn start_with(ca: Arc<Ca>, bind: &str) -> FakeHub {
        Self::start_opts(ca, bind, HubOpts::default())
    }

    /// A hub with `ca` on `bind`, welcoming as `opts` says.
    pub fn start_opts(ca: Arc<Ca>, bind: &str, opts: HubOpts) -> FakeHub {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (cert, key) = ca.server();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der.clone())).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert, CertificateDer::from(ca.der.clone())], key)
            .unwrap();
        cfg.alpn_protocols = vec![barge_edge_proto::ALPN.to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = rt.block_on(tokio::net::TcpListener::bind(bind)).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (ev_tx, ev_rx) = std::sync::mpsc::channel();
        let out: Outbox = Arc::new(Mutex::new(None));
        let (ca2, out2, addr2) = (ca.clone(), out.clone(), addr.clone());
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, ca, out, ev_tx, addr, opts) = (
                    acceptor.clone(),
                    ca2.clone(),
                    out2.clone(),
                    ev_tx.clone(),
                    addr2.clone(),
                    opts.clone(),
                );
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let (mut rd, mut wr) = tokio::io::split(tls);
                    let Some(first) = read_frame(&mut rd).await else {
                        return;
                    };
                    if !matches!(first, EdgeMsg::Hello { .. }) {
                        let _ = ev_tx.send(first.clone());
                    }
                    match first.clone() {
                        EdgeMsg::Join { token, csr_pem, .. } => {
                            let reply = if token.ends_with(TOKEN_CRED) {
                                HubMsg::Joined {
                                    cert_pem: ca.sign_csr(&csr_pem),
                                    ca_bundle_pem: ca.pem.clone(),
                                    hubs: vec![addr.clone()],
                                }
                            } else {
                                HubMsg::Error {
                                    code: wire::codes::BAD_TOKEN.into(),
                                    message: "unknown token".into(),
                                }
                            };
                            write_frame(&mut wr, &reply).await;
                        }
                        EdgeMsg::Hello { .. } => {
                            let welcome = HubMsg::Welcome {
                                hub: "fake".into(),
                                revision: 0,
                                hubs: vec![addr.clone()],
                                heartbeat_secs: 1,
                                ca_bundle_pem: format!("{}{}", ca.pem, opts.extra_ca),
                                renew: opts.renew,
                            };
                            if !write_frame(&mut wr, &welcome).await {
                                return;
                            }
                            let (tx, mut rx) = mpsc::unbounded_channel::<HubMsg>();
                            *out.lock().unwrap() = Some(tx.clone());
                            // Recorded once the session can be sent to.
                            let _ = ev_tx.send(first);
                            tokio::spawn(async move {
                                while let Some(m) = rx.recv().await {
                                    if !write_frame(&mut wr, &m).await {
                                        break;
                                    }
                                }
                            });
                            while let Some(m) = read_frame(&mut rd).await {
                                if matches!(m, EdgeMsg::Ping) {
                                    let _ = tx.send(HubMsg::Pong);
                                }
                                if let EdgeMsg::Renew { csr_pem } = &m {
                                    let _ = tx.send(HubMsg::Renewed {
                                        cert_pem: ca.sign_csr(csr_pem),
                                        ca_bundle_pem: format!("{}{}", ca.pem, opts.extra_ca),
                                    });
                                }
                                let _ = ev_tx.send(m);
                            }
                        }
                        _ => {}
                    }
                });
            }
        });
        FakeHub {
            addr,
            ca,
            rt: Some(rt),
            events: Mutex::new(ev_rx),
            out,
            revision: 0,
        }
    }

    /// Send to the current session (panics when there is none).
    pub fn send(&self, m: HubMsg) {
        let g = self.out.lock().unwrap();
        g.as_ref().expect("no edge session").send(m).unwrap();
    }

    /// The first edge message (from now on) for which `f` is true, within `timeout`.
    pub fn wait(&self, timeout: Duration, mut f: impl FnMut(&EdgeMsg) -> bool) -> Option<EdgeMsg> {
        let end = Instant::now() + timeout;
        let rx = self.events.lock().unwrap();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(m) if f(&m) => return Some(m),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The directory with the built binaries (`barge`, `barge-shim`, `barge-edge`).
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_barge-edge"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `barge-edge` against the store at `dir` (root `dir/root`, run root `dir/run`, config
/// `dir/etc`, the layout of barge_testutil's BargeEnv).
pub fn edge_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_barge-edge"));
    c.env("BARGE_ROOT", dir.join("root"))
        .env("BARGE_RUNROOT", dir.join("run"))
        .env("BARGE_CONFIG", dir.join("etc"))
        .args(args);
    c
}

/// A running `barge-edge run`, killed (SIGKILL) and reaped on drop.
pub struct Agent(pub Child);

impl Agent {
    pub fn start(dir: &Path) -> Agent {
        Self::start_args(dir, &["--mqtt", "none"])
    }

    /// `barge-edge run` with fast backoff and `extra` flags; output appended to agent.log.
    pub fn start_args(dir: &Path, extra: &[&str]) -> Agent {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .unwrap();
        let mut args = vec![
            "run",
            "--backoff-base-ms",
            "100",
            "--backoff-max-ms",
            "500",
            "--heartbeat-secs",
            "1",
        ];
        args.extend_from_slice(extra);
        let child = edge_cmd(dir, &args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent(child)
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The agent's log (for assertion messages).
pub fn agent_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
}
