//! The CRI streaming server: the URLs `RuntimeService.Exec`, `Attach` and `PortForward`
//! answer with, served as kubelet's own streaming server (and the containerd CRI plugin's)
//! serves them, so `kubectl exec/attach/port-forward` work through the API server and kubelet.
//!
//! The CRI server asks a [`StreamHandle`] for a URL (`/exec/{token}`, `/attach/{token}`,
//! `/portforward/{token}`); the token is single-use and expires after a minute. A client
//! connects and upgrades the request to SPDY/3.1 (`X-Stream-Protocol-Version`
//! `v4.channel.k8s.io`...) or WebSocket (`Sec-WebSocket-Protocol` `v5.channel.k8s.io`...), and
//! the session runs through the engine: an attached exec or an attach relayed by the
//! container's shim (never a fork of this process), or, for port forward, a TCP connection to
//! 127.0.0.1:PORT made inside the sandbox's network namespace.

mod error;
mod exec;
mod netns;
mod portforward;
mod server;
mod session;
mod spdy;
mod status;
mod tokens;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::StreamError;
pub use status::{exit_status, ExitStatus};

/// How the server listens and what it hands out.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Where to listen (containerd's default: loopback, a free port).
    pub addr: SocketAddr,
    /// The base of the URLs handed out (`http://HOST:PORT`), when clients reach the server
    /// at another address than the bound one.
    pub advertise: Option<String>,
    /// How long a URL stays valid (kubelet: 1 minute).
    pub token_ttl: Duration,
    /// At most this many URLs outstanding (kubelet: 1000).
    pub max_tokens: usize,
    /// How long a SPDY client has to open the streams of its session (kubelet: 30 s).
    pub stream_creation_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            token_ttl: Duration::from_secs(60),
            max_tokens: 1000,
            stream_creation_timeout: Duration::from_secs(30),
        }
    }
}

/// An exec session: CRI's `ExecRequest`.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The engine's key of the container (its id or name).
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An attach session: CRI's `AttachRequest`.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The container's `stdin_once`: the end of the client's stdin closes the container's.
    /// Without it the container's stdin stays open for the next attach.
    pub stdin_once: bool,
}

/// Where a port forward connects: the network namespace holding 127.0.0.1:PORT.
#[derive(Debug, Clone)]
pub enum PortForwardTarget {
    /// A pinned network namespace file (a pod sandbox's).
    Netns(PathBuf),
    /// A container's own network namespace (the engine's pin for it).
    Container(String),
}

/// A port forward session: CRI's `PortForwardRequest`.
#[derive(Debug, Clone)]
pub struct PortForwardRequest {
    pub target: PortForwardTarget,
    /// The ports asked for (WebSocket clients get these; SPDY clients name a port per stream).
    pub ports: Vec<u16>,
}

/// What a token stands for.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Exec(ExecRequest),
    Attach(AttachRequest),
    PortForward(PortForwardRequest),
}

/// Starts the server.
pub struct StreamServer;

impl StreamServer {
    /// Bind `config.addr` and serve on the current tokio runtime; the handle the CRI server
    /// asks for URLs.
    pub async fn start(
        engine: Arc<barge_engine::Engine>,
        config: StreamConfig,
    ) -> Result<StreamHandle, StreamError> {
        server::start(engine, config).await
    }
}

/// The running server: hands out URLs.
#[derive(Clone)]
pub struct StreamHandle {
    pub(crate) inner: Arc<server::Shared>,
}

impl StreamHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base of the URLs handed out (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// A URL for an exec session (kubelet's rules: one of stdin, stdout or stderr; not tty
    /// with stderr; a command).
    pub fn exec_url(&self, req: ExecRequest) -> Result<String, StreamError> {
        if req.container_id.is_empty() {
            return Err(StreamError::Invalid("exec: container id is empty".into()));
        }
        if req.cmd.is_empty() {
            return Err(StreamError::Invalid("exec: cmd is empty".into()));
        }
        check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
        self.url("exec", Pending::Exec(req))
    }

    /// A URL for an attach session (the same rules as [`StreamHandle::exec_url`]).
    pub fn attach_url(&self, req: AttachRequest) -> Result<String, StreamError> {
        if req.container_id.is_empty() {
            return Err(StreamError::Invalid("attach: container id is empty".into()));
        }
        check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
        self.url("attach", Pending::Attach(req))
    }

    /// A URL for a port forward session.
    pub fn portforward_url(&self, req: PortForwardRequest) -> Result<String, StreamError> {
        if req.ports.contains(&0) {
            return Err(StreamError::Invalid("port forward: port 0".into()));
        }
        match &req.target {
            PortForwardTarget::Netns(p) if p.as_os_str().is_empty() => {
                return Err(StreamError::Invalid(
                    "port forward: network namespace path is empty".into(),
                ))
            }
            PortForwardTarget::Container(c) if c.is_empty() => {
                return Err(StreamError::Invalid(
                    "port forward: container id is empty".into(),
                ))
            }
            _ => {}
        }
        self.url("portforward", Pending::PortForward(req))
    }

    /// Stop accepting connections (sessions in flight end with their clients).
    pub fn shutdown(&self) {
        self.inner.shutdown.notify_waiters();
        self.inner.shutdown.notify_one();
    }

    fn url(&self, kind: &str, p: Pending) -> Result<String, StreamError> {
        let token = self.inner.tokens.insert(p)?;
        Ok(format!("{}/{kind}/{token}", self.inner.base_url))
    }
}

/// kubelet's checks on the streams of an exec or attach request.
fn check_streams(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> Result<(), StreamError> {
    if tty && stderr {
        return Err(StreamError::Invalid(
            "tty and stderr cannot both be true".into(),
        ));
    }
    if !stdin && !stdout && !stderr {
        return Err(StreamError::Invalid(
            "one of stdin, stdout, or stderr must be set".into(),
        ));
    }
    Ok(())
}
