//! `GET /containers/{id}/logs`: the container's log file as docker streams it (stdcopy
//! frames, raw with a tty), with follow, since/until, tail, timestamps, stdout/stderr. The
//! reading runs on the blocking pool and ends when the client goes.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use barge_engine::logs::LogOptions;
use barge_util::time::parse_timestamp;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::state::{engine, AppState};
use crate::stdcopy;

/// One output stream of the log, sent to the response as frames (or raw with a tty).
struct Sink {
    tx: mpsc::Sender<Bytes>,
    stream: u8,
    tty: bool,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let data = if self.tty {
            buf.to_vec()
        } else {
            stdcopy::frame(self.stream, buf)
        };
        self.tx
            .blocking_send(Bytes::from(data))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A docker API time (`1700000000`, `1700000000.5`, RFC 3339); 0 or empty is none.
fn time(p: &Params, key: &str) -> ApiResult<Option<(i64, u32)>> {
    match p.get(key) {
        None | Some("") | Some("0") => Ok(None),
        Some(v) => parse_timestamp(v).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid value for {key}: {v:?} (unix seconds or RFC 3339)"
            ))
        }),
    }
}

pub fn stream_response(rx: mpsc::Receiver<Bytes>, tty: bool) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    r
}

pub async fn logs(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let stdout = p.flag("stdout", false)?;
    let stderr = p.flag("stderr", false)?;
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match p.get("tail") {
        None | Some("" | "all") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid value for tail: {n:?} is not a number"
                )))
            }
        },
    };
    let opts = LogOptions {
        tail,
        since: time(&p, "since")?,
        until: time(&p, "until")?,
        timestamps: p.flag("timestamps", false)?,
        stdout,
        stderr,
        follow: p.flag("follow", false)?,
    };
    let rec = s.blocking(move |e| engine(e.db.find(&id))).await?;
    let tty = rec.config.tty;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let s2 = s.clone();
    tokio::spawn(async move {
        let _ = s2
            .blocking(move |e| {
                let closed = tx.clone();
                let mut out = Sink {
                    tx: tx.clone(),
                    stream: stdcopy::STDOUT,
                    tty,
                };
                let mut err = Sink {
                    tx,
                    stream: stdcopy::STDERR,
                    tty,
                };
                let _ =
                    e.logs_to_until(&rec.id, &opts, (&mut out, &mut err), &|| closed.is_closed());
                Ok(())
            })
            .await;
    });
    Ok(stream_response(rx, tty))
}
