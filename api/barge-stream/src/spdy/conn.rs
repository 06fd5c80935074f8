//! A server-side SPDY connection: a reader task that answers the client's new streams
//! (SYN_REPLY), pings and flow control, and passes the streams and their data on in arrival
//! order; a writer task that owns the sending half and the header compression.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::frame::{self, Deflater, Frame, Headers, Inflater};

/// What the client did, in order.
#[derive(Debug)]
pub(crate) enum Event {
    Open {
        id: u32,
        headers: Headers,
        fin: bool,
    },
    Data {
        id: u32,
        data: Bytes,
        fin: bool,
    },
    Reset {
        id: u32,
    },
}

enum Cmd {
    Frame(Frame),
    /// Send nothing more: shut the sending half down.
    Close,
}

/// The sending side of a connection (cheap to clone).
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Cmd>,
}

/// The largest data frame sent.
const CHUNK: usize = 32 * 1024;

impl Writer {
    /// Send `data` on stream `id` (in chunks), with FIN when `fin`. False once the connection
    /// is gone.
    pub async fn data(&self, id: u32, data: Bytes, fin: bool) -> bool {
        let mut rest = data;
        loop {
            let n = rest.len().min(CHUNK);
            let chunk = rest.split_to(n);
            let last = rest.is_empty();
            let f = Frame::Data {
                id,
                fin: fin && last,
                data: chunk,
            };
            if self.tx.send(Cmd::Frame(f)).await.is_err() {
                return false;
            }
            if last {
                return true;
            }
        }
    }

    pub async fn reset(&self, id: u32, status: u32) {
        let _ = self
            .tx
            .send(Cmd::Frame(Frame::RstStream { id, status }))
            .await;
    }

    /// Send nothing more.
    pub async fn close(&self) {
        let _ = self.tx.send(Cmd::Close).await;
    }
}

/// A running connection.
pub(crate) struct Conn {
    pub events: mpsc::Receiver<Event>,
    pub writer: Writer,
    reader: tokio::task::JoinHandle<()>,
    writer_task: tokio::task::JoinHandle<()>,
}

impl Conn {
    /// Serve SPDY on `io` (the upgraded connection).
    pub fn start<IO>(io: IO) -> Conn
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(io);
        let (tx, mut rx) = mpsc::channel::<Cmd>(64);
        let writer = Writer { tx };
        let writer_task = tokio::spawn(async move {
            let mut def = Deflater::default();
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Cmd::Frame(f) => {
                        let bytes = match frame::encode(&f, &mut def) {
                            Ok(b) => b,
                            Err(e) => {
                                tracing::debug!("spdy: encode: {e}");
                                break;
                            }
                        };
                        if wr.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Cmd::Close => break,
                }
            }
            let _ = wr.flush().await;
            let _ = wr.shutdown().await;
            // Whatever comes now has nowhere to go.
            rx.close();
        });
        let (ev_tx, events) = mpsc::channel(64);
        let w = writer.clone();
        let reader = tokio::spawn(async move {
            let mut inf = Inflater::default();
            loop {
                let f = match frame::read(&mut rd, &mut inf).await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("spdy: read: {e}");
                        break;
                    }
                };
                let ev = match f {
                    Frame::SynStream { id, fin, headers } => {
                        let reply = Frame::SynReply {
                            id,
                            fin: false,
                            headers: Vec::new(),
                        };
                        if w.tx.send(Cmd::Frame(reply)).await.is_err() {
                            // Closing: the session is over.
                            continue;
                        }
                        Event::Open { id, headers, fin }
                    }
                    Frame::Data { id, fin, data } => {
                        // Keep the client's windows open (what is read is consumed).
                        if !data.is_empty() {
                            let delta = data.len() as u32;
                            for wid in [id, 0] {
                                let _ =
                                    w.tx.send(Cmd::Frame(Frame::WindowUpdate { id: wid, delta }))
                                        .await;
                            }
                        }
                        Event::Data { id, data, fin }
                    }
                    Frame::RstStream { id, .. } => Event::Reset { id },
                    Frame::Ping(n) => {
                        let _ = w.tx.send(Cmd::Frame(Frame::Ping(n))).await;
                        continue;
                    }
                    Frame::GoAway { .. } => break,
                    _ => continue,
                };
                // A session that stopped listening still lets the client finish.
                let _ = ev_tx.send(ev).await;
            }
        });
        Conn {
            events,
            writer,
            reader,
            writer_task,
        }
    }

    /// End the connection: send nothing more, give the client a moment to close its side
    /// (so what was sent is not lost to a reset), then drop it.
    pub async fn finish(mut self) {
        self.writer.close().await;
        let _ = self.writer_task.await;
        // The reader's sends fail from now on: it only reads until the client closes.
        self.events.close();
        if tokio::time::timeout(Duration::from_secs(5), &mut self.reader)
            .await
            .is_err()
        {
            self.reader.abort();
        }
    }
}
