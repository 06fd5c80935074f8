//! Moving bytes between HTTP bodies and the sync engine without buffering them whole: a
//! request body read as a blocking `Read` (for `load`, `import`, `PUT archive`), and a blocking
//! `Write` turned into a streamed response body (for `save`, `GET archive`) or into docker's
//! JSON message stream (for `pull`). Both sides are bounded: a few chunks in flight.

use std::io::{self, Read, Write};

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::TryStreamExt;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};

/// Chunks queued between a blocking writer and the response.
const IN_FLIGHT: usize = 8;
/// The size of one chunk sent to the client.
const CHUNK: usize = 64 << 10;

/// The request body as a blocking reader; use it only on a blocking thread.
pub fn body_reader(body: Body) -> impl Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    tokio_util::io::SyncIoBridge::new(reader)
}

/// What a blocking producer sends: bytes, or the failure that ends the stream.
enum Msg {
    Data(Bytes),
    Fail(ApiError),
}

/// A blocking `Write` feeding a response body, in chunks of at most [`CHUNK`] bytes.
pub struct ChannelWriter {
    tx: mpsc::Sender<Msg>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Msg::Data(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Run `produce` on a blocking thread, writing into the response body. A failure before the
/// first byte is answered as an error response with its status; a failure later cuts the
/// stream (the client sees a truncated body, as with dockerd). The client going away makes
/// the writer fail with `BrokenPipe`, which ends `produce`.
pub async fn stream_response<F>(
    headers: Vec<(&'static str, String)>,
    produce: F,
) -> ApiResult<Response>
where
    F: FnOnce(&mut ChannelWriter) -> ApiResult<()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Msg>(IN_FLIGHT);
    let fail_tx = tx.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let r = produce(&mut w).and_then(|()| {
            w.flush()
                .map_err(|e| ApiError::internal(format!("stream: {e}")))
        });
        if let Err(e) = r {
            let _ = fail_tx.blocking_send(Msg::Fail(e));
        }
    });
    // An empty success (nothing written at all) ends with the channel closing.
    let first = rx.recv().await;
    let first = match first {
        Some(Msg::Fail(e)) => return Err(e),
        Some(Msg::Data(b)) => Some(b),
        None => {
            task.await?;
            None
        }
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Some(Msg::Data(b)) => Some((Ok::<Bytes, io::Error>(b), rx)),
            Some(Msg::Fail(e)) => Some((Err(io::Error::other(e.message)), rx)),
            None => None,
        }
    });
    let head = futures_util::stream::iter(first.map(Ok));
    let body = Body::from_stream(futures_util::StreamExt::chain(head, rest));
    let mut resp = Response::new(body);
    for (k, v) in headers {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}

/// A sender of docker's JSON message lines (`{"status": …}`), usable from async and blocking
/// code and from progress callbacks (it never blocks: messages are small and their number is
/// bounded by the work reported).
#[derive(Clone)]
pub struct Lines {
    tx: mpsc::UnboundedSender<Bytes>,
}

impl Lines {
    /// Send one JSON value as a line; false once the client went away.
    pub fn send(&self, v: &serde_json::Value) -> bool {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).is_ok()
    }

    /// Has the client gone away (the response body dropped)?
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// docker's in-stream error: `{"errorDetail":{"message":…},"error":…}`.
    pub fn error_value(message: &str) -> serde_json::Value {
        serde_json::json!({"errorDetail": {"message": message}, "error": message})
    }
}

/// A JSON message stream response and the sender feeding it.
pub fn json_lines() -> (Lines, Response) {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, io::Error>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    (Lines { tx }, resp)
}
