//! The listeners (`unix:///PATH`, `fd://` for systemd socket activation) and the HTTP
//! service around the routes: version negotiation, docker's response headers, and a panic in
//! one handler answered as a 500 instead of taking the daemon down.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::FutureExt;
use tower::ServiceExt;

use crate::state::AppState;
use crate::version::{self, API_VERSION};

/// Where to listen, parsed from `--host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// The sockets systemd passed (`fd://`).
    Activated,
}

impl Host {
    pub fn parse(s: &str) -> Result<Host, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if !p.starts_with('/') {
                return Err(format!("--host {s:?}: the socket path must be absolute"));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if s == "fd://" {
            return Ok(Host::Activated);
        }
        if s.starts_with("fd://") {
            return Err(format!(
                "--host {s:?}: only fd:// (all sockets systemd passed) is supported"
            ));
        }
        Err(format!(
            "--host {s:?}: use unix:///PATH or fd:// (TCP is not served: the API gives root on this host)"
        ))
    }
}

/// The whole service: routes behind version negotiation and docker's headers.
pub fn app(state: AppState) -> Router {
    let inner = crate::routes::router(state);
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(around))
}

async fn around(req: Request, next: Next) -> Response {
    let mut resp = match version::negotiate(req) {
        Ok(req) => match std::panic::AssertUnwindSafe(next.run(req))
            .catch_unwind()
            .await
        {
            Ok(r) => r,
            Err(p) => {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                tracing::error!("request handler panicked: {what}");
                crate::error::ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal error: request handler panicked: {what}"),
                )
                .into_response()
            }
        },
        Err(r) => *r,
    };
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("barge/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

/// Bind a unix socket at `path`, mode 0660, owned by root and `gid`. A stale socket file (no
/// one accepting) is replaced; a live one is an error (another daemon serves it).
pub fn bind_unix(
    path: &Path,
    gid: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{}: another daemon is listening on this socket",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("remove stale {}: {e}", path.display()))?;
    }
    // Created 0600 by a restrictive umask, then opened to the group: never world-writable,
    // not even for an instant.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let l = bound.map_err(|e| format!("listen on {}: {e}", path.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, Some(0), Some(gid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(l)
}

/// The gid of group `name` from /etc/group; `None` (root's group) when there is no such
/// group, as dockerd does with its default `docker` group.
pub fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        f.next()?;
        f.next()?.parse().ok()
    })
}

/// The listening sockets systemd passed us (for `fd://`).
pub fn activated() -> Result<Vec<std::os::unix::net::UnixListener>, String> {
    let v = crate::sys::listen_fds()?;
    for l in &v {
        l.set_nonblocking(true)
            .map_err(|e| format!("activated socket: {e}"))?;
    }
    Ok(v)
}

/// Serve `app` on every listener until SIGTERM/SIGINT; socket files we created are removed
/// on the way out (containers keep running: their shims own them).
pub async fn serve(
    app: Router,
    listeners: Vec<std::os::unix::net::UnixListener>,
    created: Vec<PathBuf>,
) -> Result<(), String> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for l in listeners {
        let l = tokio::net::UnixListener::from_std(l).map_err(|e| format!("listener: {e}"))?;
        let app = app.clone();
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(accept_loop(l, app, rx)));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = stop_tx.send(true);
    for p in &created {
        let _ = std::fs::remove_file(p);
    }
    // Streams (logs -f, events, attach) would hold a graceful shutdown forever: give them a
    // moment, then go.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
    Ok(())
}

/// Accept connections on `l` until the stop signal; each is served by hyper's HTTP/1 with
/// upgrades (docker's hijacked attach and exec connections), its io the unix stream itself
/// (so a hijacked connection can be watched for a hangup).
async fn accept_loop(
    l: tokio::net::UnixListener,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let conn = tokio::select! {
            c = l.accept() => c,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        let stream = match conn {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let svc = hyper_util::service::TowerToHyperService::new(
            app.clone()
                .map_request(|req: hyper::Request<hyper::body::Incoming>| req.map(Body::new)),
        );
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// An empty-bodied response with a status (docker's 204s and 304s).
pub fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}
