//! Forwarding a tunnel to the hub that holds the node's session, through that hub's fleet
//! API (the same endpoints `barge fleet logs/exec` use), with the caller's bearer token:
//! logs as a chunked GET, exec and connect (ServiceBus) as an `Upgrade: barge-stream` GET
//! whose frames are `[u8 fd][u32 BE len][bytes]` (fd 0 stdin, 1/2 output, 3 the end as JSON).

use axum::body::Body;
use futures_util::StreamExt as _;
use hyper::header;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{TunnelOutput, TunnelRequest, TunnelStream};

/// Percent-encode a query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The API path (with query) of `req` on `node`.
fn path(node: &str, req: &TunnelRequest) -> String {
    match req {
        TunnelRequest::Logs {
            namespace,
            pod,
            container,
            follow,
            tail,
            timestamps,
        } => {
            let mut q = format!(
                "container={}&follow={follow}&timestamps={timestamps}",
                enc(container)
            );
            if let Some(t) = tail {
                q.push_str(&format!("&tailLines={t}"));
            }
            format!(
                "/api/v1/nodes/{}/pods/{}/{}/log?{q}",
                enc(node),
                enc(namespace),
                enc(pod)
            )
        }
        TunnelRequest::Exec {
            namespace,
            pod,
            container,
            cmd,
            stdin,
            tty,
        } => {
            let mut q = format!("container={}&stdin={stdin}&tty={tty}", enc(container));
            for c in cmd {
                q.push_str(&format!("&command={}", enc(c)));
            }
            format!(
                "/api/v1/nodes/{}/pods/{}/{}/exec?{q}",
                enc(node),
                enc(namespace),
                enc(pod)
            )
        }
        TunnelRequest::Connect { target } => {
            let q = match target {
                barge_edge_proto::wire::ConnectTarget::Host { port } => format!("port={port}"),
                barge_edge_proto::wire::ConnectTarget::Pod {
                    namespace,
                    pod,
                    port,
                } => format!("port={port}&namespace={}&pod={}", enc(namespace), enc(pod)),
            };
            format!("/api/v1/nodes/{}/connect?{q}", enc(node))
        }
    }
}

/// Open `req` on `node` through the API at `api_url` (`https://host:port`, trusting the
/// fleet CAs `roots` (PEM), or `http://host:port`).
pub async fn open(
    api_url: &str,
    roots: Option<&[String]>,
    bearer: &str,
    node: &str,
    req: TunnelRequest,
) -> crate::Result<TunnelStream> {
    let unavailable =
        |e: String| crate::Error::Unavailable(format!("forwarding to {api_url}: {e}"));
    let (authority, tls) = match (
        api_url.strip_prefix("https://"),
        api_url.strip_prefix("http://"),
    ) {
        (Some(a), _) => (a, true),
        (None, Some(a)) => (a, false),
        _ => return Err(unavailable("not an http(s):// URL".into())),
    };
    let authority = authority.trim_end_matches('/').to_string();
    let tcp = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let io: Box<dyn Io> = if tls {
        let cfg = client_config(roots.unwrap_or_default()).map_err(unavailable)?;
        let host = authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&authority)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| unavailable(format!("server name: {e}")))?;
        let s = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| unavailable(format!("TLS: {e}")))?;
        Box::new(s)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    // Exec and Connect are upgraded byte streams; Logs is a chunked GET.
    let exec = matches!(
        req,
        TunnelRequest::Exec { .. } | TunnelRequest::Connect { .. }
    );
    let mut b = hyper::Request::builder()
        .method("GET")
        .uri(path(node, &req))
        .header(header::HOST, authority.as_str())
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"));
    if exec {
        b = b
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "barge-stream");
    }
    let http_req = b
        .body(Body::empty())
        .map_err(|e| crate::Error::Internal(format!("forward request: {e}")))?;
    let resp = sender
        .send_request(http_req)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let status = resp.status();
    let ok = if exec {
        status == hyper::StatusCode::SWITCHING_PROTOCOLS
    } else {
        status.is_success()
    };
    if !ok {
        let body = Body::new(resp.into_body());
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        return Err(match status.as_u16() {
            404 => crate::Error::NotFound(msg),
            400 => crate::Error::BadRequest(msg),
            403 | 401 => crate::Error::Forbidden(msg),
            _ => crate::Error::Unavailable(format!("hub at {api_url}: {msg}")),
        });
    }
    let (out_tx, out_rx) = mpsc::channel(64);
    let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
    if exec {
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        tokio::spawn(pump_exec(TokioIo::new(upgraded), in_rx, out_tx));
    } else {
        let mut body = Body::new(resp.into_body()).into_data_stream();
        tokio::spawn(async move {
            let _keep_input_open = in_rx;
            let end = loop {
                tokio::select! {
                    chunk = body.next() => match chunk {
                        Some(Ok(data)) => {
                            if out_tx.send(TunnelOutput::Data { fd: 1, data: data.to_vec() }).await.is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => break Some(e.to_string()),
                        None => break None,
                    },
                    _ = out_tx.closed() => return,
                }
            };
            let _ = out_tx
                .send(TunnelOutput::End {
                    exit_code: None,
                    error: end,
                })
                .await;
        });
    }
    Ok(TunnelStream {
        input: in_tx,
        output: out_rx,
    })
}

/// A byte stream to another hub (TCP or TLS).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A TLS client trusting exactly the fleet CAs (PEM).
fn client_config(roots: &[String]) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for p in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
            let p = p.map_err(|e| format!("fleet CA PEM: {e}"))?;
            store
                .add(rustls::pki_types::CertificateDer::from(p.contents))
                .map_err(|e| format!("fleet CA: {e}"))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(cfg))
}

/// Move exec frames between the remote hub and the stream's channels.
async fn pump_exec<S>(io: S, mut input: mpsc::Receiver<Vec<u8>>, output: mpsc::Sender<TunnelOutput>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let writer = tokio::spawn(async move {
        while let Some(data) = input.recv().await {
            let mut f = vec![0u8];
            f.extend_from_slice(&(data.len() as u32).to_be_bytes());
            f.extend_from_slice(&data);
            if wr.write_all(&f).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
        // stdin dropped: close it on the other side.
        let _ = wr.write_all(&[0, 0, 0, 0, 0]).await;
        let _ = wr.flush().await;
        std::future::pending::<()>().await;
    });
    let end = loop {
        let mut hdr = [0u8; 5];
        if rd.read_exact(&mut hdr).await.is_err() {
            break TunnelOutput::End {
                exit_code: None,
                error: Some("the forwarding hub closed the stream".into()),
            };
        }
        let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
        if len > barge_edge_proto::wire::MAX_FRAME {
            break TunnelOutput::End {
                exit_code: None,
                error: Some(format!("forwarded frame of {len} bytes is too large")),
            };
        }
        let mut buf = vec![0u8; len];
        if rd.read_exact(&mut buf).await.is_err() {
            break TunnelOutput::End {
                exit_code: None,
                error: Some("the forwarding hub closed the stream".into()),
            };
        }
        if hdr[0] == 3 {
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_default();
            break TunnelOutput::End {
                exit_code: v.get("exitCode").and_then(|c| c.as_i64()).map(|c| c as i32),
                error: v.get("error").and_then(|e| e.as_str()).map(String::from),
            };
        }
        tokio::select! {
            r = output.send(TunnelOutput::Data { fd: hdr[0], data: buf }) => if r.is_err() { writer.abort(); return },
        }
    };
    let _ = output.send(end).await;
    writer.abort();
}
