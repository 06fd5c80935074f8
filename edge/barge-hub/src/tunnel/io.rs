//! A tunnel stream as a byte stream ([`AsyncRead`] + [`AsyncWrite`]), for protocols spoken
//! over a `Connect` stream (the ServiceBus's HTTP/1.1 client): writes become fd 0 `Data`
//! (at most [`CHUNK`] bytes each, each waiting for room in the stream's bounded channel),
//! shutdown half-closes (empty `Data`), reads take fd 1 `Data`. The edge's end with an
//! error (connect refused, target unknown) is a read error, and is kept for the caller
//! ([`TunnelIo::edge_error`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use super::{TunnelOutput, TunnelStream};

/// Largest `Data` payload a write sends (keeps frames small on the session).
pub const CHUNK: usize = 32 * 1024;

type Reserve = Pin<
    Box<dyn Future<Output = Result<mpsc::OwnedPermit<Vec<u8>>, mpsc::error::SendError<()>>> + Send>,
>;

/// A [`TunnelStream`] as a byte stream. Dropping it cancels the stream on the edge.
pub struct TunnelIo {
    input: Option<mpsc::Sender<Vec<u8>>>,
    reserving: Option<Reserve>,
    output: mpsc::Receiver<TunnelOutput>,
    pending: Vec<u8>,
    pos: usize,
    eof: bool,
    error: Arc<Mutex<Option<String>>>,
}

impl TunnelIo {
    pub fn new(stream: TunnelStream) -> TunnelIo {
        TunnelIo {
            input: Some(stream.input),
            reserving: None,
            output: stream.output,
            pending: Vec::new(),
            pos: 0,
            eof: false,
            error: Arc::new(Mutex::new(None)),
        }
    }

    /// Where the edge's error (if the stream ends with one) will be, readable after the
    /// stream has been handed to a protocol client.
    pub fn edge_error(&self) -> Arc<Mutex<Option<String>>> {
        self.error.clone()
    }

    /// Wait for room for one message on the input channel.
    fn poll_permit(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<mpsc::OwnedPermit<Vec<u8>>>> {
        let Some(tx) = &self.input else {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the tunnel stream's write side is closed",
            )));
        };
        let fut = self
            .reserving
            .get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.reserving = None;
                Poll::Ready(r.map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the tunnel stream is closed",
                    )
                }))
            }
        }
    }
}

impl AsyncRead for TunnelIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.pending.len() {
                let n = buf.remaining().min(this.pending.len() - this.pos);
                buf.put_slice(&this.pending[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match this.output.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(TunnelOutput::Data { fd: 1, data })) => {
                    this.pending = data;
                    this.pos = 0;
                }
                Poll::Ready(Some(TunnelOutput::Data { .. })) => {}
                Poll::Ready(Some(TunnelOutput::End { error, .. })) => {
                    this.eof = true;
                    if let Some(e) = error {
                        *this.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            e,
                        )));
                    }
                }
                Poll::Ready(None) => {
                    this.eof = true;
                    *this.error.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some("the node's session ended".into());
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the node's session ended",
                    )));
                }
            }
        }
    }
}

impl AsyncWrite for TunnelIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.poll_permit(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(permit)) => {
                let n = buf.len().min(CHUNK);
                permit.send(buf[..n].to_vec());
                Poll::Ready(Ok(n))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.input.is_none() {
            return Poll::Ready(Ok(()));
        }
        match this.poll_permit(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => {
                this.input = None;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(permit)) => {
                // An empty Data half-closes the edge's socket.
                permit.send(Vec::new());
                this.input = None;
                Poll::Ready(Ok(()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_are_chunked_reads_see_fd1_and_the_edge_error() {
        let (in_tx, mut in_rx) = mpsc::channel(4);
        let (out_tx, out_rx) = mpsc::channel(4);
        let mut io = TunnelIo::new(TunnelStream {
            input: in_tx,
            output: out_rx,
        });
        let err = io.edge_error();
        let big = vec![7u8; CHUNK + 10];
        let writer = tokio::spawn(async move {
            io.write_all(&big).await.unwrap();
            io.shutdown().await.unwrap();
            io
        });
        assert_eq!(in_rx.recv().await.unwrap().len(), CHUNK);
        assert_eq!(in_rx.recv().await.unwrap().len(), 10);
        assert!(
            in_rx.recv().await.unwrap().is_empty(),
            "shutdown half-closes"
        );
        let mut io = writer.await.unwrap();
        out_tx
            .send(TunnelOutput::Data {
                fd: 2,
                data: b"ignored".to_vec(),
            })
            .await
            .unwrap();
        out_tx
            .send(TunnelOutput::Data {
                fd: 1,
                data: b"hello".to_vec(),
            })
            .await
            .unwrap();
        out_tx
            .send(TunnelOutput::End {
                exit_code: None,
                error: Some("connect to 127.0.0.1:9: refused".into()),
            })
            .await
            .unwrap();
        let mut got = [0u8; 5];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        let e = io.read(&mut got).await.unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        assert_eq!(
            err.lock().unwrap().as_deref(),
            Some("connect to 127.0.0.1:9: refused")
        );
    }
}
