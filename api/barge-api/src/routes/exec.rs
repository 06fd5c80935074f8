//! `/containers/{id}/exec` and `/exec/{id}/...`: create, start (detached, or attached over a
//! hijacked connection with or without a terminal), resize, inspect. Every exec runs under
//! the container's shim: the daemon never forks the runtime.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use barge_engine::container::Streams;
use barge_engine::exec::ExecOptions;
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::hijack::{self, Relay};
use crate::routes::params::{json_body, Params};
use crate::server::status;
use crate::state::{engine, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    attach_stdin: bool,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    privileged: bool,
    user: String,
    working_dir: String,
    detach_keys: String,
}

async fn create(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: CreateBody = json_body(&body, "exec create")?;
    let cmd = b.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    if !b.detach_keys.is_empty() {
        return Err(ApiError::bad_request(
            "DetachKeys is not supported by barge",
        ));
    }
    let o = ExecOptions {
        cmd,
        env: b.env.unwrap_or_default(),
        user: (!b.user.is_empty()).then_some(b.user),
        workdir: (!b.working_dir.is_empty()).then_some(b.working_dir),
        privileged: b.privileged,
        tty: b.tty,
        interactive: b.attach_stdin,
        detach: false,
    };
    let exec_id = s.blocking(move |e| engine(e.exec_create(&id, &o))).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": exec_id }))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct StartBody {
    detach: bool,
    console_size: Option<Vec<u16>>,
}

async fn start(
    State(s): State<AppState>,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("exec start: read the body: {e}")))?;
    let b: StartBody = if body.is_empty() {
        StartBody::default()
    } else {
        json_body(&body, "exec start")?
    };
    if b.detach {
        s.blocking(move |e| engine(e.exec_start_detached(&id)).map(drop))
            .await?;
        return Ok(status(StatusCode::OK));
    }
    let size = b
        .console_size
        .filter(|v| v.len() == 2 && v[0] > 0 && v[1] > 0);
    let (relay, sock) = s
        .blocking(move |e| {
            let ins = engine(e.exec_inspect(&id))?;
            if ins.running || ins.exit_code.is_some() {
                return Err(ApiError::conflict(format!(
                    "exec {} has already been started",
                    ins.id
                )));
            }
            let streams = Streams {
                stdin: ins.open_stdin,
                stdout: true,
                stderr: true,
            };
            // A program that cannot run is told on the stream (as dockerd does); the client
            // reads the exit code (126, 127) from the exec's inspect.
            let size = size
                .as_ref()
                .filter(|_| ins.process_config.tty)
                .map(|sz| (sz[0], sz[1]));
            let sock = match e.exec_start_attached_sized(&ins.id, streams, size) {
                Ok(sock) => Ok(sock),
                Err(err @ barge_engine::Error::StartFailed { .. }) => Err(err.to_string()),
                Err(err) => return Err(err.into()),
            };
            let relay = Relay {
                tty: ins.process_config.tty,
                stdin: ins.open_stdin,
                stdout: true,
                stderr: true,
                // Leaving an exec's stream hangs its process up (the shim's rule), so no
                // detach keys here: they reach the process.
                detach: None,
            };
            Ok((relay, sock))
        })
        .await?;
    match sock {
        Ok(sock) => hijack::upgrade(&mut req, relay, async move { Some(sock) }),
        Err(msg) => hijack::upgrade_with_message(&mut req, relay, msg),
    }
}

async fn resize(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let h: u16 = p.number("h")?.unwrap_or(0);
    let w: u16 = p.number("w")?.unwrap_or(0);
    s.blocking(move |e| {
        engine(e.exec_resize(&id, h, w))?;
        Ok(status(StatusCode::OK))
    })
    .await
}

async fn inspect(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    s.blocking(move |e| {
        let ins = engine(e.exec_inspect(&id))?;
        serde_json::to_value(&ins)
            .map(Json)
            .map_err(|err| ApiError::internal(format!("encode exec {id}: {err}")))
    })
    .await
}
