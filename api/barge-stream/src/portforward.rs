//! Port forward sessions: TCP connections to 127.0.0.1:PORT in the sandbox's network
//! namespace ([`crate::netns::connect`]), relayed over SPDY (a data and an error stream per
//! connection, paired by their `requestID` header, the port in their `port` header) or over
//! WebSocket (per port asked for in the request: channel 2i data and 2i+1 error, each
//! starting with the port as two little-endian bytes).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::spdy::conn::{Conn, Event, Writer};
use crate::spdy::frame::header;
use crate::ws::{message, parse, Proto};

/// The client's bytes for one forwarded connection (`None`: its end).
type Upstream = mpsc::Receiver<Option<Bytes>>;

#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    port: Option<String>,
}

/// Serve port forwarding over SPDY on `io` until the client closes it.
pub(crate) async fn spdy<IO>(io: IO, netns: PathBuf)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let mut conn = Conn::start(io);
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut data_in: HashMap<u32, mpsc::Sender<Option<Bytes>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    while let Some(ev) = conn.events.recv().await {
        match ev {
            Event::Open { id, headers, .. } => {
                let ty = header(&headers, "streamtype")
                    .unwrap_or_default()
                    .to_string();
                let request = match header(&headers, "requestid") {
                    Some(r) if !r.is_empty() => r.to_string(),
                    // Older clients: the data stream's id names the pair (the error stream
                    // is opened first, two ids before).
                    _ if ty == "error" => (id + 2).to_string(),
                    _ => id.to_string(),
                };
                let pair = pairs.entry(request.clone()).or_default();
                match ty.as_str() {
                    "error" => pair.error = Some(id),
                    "data" => pair.data = Some(id),
                    other => {
                        tracing::debug!("port forward: stream {id} of unknown type {other:?}");
                        conn.writer
                            .reset(id, crate::spdy::frame::REFUSED_STREAM)
                            .await;
                        continue;
                    }
                }
                if let Some(p) = header(&headers, "port") {
                    pair.port = Some(p.to_string());
                }
                if let (Some(error), Some(data)) = (pair.error, pair.data) {
                    let port = pair.port.clone().unwrap_or_default();
                    pairs.remove(&request);
                    let (tx, rx) = mpsc::channel(16);
                    data_in.insert(data, tx);
                    let w = conn.writer.clone();
                    let ns = netns.clone();
                    tasks.spawn(forward_spdy(w, ns, port, error, data, rx));
                }
            }
            Event::Data { id, data, fin } => {
                if let Some(tx) = data_in.get(&id) {
                    if !data.is_empty() {
                        let _ = tx.send(Some(data)).await;
                    }
                    if fin {
                        let _ = tx.send(None).await;
                        data_in.remove(&id);
                    }
                }
            }
            Event::Reset { id } => {
                if let Some(tx) = data_in.remove(&id) {
                    let _ = tx.send(None).await;
                }
            }
        }
        // Forget the inputs of finished connections.
        data_in.retain(|_, tx| !tx.is_closed());
        while tasks.try_join_next().is_some() {}
    }
    // The client is gone: so are its connections.
    tasks.abort_all();
    conn.finish().await;
}

/// One forwarded connection over SPDY.
async fn forward_spdy(
    w: Writer,
    netns: PathBuf,
    port: String,
    error: u32,
    data: u32,
    up: Upstream,
) {
    let fail = |msg: String| {
        let w = w.clone();
        async move {
            w.data(error, Bytes::from(msg), true).await;
            w.data(data, Bytes::new(), true).await;
        }
    };
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 => p,
        _ => return fail(format!("invalid port {port:?}")).await,
    };
    let tcp = match connect(&netns, port).await {
        Ok(t) => t,
        Err(e) => return fail(e).await,
    };
    let (mut rd, wr) = tcp.into_split();
    let upward = tokio::spawn(copy_up(up, wr));
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if !w.data(data, Bytes::copy_from_slice(&buf[..n]), false).await {
                    upward.abort();
                    return;
                }
            }
            Err(e) => {
                w.data(
                    error,
                    Bytes::from(format!("read from port {port}: {e}")),
                    false,
                )
                .await;
                break;
            }
        }
    }
    upward.abort();
    w.data(data, Bytes::new(), true).await;
    w.data(error, Bytes::new(), true).await;
}

/// The client's bytes to the forwarded port; its end shuts the port's writing side.
async fn copy_up(mut up: Upstream, mut wr: tokio::net::tcp::OwnedWriteHalf) {
    while let Some(Some(b)) = up.recv().await {
        if wr.write_all(&b).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

async fn connect(netns: &std::path::Path, port: u16) -> Result<tokio::net::TcpStream, String> {
    let s = crate::netns::connect(netns, port).await?;
    s.set_nonblocking(true)
        .and_then(|_| tokio::net::TcpStream::from_std(s))
        .map_err(|e| format!("connection to port {port}: {e}"))
}

/// Serve port forwarding over WebSocket for `ports` until every connection ends or the
/// client goes away.
pub(crate) async fn websocket<IO>(
    ws: WebSocketStream<IO>,
    p: Proto,
    netns: PathBuf,
    ports: Vec<u16>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let mut inputs = Vec::new();
    let mut tasks = JoinSet::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let le = Bytes::copy_from_slice(&port.to_le_bytes());
        // The port first on both channels.
        for ch in [data_ch, err_ch] {
            let _ = out_tx.send((ch, le.clone())).await;
        }
        let (tx, rx) = mpsc::channel(16);
        inputs.push(tx);
        tasks.spawn(forward_ws(
            out_tx.clone(),
            netns.clone(),
            port,
            data_ch,
            err_ch,
            rx,
        ));
    }
    drop(out_tx);
    let reader = async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
            let Some((ch, data)) = parse(p, &m) else {
                continue;
            };
            if ch % 2 == 0 {
                if let Some(tx) = inputs.get((ch / 2) as usize) {
                    let _ = tx.send(Some(data)).await;
                }
            }
        }
    };
    let writer = async {
        while let Some((ch, data)) = out_rx.recv().await {
            if sink.send(message(p, ch, &data)).await.is_err() {
                return;
            }
        }
        // Every connection is over.
        let _ = sink.send(crate::ws::normal_close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), sink.close()).await;
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
    tasks.abort_all();
}

/// One forwarded port over WebSocket.
async fn forward_ws(
    out: mpsc::Sender<(u8, Bytes)>,
    netns: PathBuf,
    port: u16,
    data_ch: u8,
    err_ch: u8,
    up: Upstream,
) {
    let tcp = match connect(&netns, port).await {
        Ok(t) => t,
        Err(e) => {
            let _ = out.send((err_ch, Bytes::from(e))).await;
            return;
        }
    };
    let (mut rd, wr) = tcp.into_split();
    let upward = tokio::spawn(copy_up(up, wr));
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if out
                    .send((data_ch, Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Err(e) => {
                let _ = out
                    .send((err_ch, Bytes::from(format!("read from port {port}: {e}"))))
                    .await;
                break;
            }
        }
    }
    upward.abort();
}
