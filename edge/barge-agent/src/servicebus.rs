//! ServiceBus on the edge: the hub's `Connect` streams, each a TCP connection from this
//! device to `127.0.0.1:port` (`Host`) or to a port on one of the agent's pods' IP (`Pod`).
//!
//! Bytes from the hub (`Data` fd 0) are written to the socket (an empty one half-closes
//! it); bytes from the socket go up as `Data` fd 1, read [`CHUNK`] at a time and only as
//! fast as the session's bounded outgoing queue takes them. When the socket's read side
//! ends the stream ends with `StreamEnd`; a target that cannot be resolved or reached ends
//! it with `StreamEnd{error}` saying what and where. `Cancel` (or the session's end) aborts
//! the connection. Both directions run concurrently, so a service that writes while it
//! reads never deadlocks against its client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use barge_edge_proto::wire::{self, ConnectTarget, EdgeMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::edged::Workloads;
use crate::log::log;

/// Largest read from a service socket (one `Data` frame).
pub const CHUNK: usize = 32 * 1024;
/// Chunks from the hub queued per connection before the session reader waits.
const IN_QUEUE: usize = 64;
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Conn {
    input: mpsc::Sender<Vec<u8>>,
    task: tokio::task::AbortHandle,
}

type Open = Arc<Mutex<HashMap<u32, Conn>>>;

fn lock(open: &Open) -> MutexGuard<'_, HashMap<u32, Conn>> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// The open Connect streams of one session (aborted when the session ends).
pub struct ServiceBus {
    work: Arc<dyn Workloads>,
    out: mpsc::Sender<EdgeMsg>,
    open: Open,
}

impl ServiceBus {
    pub fn new(work: Arc<dyn Workloads>, out: mpsc::Sender<EdgeMsg>) -> ServiceBus {
        ServiceBus {
            work,
            out,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether `stream` is one of this bus's connections.
    pub fn has(&self, stream: u32) -> bool {
        lock(&self.open).contains_key(&stream)
    }

    /// Open `stream` to `target` (connects in the background).
    pub fn open(&self, stream: u32, target: ConnectTarget) {
        let (tx, rx) = mpsc::channel(IN_QUEUE);
        let mut open = lock(&self.open);
        let task = tokio::spawn(run(
            stream,
            target,
            self.work.clone(),
            self.out.clone(),
            rx,
            self.open.clone(),
        ));
        open.insert(
            stream,
            Conn {
                input: tx,
                task: task.abort_handle(),
            },
        );
    }

    /// Bytes from the hub (base64) for `stream`; waits while its queue is full.
    pub async fn data(&self, stream: u32, data: &str) {
        let tx = lock(&self.open).get(&stream).map(|c| c.input.clone());
        let Some(tx) = tx else { return };
        match wire::unb64(data) {
            Ok(bytes) => {
                let _ = tx.send(bytes).await;
            }
            Err(e) => {
                log(format!(
                    "connect stream {stream}: bad data from the hub ({e}); closing it"
                ));
                self.abort(stream, Some(format!("bad data from the hub: {e}")))
                    .await;
            }
        }
    }

    /// The hub cancelled `stream`.
    pub fn cancel(&self, stream: u32) {
        if let Some(c) = lock(&self.open).remove(&stream) {
            c.task.abort();
        }
    }

    async fn abort(&self, stream: u32, error: Option<String>) {
        let c = lock(&self.open).remove(&stream);
        if let Some(c) = c {
            c.task.abort();
            let _ = self
                .out
                .send(EdgeMsg::StreamEnd {
                    stream,
                    exit_code: None,
                    error,
                })
                .await;
        }
    }
}

impl Drop for ServiceBus {
    /// The session ended: every connection closes.
    fn drop(&mut self) {
        for (_, c) in lock(&self.open).drain() {
            c.task.abort();
        }
    }
}

/// One connection, start to `StreamEnd`.
async fn run(
    stream: u32,
    target: ConnectTarget,
    work: Arc<dyn Workloads>,
    out: mpsc::Sender<EdgeMsg>,
    input: mpsc::Receiver<Vec<u8>>,
    open: Open,
) {
    let error = serve(stream, &target, work, &out, input).await.err();
    if let Some(e) = &error {
        log(format!("connect stream {stream}: {e}"));
    }
    lock(&open).remove(&stream);
    let _ = out
        .send(EdgeMsg::StreamEnd {
            stream,
            exit_code: None,
            error,
        })
        .await;
}

/// Where `target` is on this device, and its name for messages.
async fn resolve(
    target: &ConnectTarget,
    work: Arc<dyn Workloads>,
) -> Result<(SocketAddr, String), String> {
    match target {
        ConnectTarget::Host { port } => {
            let addr = SocketAddr::from(([127, 0, 0, 1], *port));
            Ok((addr, addr.to_string()))
        }
        ConnectTarget::Pod {
            namespace,
            pod,
            port,
        } => {
            let (ns, p) = (namespace.clone(), pod.clone());
            let ip = tokio::task::spawn_blocking(move || work.pod_ip(&ns, &p))
                .await
                .map_err(|e| format!("look up pod {namespace}/{pod}: {e}"))??;
            let addr = SocketAddr::new(ip, *port);
            Ok((addr, format!("pod {namespace}/{pod} ({addr})")))
        }
    }
}

async fn serve(
    stream: u32,
    target: &ConnectTarget,
    work: Arc<dyn Workloads>,
    out: &mpsc::Sender<EdgeMsg>,
    mut input: mpsc::Receiver<Vec<u8>>,
) -> Result<(), String> {
    if matches!(
        target,
        ConnectTarget::Host { port: 0 } | ConnectTarget::Pod { port: 0, .. }
    ) {
        return Err("refused: port 0 is not a port to connect to".into());
    }
    let (addr, name) = resolve(target, work).await?;
    let sock = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {name}: no answer in {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("connect to {name}: {e}"))?;
    let (mut rd, mut wr) = sock.into_split();
    let up = async {
        while let Some(d) = input.recv().await {
            if d.is_empty() {
                break;
            }
            wr.write_all(&d)
                .await
                .map_err(|e| format!("write to {name}: {e}"))?;
        }
        // The hub is done writing: half-close, and let the service answer.
        let _ = wr.shutdown().await;
        std::future::pending::<Result<(), String>>().await
    };
    let down = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = rd
                .read(&mut buf)
                .await
                .map_err(|e| format!("read from {name}: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            let msg = EdgeMsg::Data {
                stream,
                fd: 1,
                data: wire::b64(&buf[..n]),
            };
            if out.send(msg).await.is_err() {
                return Ok(());
            }
        }
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use barge_edge_proto::object::{ObjKey, Object};
    use barge_edge_proto::wire::PodReport;

    use crate::tunnel::{ExecRequest, LogsRequest, StreamIo};

    /// No pods: every pod lookup fails.
    struct NoPods;

    impl Workloads for NoPods {
        fn reconcile(&self, _: &[Object]) -> bool {
            false
        }
        fn statuses(&self) -> (Vec<PodReport>, Vec<ObjKey>) {
            (Vec::new(), Vec::new())
        }
        fn watch(&self, _: Box<dyn Fn() + Send>) {}
        fn counts(&self) -> (u32, u32) {
            (0, 0)
        }
        fn exec(&self, _: &ExecRequest, _: &StreamIo) {}
        fn logs(&self, _: &LogsRequest, _: &StreamIo) {}
    }

    /// The Data bytes of `stream` until its StreamEnd, and the end's error.
    async fn collect(rx: &mut mpsc::Receiver<EdgeMsg>, want: u32) -> (Vec<u8>, Option<String>) {
        let mut got = Vec::new();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            match m {
                EdgeMsg::Data {
                    stream,
                    fd: 1,
                    data,
                } if stream == want => got.extend(wire::unb64(&data).unwrap()),
                EdgeMsg::StreamEnd { stream, error, .. } if stream == want => return (got, error),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn bytes_both_ways_half_close_errors_and_cancel() {
        // A service that reads to EOF, then answers how much it got and closes.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (seen_tx, mut seen_rx) = mpsc::channel::<usize>(4);
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let seen = seen_tx.clone();
                let _ = seen.send(usize::MAX).await;
                tokio::spawn(async move {
                    let mut all = Vec::new();
                    s.read_to_end(&mut all).await.unwrap();
                    let _ = seen.send(all.len()).await;
                    let _ = s
                        .write_all(format!("got {} bytes", all.len()).as_bytes())
                        .await;
                });
            }
        });
        let (out, mut rx) = mpsc::channel(4);
        let bus = ServiceBus::new(Arc::new(NoPods), out);

        bus.open(1, ConnectTarget::Host { port });
        assert!(bus.has(1));
        let big = vec![9u8; 100_000];
        bus.data(1, &wire::b64(&big)).await;
        bus.data(1, &wire::b64(b"!")).await;
        bus.data(1, "").await;
        let (got, err) = collect(&mut rx, 1).await;
        assert_eq!(
            (String::from_utf8(got).unwrap(), err),
            ("got 100001 bytes".into(), None)
        );
        assert!(!bus.has(1), "an ended stream is forgotten");

        // Nothing listening: the error names the address.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = dead.local_addr().unwrap().port();
        drop(dead);
        bus.open(2, ConnectTarget::Host { port: dead_port });
        let (_, err) = collect(&mut rx, 2).await;
        let err = err.unwrap();
        assert!(err.contains(&format!("127.0.0.1:{dead_port}")), "{err}");

        // An unknown pod, and port 0: refused with what and where.
        bus.open(
            3,
            ConnectTarget::Pod {
                namespace: "default".into(),
                pod: "web".into(),
                port: 80,
            },
        );
        let (_, err) = collect(&mut rx, 3).await;
        assert!(err.unwrap().contains("pod default/web"));
        bus.open(4, ConnectTarget::Host { port: 0 });
        let (_, err) = collect(&mut rx, 4).await;
        assert!(err.unwrap().contains("port 0"));

        // Cancel closes the connection: the service sees EOF.
        assert_eq!(seen_rx.recv().await, Some(usize::MAX), "accepted 1");
        assert_eq!(seen_rx.recv().await, Some(100_001));
        bus.open(5, ConnectTarget::Host { port });
        let accepted = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv()).await;
        assert_eq!(accepted.unwrap(), Some(usize::MAX), "accepted 5");
        bus.cancel(5);
        let n = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv()).await;
        assert_eq!(n.unwrap(), Some(0), "the service saw EOF after the cancel");
        assert!(!bus.has(5));
    }
}
