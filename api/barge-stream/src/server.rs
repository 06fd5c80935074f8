//! The HTTP side: `/exec/{token}`, `/attach/{token}`, `/portforward/{token}`; the token is
//! consumed, then the request is upgraded to SPDY/3.1 or WebSocket and the session runs.
//! Nothing starts before both succeed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use barge_engine::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::spdy::session::Want;
use crate::tokens::Tokens;
use crate::{
    exec, portforward, Pending, PortForwardTarget, StreamConfig, StreamError, StreamHandle,
};

pub(crate) struct Shared {
    pub addr: SocketAddr,
    pub base_url: String,
    pub tokens: Tokens,
    pub shutdown: tokio::sync::Notify,
    engine: Arc<Engine>,
    config: StreamConfig,
}

pub(crate) async fn start(
    engine: Arc<Engine>,
    config: StreamConfig,
) -> Result<StreamHandle, StreamError> {
    let bind = |source| StreamError::Bind {
        addr: config.addr,
        source,
    };
    let listener = TcpListener::bind(config.addr).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let base_url = config
        .advertise
        .clone()
        .map(|a| a.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("http://{addr}"));
    let shared = Arc::new(Shared {
        addr,
        base_url,
        tokens: Tokens::new(config.token_ttl, config.max_tokens),
        shutdown: tokio::sync::Notify::new(),
        engine,
        config,
    });
    let s = shared.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                _ = s.shutdown.notified() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!("streaming server: accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let s = s.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let s = s.clone();
                    async move { Ok::<_, Infallible>(handle(s, req)) }
                });
                // A client that never finishes its request head is dropped.
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(30))
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(StreamHandle { inner: shared })
}

fn answer(code: StatusCode, msg: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(msg.into())));
    *r.status_mut() = code;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Every value of header `name`, split at commas and trimmed.
fn list(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

const SPDY_EXEC: &[(&str, u8)] = &[
    ("v4.channel.k8s.io", 4),
    ("v3.channel.k8s.io", 3),
    ("v2.channel.k8s.io", 2),
    ("channel.k8s.io", 1),
];
const SPDY_PORTFORWARD: &[(&str, u8)] = &[("portforward.k8s.io", 1)];

fn handle(s: Arc<Shared>, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (kind, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !matches!(kind, "exec" | "attach" | "portforward") || token.is_empty() {
        return answer(StatusCode::NOT_FOUND, "404 page not found");
    }
    if req.method() != Method::GET && req.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let Some(pending) = s.tokens.consume(token) else {
        return answer(
            StatusCode::NOT_FOUND,
            format!("{kind}: unknown or expired token"),
        );
    };
    let matches = matches!(
        (&pending, kind),
        (Pending::Exec(_), "exec")
            | (Pending::Attach(_), "attach")
            | (Pending::PortForward(_), "portforward")
    );
    if !matches {
        return answer(
            StatusCode::BAD_REQUEST,
            format!("the token is not for {kind}"),
        );
    }
    let portforward = kind == "portforward";
    let h = req.headers();
    let upgrade = h
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let connection_upgrade = list(h, "connection")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade || upgrade.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers in request",
        );
    }
    if upgrade == "websocket" {
        let Some(key) = h
            .get("sec-websocket-key")
            .map(|k| derive_accept_key(k.as_bytes()))
        else {
            return answer(
                StatusCode::BAD_REQUEST,
                "websocket: Sec-WebSocket-Key is missing",
            );
        };
        if h.get("sec-websocket-version").and_then(|v| v.to_str().ok()) != Some("13") {
            return answer(StatusCode::BAD_REQUEST, "websocket: version 13 expected");
        }
        let offered = list(h, "sec-websocket-protocol");
        let Some((name, proto)) = crate::ws::negotiate(&offered, portforward) else {
            return answer(
                StatusCode::FORBIDDEN,
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}"
                ),
            );
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let engine = s.engine.clone();
        tokio::spawn(async move {
            let io = match on_upgrade.await {
                Ok(u) => TokioIo::new(u),
                Err(e) => return tracing::debug!("streaming: upgrade: {e}"),
            };
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            match pending {
                Pending::Exec(r) => {
                    crate::ws::serve_exec(ws, proto, |sess| exec::exec(engine, r, sess)).await
                }
                Pending::Attach(r) => {
                    crate::ws::serve_exec(ws, proto, |sess| exec::attach(engine, r, sess)).await
                }
                Pending::PortForward(r) => {
                    let netns = netns_of(engine, r.target).await;
                    portforward::websocket(ws, proto, netns, r.ports).await
                }
            }
        });
        let mut r = answer(StatusCode::SWITCHING_PROTOCOLS, "");
        let rh = r.headers_mut();
        rh.remove("content-type");
        rh.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        rh.insert(UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&key) {
            rh.insert("sec-websocket-accept", v);
        }
        if !name.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&name) {
                rh.insert("sec-websocket-protocol", v);
            }
        }
        return r;
    }
    if upgrade != "spdy/3.1" {
        return answer(
            StatusCode::BAD_REQUEST,
            format!("unable to upgrade: unsupported protocol {upgrade:?}"),
        );
    }
    let offered = list(h, "x-stream-protocol-version");
    if offered.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: X-Stream-Protocol-Version is required",
        );
    }
    let table = if portforward {
        SPDY_PORTFORWARD
    } else {
        SPDY_EXEC
    };
    let Some((name, version)) = offered
        .iter()
        .find_map(|o| table.iter().find(|(n, _)| n == o).copied())
    else {
        let mut r = answer(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {:?}",
                table.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            ),
        );
        for (n, _) in table {
            r.headers_mut().append(
                "x-supported-stream-protocol-versions",
                HeaderValue::from_static(n),
            );
        }
        return r;
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let engine = s.engine.clone();
    let timeout = s.config.stream_creation_timeout;
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => return tracing::debug!("streaming: upgrade: {e}"),
        };
        match pending {
            Pending::Exec(r) => {
                let want = Want {
                    stdin: r.stdin,
                    stdout: r.stdout,
                    stderr: r.stderr,
                    tty: r.tty,
                };
                crate::spdy::session::serve(io, version, want, timeout, |sess| {
                    exec::exec(engine, r, sess)
                })
                .await
            }
            Pending::Attach(r) => {
                let want = Want {
                    stdin: r.stdin,
                    stdout: r.stdout,
                    stderr: r.stderr,
                    tty: r.tty,
                };
                crate::spdy::session::serve(io, version, want, timeout, |sess| {
                    exec::attach(engine, r, sess)
                })
                .await
            }
            Pending::PortForward(r) => {
                let netns = netns_of(engine, r.target).await;
                portforward::spdy(io, netns).await
            }
        }
    });
    let mut r = answer(StatusCode::SWITCHING_PROTOCOLS, "");
    let rh = r.headers_mut();
    rh.remove("content-type");
    rh.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    rh.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    rh.insert("x-stream-protocol-version", HeaderValue::from_static(name));
    r
}

/// The network namespace file of a port forward's target.
async fn netns_of(engine: Arc<Engine>, t: PortForwardTarget) -> PathBuf {
    match t {
        PortForwardTarget::Netns(p) => p,
        PortForwardTarget::Container(key) => tokio::task::spawn_blocking(move || {
            let id = engine.db.find(&key).map(|r| r.id).unwrap_or(key);
            engine.paths.netns(&id)
        })
        .await
        .unwrap_or_default(),
    }
}
