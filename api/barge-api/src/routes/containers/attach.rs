//! `POST /containers/{id}/attach`: the hijacked connection to a container's stdio. Before
//! the container starts (docker run attaches first), the attach waits for the start, which
//! hands it the shim's socket carrying the output from its first byte.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use barge_engine::container::Streams;

use crate::error::ApiResult;
use crate::hijack::{self, Relay};
use crate::routes::params::Params;
use crate::state::{engine, AppState, PendingAttach};

pub async fn attach(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    mut req: Request,
) -> ApiResult<Response> {
    let streams = Streams {
        stdin: p.flag("stdin", false)?,
        stdout: p.flag("stdout", false)?,
        stderr: p.flag("stderr", false)?,
    };
    let detach = match p.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => crate::detach::DetachKeys::parse(k)?,
        None => crate::detach::DetachKeys::default_keys(),
    };
    let logs = p.flag("logs", false)?;
    let stream = p.flag("stream", false)?;
    let pending = s.pending.clone();
    let (tty, preamble, sock, rx) = s
        .blocking(move |e| {
            let rec = engine(e.db.find(&id))?;
            // logs=1: the log so far comes first, as docker sends it.
            let preamble = if logs {
                past_logs(e, &rec.id, rec.config.tty, streams)?
            } else {
                Vec::new()
            };
            if !stream {
                return Ok((rec.config.tty, preamble, None, None));
            }
            let st = e.status(&rec);
            if st.state.is_active() {
                let sock = engine(e.attach_socket(&rec.id, streams))?;
                return Ok((rec.config.tty, preamble, Some(sock), None));
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            pending.add(&rec.id, PendingAttach { streams, tx });
            Ok((rec.config.tty, preamble, None, Some(rx)))
        })
        .await?;
    let relay = Relay {
        tty,
        stdin: streams.stdin,
        stdout: streams.stdout,
        stderr: streams.stderr,
        detach: (tty && streams.stdin).then_some(detach),
    };
    hijack::upgrade_after(&mut req, relay, preamble, async move {
        match (sock, rx) {
            (Some(s), _) => Some(s),
            (None, Some(rx)) => rx.await.ok(),
            _ => None,
        }
    })
}

/// The container's log so far, framed as the attach stream frames it (raw with a tty).
fn past_logs(
    e: &barge_engine::Engine,
    id: &str,
    tty: bool,
    streams: Streams,
) -> ApiResult<Vec<u8>> {
    struct Framed<'a>(&'a std::cell::RefCell<Vec<u8>>, u8, bool);
    impl std::io::Write for Framed<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut out = self.0.borrow_mut();
            if self.2 {
                out.extend_from_slice(buf);
            } else {
                out.extend_from_slice(&crate::stdcopy::frame(self.1, buf));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = std::cell::RefCell::new(Vec::new());
    let opts = barge_engine::logs::LogOptions {
        stdout: streams.stdout,
        stderr: streams.stderr,
        ..Default::default()
    };
    if streams.stdout || streams.stderr {
        engine(e.logs_to(
            id,
            &opts,
            (
                &mut Framed(&buf, crate::stdcopy::STDOUT, tty),
                &mut Framed(&buf, crate::stdcopy::STDERR, tty),
            ),
        ))?;
    }
    Ok(buf.into_inner())
}
