//! docker's hijacked connections (`attach`, `exec start`): the HTTP request is upgraded
//! (`Upgrade: tcp` → 101) and the raw connection is bridged to the shim's socket: the shim's
//! frames go to the client (stdcopy, or raw with a tty; the shim's EXIT frame ends it), the
//! client's bytes go to the process's stdin (the client's half-close closes that stdin).
//! A client that goes away ends the bridge at once (a hangup is noticed even while the
//! process is silent), so no task or fd outlives its client.

use std::os::fd::AsFd;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{ApiError, ApiResult};
use crate::stdcopy;

/// What to relay.
#[derive(Debug, Clone, Copy)]
pub struct Relay {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Keys on stdin that end the attach (docker's detach keys; with a terminal).
    pub detach: Option<crate::detach::DetachKeys>,
}

/// The connection's content type, as docker names it.
fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Answer 101 and, once the client has the upgraded connection, bridge it to the shim
/// socket `shim` yields (at once, or when the container starts; `None`: close).
pub fn upgrade<F>(req: &mut Request, relay: Relay, shim: F) -> ApiResult<Response>
where
    F: std::future::Future<Output = Option<std::os::unix::net::UnixStream>> + Send + 'static,
{
    upgrade_after(req, relay, Vec::new(), shim)
}

/// [`upgrade`] that first sends `preamble` (what the client gets before the live stream:
/// the log so far for docker's `logs=1`).
pub fn upgrade_after<F>(
    req: &mut Request,
    relay: Relay,
    preamble: Vec<u8>,
    shim: F,
) -> ApiResult<Response>
where
    F: std::future::Future<Output = Option<std::os::unix::net::UnixStream>> + Send + 'static,
{
    let wants_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !wants_upgrade {
        return Err(ApiError::bad_request(
            "this endpoint hijacks the connection: send Connection: Upgrade and Upgrade: tcp",
        ));
    }
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("hijack: upgrade failed: {e}");
                return;
            }
        };
        let parts = match upgraded.downcast::<TokioIo<UnixStream>>() {
            Ok(p) => p,
            Err(_) => {
                eprintln!("barge daemon: hijack: the upgraded connection is not a unix socket");
                return;
            }
        };
        let mut client = parts.io.into_inner();
        if !preamble.is_empty() && client.write_all(&preamble).await.is_err() {
            return;
        }
        // Until the container starts, a client that hangs up ends this.
        let shim = tokio::select! {
            s = shim => s,
            _ = async {
                while !hung_up(&client) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            } => None,
        };
        let Some(shim) = shim else {
            let _ = client.shutdown().await;
            return;
        };
        if let Err(e) = bridge(client, parts.read_buf.to_vec(), shim, relay).await {
            tracing::debug!("hijack: {e}");
        }
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(relay.tty)),
    );
    Ok(r)
}

/// Answer 101 and send `msg` (a line on stdout) instead of a process's output, then close:
/// how dockerd reports an exec whose program could not start.
pub fn upgrade_with_message(req: &mut Request, relay: Relay, msg: String) -> ApiResult<Response> {
    let (a, b) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| ApiError::internal(format!("socket pair: {e}")))?;
    let mut line = msg.into_bytes();
    line.extend_from_slice(b"\r\n");
    // The message framed as the shim frames output, then the end.
    let mut data = stdcopy::frame(stdcopy::STDOUT, &line);
    data.extend_from_slice(&stdcopy::frame(stdcopy::EXIT, b"-1"));
    std::io::Write::write_all(&mut &b, &data)
        .map_err(|e| ApiError::internal(format!("socket pair: {e}")))?;
    drop(b);
    upgrade(req, relay, async move { Some(a) })
}

/// Whether the peer of `s` has hung up completely (POLLHUP; a half-close is not one).
fn hung_up(s: &UnixStream) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => true,
    }
}

async fn bridge(
    client: UnixStream,
    early: Vec<u8>,
    shim: std::os::unix::net::UnixStream,
    relay: Relay,
) -> std::io::Result<()> {
    shim.set_nonblocking(true)?;
    let shim = UnixStream::from_std(shim)?;
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (mut cli_r, mut cli_w) = client.into_split();

    let output = async move {
        let mut h = [0u8; 8];
        let mut buf = Vec::new();
        loop {
            if shim_r.read_exact(&mut h).await.is_err() {
                break;
            }
            let (stream, len) = stdcopy::parse_header(&h);
            buf.resize(len, 0);
            if shim_r.read_exact(&mut buf).await.is_err() {
                break;
            }
            if stream == stdcopy::EXIT {
                break;
            }
            if let Some(out) =
                stdcopy::for_client(stream, &buf, relay.tty, (relay.stdout, relay.stderr))
            {
                if cli_w.write_all(&out).await.is_err() {
                    return;
                }
            }
        }
        let _ = cli_w.shutdown().await;
    };
    let input = async move {
        if relay.stdin {
            if !early.is_empty() && shim_w.write_all(&early).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 32 * 1024];
            let mut detach = relay.detach;
            let mut pass = Vec::new();
            loop {
                match cli_r.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        let data = match detach.as_mut() {
                            Some(d) => {
                                pass.clear();
                                if d.feed(&buf[..n], &mut pass) {
                                    // Detached: what came before the keys, then the end of
                                    // this attach (the container runs on).
                                    let _ = shim_w.write_all(&pass).await;
                                    return;
                                }
                                &pass[..]
                            }
                            None => &buf[..n],
                        };
                        if shim_w.write_all(data).await.is_err() {
                            break;
                        }
                    }
                    Err(_) => return,
                }
            }
            // The client is done with stdin: close the process's.
            let _ = shim_w.shutdown().await;
        } else {
            // Keep the shim's stdin open (nothing is written); watch for the client only.
            let mut sink = [0u8; 4096];
            loop {
                match cli_r.read(&mut sink).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }
        // Half-closed or gone: only a complete hangup ends the bridge from this side.
        loop {
            if hung_up(cli_r.as_ref()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
    Ok(())
}
