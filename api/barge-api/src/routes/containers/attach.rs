//! `POST /containers/{id}/attach`: the hijacked connection to a container's stdio. Before
//! the container starts (docker run attaches first), the attach waits for the start, which
//! hands it the shim's socket carrying the output from its first byte.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use barge_engine::container::Streams;

use crate::error::{ApiError, ApiResult};
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
    if p.flag("logs", false)? && !p.flag("stream", true)? {
        return Err(ApiError::not_implemented(
            "attach with logs=1 and stream=0: use GET /containers/{id}/logs",
        ));
    }
    let pending = s.pending.clone();
    let (tty, sock, rx) = s
        .blocking(move |e| {
            let rec = engine(e.db.find(&id))?;
            let st = e.status(&rec);
            if st.state.is_active() {
                let sock = engine(e.attach_socket(&rec.id, streams))?;
                return Ok((rec.config.tty, Some(sock), None));
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            pending.add(&rec.id, PendingAttach { streams, tx });
            Ok((rec.config.tty, None, Some(rx)))
        })
        .await?;
    let relay = Relay {
        tty,
        stdin: streams.stdin,
        stdout: streams.stdout,
        stderr: streams.stderr,
    };
    hijack::upgrade(&mut req, relay, async move {
        match (sock, rx) {
            (Some(s), _) => Some(s),
            (None, Some(rx)) => rx.await.ok(),
            _ => None,
        }
    })
}
