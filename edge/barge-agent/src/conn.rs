//! One TLS connection to a hub and its framing (u32 big-endian length + JSON).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use barge_edge_proto::wire::{self, EdgeMsg, HubMsg};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long a TCP connect plus TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connect to `addr` (`host:port`, or `https://host:port`) with `cfg`.
pub async fn connect(addr: &str, cfg: ClientConfig) -> Result<TlsStream<TcpStream>> {
    let addr = strip_scheme(addr);
    let name = crate::tls::server_name(addr)?;
    let fut = async {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to hub {addr}"))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with hub {addr}"))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("connect to hub {addr}: timed out"))?
}

/// `https://host:port/` -> `host:port`.
pub fn strip_scheme(addr: &str) -> &str {
    let a = addr.strip_prefix("https://").unwrap_or(addr);
    a.trim_end_matches('/')
}

/// Send one message.
pub async fn send<W: AsyncWrite + Unpin>(w: &mut W, msg: &EdgeMsg) -> Result<()> {
    let frame = wire::encode(msg).context("encode a message to the hub")?;
    w.write_all(&frame).await.context("send to the hub")?;
    w.flush().await.context("send to the hub")?;
    Ok(())
}

/// Read one message; `None` at a clean end of stream.
pub async fn recv<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<HubMsg>> {
    let mut head = [0u8; 4];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e).context("read from the hub"),
    }
    let n = wire::frame_len(head).context("frame from the hub")?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)
        .await
        .context("read from the hub (frame cut short)")?;
    Ok(Some(wire::decode(&body).context("message from the hub")?))
}

/// Read one message; an end of stream is an error.
pub async fn recv_some<R: AsyncRead + Unpin>(r: &mut R) -> Result<HubMsg> {
    match recv(r).await? {
        Some(m) => Ok(m),
        None => bail!("the hub closed the connection"),
    }
}

/// A hub's `Error` frame as an error (code and message).
pub fn hub_error(code: &str, message: &str) -> anyhow::Error {
    anyhow!("the hub refused: {code}: {message}")
}
