//! create, start, stop, restart, kill, pause, unpause, rename, resize, update, wait, remove,
//! prune.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use barge_engine::container::{PreparedWait, Streams, WaitCondition};
use barge_engine::status::State as CState;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::journal_wake::Wake;
use crate::routes::params::Params;
use crate::server::status;
use crate::state::{engine, AppState};

/// `POST /containers/create?name=`: 201 `{"Id", "Warnings"}`. A missing image is a 404 (the
/// docker CLI pulls then and retries); create never pulls.
pub async fn create(State(s): State<AppState>, p: Params, body: Bytes) -> ApiResult<Response> {
    let opts = crate::create::options(&body, p.get("name").map(str::to_string))?;
    let rec = s.blocking(move |e| engine(e.create(opts))).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "Id": rec.id, "Warnings": [] })),
    )
        .into_response())
}

/// `POST /containers/{id}/start`: 204, or 304 when it runs already. Attaches made before
/// the start get the container's output from its first byte.
pub async fn start(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let pending = s.pending.clone();
    s.blocking(move |e| {
        let rec = engine(e.db.find(&id))?;
        if e.status(&rec).state.is_active() {
            return Ok(status(StatusCode::NOT_MODIFIED));
        }
        let waiting = pending.take(&rec.id);
        let streams = waiting.iter().fold(None::<Streams>, |acc, p| {
            let a = acc.unwrap_or(Streams {
                stdin: false,
                stdout: false,
                stderr: false,
            });
            Some(Streams {
                stdin: a.stdin || p.streams.stdin,
                stdout: a.stdout || p.streams.stdout,
                stderr: a.stderr || p.streams.stderr,
            })
        });
        let (_, sock) = engine(e.start(&rec.id, streams))?;
        let mut waiting = waiting.into_iter();
        if let (Some(first), Some(sock)) = (waiting.next(), sock) {
            let _ = first.tx.send(sock);
        }
        for p in waiting {
            if let Ok(sock) = e.attach_socket(&rec.id, p.streams) {
                let _ = p.tx.send(sock);
            }
        }
        Ok(status(StatusCode::NO_CONTENT))
    })
    .await
}

fn timeout(p: &Params) -> ApiResult<Option<u32>> {
    let t = match p.number::<i64>("t")? {
        Some(t) => Some(t),
        None => p.number::<i64>("timeout")?,
    };
    // docker: -1 waits forever; barge's longest wait is u32 seconds.
    Ok(t.map(|t| {
        if t < 0 {
            u32::MAX
        } else {
            t.min(u32::MAX as i64) as u32
        }
    }))
}

/// `POST /containers/{id}/stop?t=&signal=`: 204, or 304 when it is not running.
pub async fn stop(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let t = timeout(&p)?;
    let signal = p.get("signal").unwrap_or("").to_string();
    s.blocking(move |e| {
        let rec = engine(e.db.find(&id))?;
        if !signal.is_empty() && !same_signal(&signal, &rec.config.stop_signal) {
            return Err(ApiError::bad_request(format!(
                "stop signal {signal:?}: barge stops with the container's stop signal ({}); use kill for another one",
                rec.config.stop_signal
            )));
        }
        if !e.status(&rec).state.is_active() {
            return Ok(status(StatusCode::NOT_MODIFIED));
        }
        engine(e.stop(&rec.id, t))?;
        Ok(status(StatusCode::NO_CONTENT))
    })
    .await
}

fn same_signal(a: &str, b: &str) -> bool {
    match (signal_number(a), signal_number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn signal_number(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

/// `POST /containers/{id}/restart?t=`: 204.
pub async fn restart(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let t = timeout(&p)?;
    s.blocking(move |e| {
        engine(e.restart(&id, t))?;
        Ok(status(StatusCode::NO_CONTENT))
    })
    .await
}

/// `POST /containers/{id}/kill?signal=`: 204; 409 when it is not running.
pub async fn kill(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let signal = p
        .get("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("SIGKILL")
        .to_string();
    s.blocking(move |e| {
        let rec = engine(e.db.find(&id))?;
        if !e.status(&rec).state.is_active() {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {id}: Container {} is not running",
                rec.id
            )));
        }
        engine(e.kill(&rec.id, &signal))?;
        Ok(status(StatusCode::NO_CONTENT))
    })
    .await
}

async fn pause_to(s: AppState, id: String, paused: bool) -> ApiResult<Response> {
    s.blocking(move |e| {
        let rec = engine(e.db.find(&id))?;
        let st = e.status(&rec).state;
        if paused && st != CState::Running {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if !paused && st != CState::Paused {
            return Err(ApiError::conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        engine(e.pause(&rec.id, paused))?;
        Ok(status(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn pause(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    pause_to(s, id, true).await
}

pub async fn unpause(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    pause_to(s, id, false).await
}

/// `POST /containers/{id}/rename?name=`: 204.
pub async fn rename(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let name = p
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("rename: the new name (name=) is missing"))?
        .to_string();
    s.blocking(move |e| {
        engine(e.rename(&id, &name))?;
        Ok(status(StatusCode::NO_CONTENT))
    })
    .await
}

/// `POST /containers/{id}/resize?h=&w=`: 200.
pub async fn resize(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let h: u16 = p.number("h")?.unwrap_or(0);
    let w: u16 = p.number("w")?.unwrap_or(0);
    s.blocking(move |e| {
        let rec = engine(e.db.find(&id))?;
        if !rec.config.tty {
            // docker answers a resize of a container without a terminal with an error the
            // CLI ignores; stay quiet and successful as the size is meaningless.
            return Ok(status(StatusCode::OK));
        }
        if !e.status(&rec).state.is_active() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        engine(e.resize(&rec.id, h, w))?;
        Ok(status(StatusCode::OK))
    })
    .await
}

/// `POST /containers/{id}/update`: barge cannot change a running container's resources yet:
/// an update that changes nothing succeeds, anything else is refused.
pub async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let v: serde_json::Value = crate::routes::params::json_body(&body, "container update")?;
    let obj = v.as_object().ok_or_else(|| {
        ApiError::bad_request("invalid JSON in the container update request: expected an object")
    })?;
    let mut req = barge_engine::update::UpdateRequest::default();
    let int = |k: &str, val: &serde_json::Value| {
        val.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid JSON in the container update request: {k} must be an integer"
            ))
        })
    };
    for (k, val) in obj {
        if val.is_null() {
            continue;
        }
        match k.as_str() {
            "Memory" => req.memory = Some(int(k, val)?).filter(|m| *m != 0),
            "NanoCpus" | "NanoCPUs" => {
                req.cpus = Some(int(k, val)?).filter(|n| *n != 0).map(|n| n as f64 / 1e9)
            }
            "PidsLimit" => req.pids_limit = Some(int(k, val)?).filter(|n| *n != 0),
            _ if is_zero(val) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "update of {k} is not supported by barge (Memory, NanoCpus and PidsLimit are): recreate the container with the new setting"
                )))
            }
        }
    }
    s.blocking(move |e| engine(e.update(&id, &req))).await?;
    Ok(Json(json!({ "Warnings": [] })).into_response())
}

/// docker's zero values, which clients send for what they do not change.
fn is_zero(val: &serde_json::Value) -> bool {
    match val {
        serde_json::Value::Null => true,
        serde_json::Value::Bool(b) => !b,
        serde_json::Value::Number(n) => n.as_f64() == Some(0.0),
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.values().all(is_zero),
    }
}

/// `POST /containers/{id}/wait?condition=`: headers at once (the docker CLI waits for them
/// before it starts the container), `{"StatusCode": N, "Error": null}` when the condition
/// holds. The wait holds no thread (see [`crate::journal_wake`]) and ends when the client
/// goes (the response body, and this wait with it, is dropped).
pub async fn wait(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let cond: WaitCondition = p
        .get("condition")
        .unwrap_or("")
        .parse()
        .map_err(ApiError::from)?;
    let mut wake = s.journal.waiter(&s.engine)?;
    let prepared = s.blocking(move |e| engine(e.wait_prepare(&id))).await?;
    let stream = futures_util::stream::once(async move {
        let v = match wait_until(&s, prepared, &mut wake, cond).await {
            Ok(code) => json!({ "StatusCode": code, "Error": null }),
            Err(e) => json!({ "StatusCode": -1, "Error": { "Message": e.message } }),
        };
        Ok::<_, std::io::Error>(Bytes::from(format!("{v}\n")))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// The exit code once `cond` holds: the engine looks (a moment on the blocking pool) at the
/// start, whenever the journal changed, and when a recheck of the container's state is due
/// (a shim that died writes no `die`).
async fn wait_until(
    s: &AppState,
    mut w: PreparedWait,
    wake: &mut Wake,
    cond: WaitCondition,
) -> ApiResult<i32> {
    loop {
        wake.seen();
        let (back, step) = s
            .blocking(move |e| {
                let step = engine(e.wait_step(&mut w, cond));
                Ok((w, step))
            })
            .await?;
        w = back;
        if let Some(code) = step? {
            return Ok(code);
        }
        wake.changed(Some(w.recheck_in())).await;
    }
}

/// `DELETE /containers/{id}?force=&v=`: 204.
pub async fn remove(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let force = p.flag("force", false)?;
    let volumes = p.flag("v", false)?;
    if p.flag("link", false)? {
        return Err(ApiError::bad_request("links are not supported by barge"));
    }
    s.blocking(move |e| {
        let rec = engine(e.db.find(&id))?;
        if !force && e.status(&rec).state.is_active() {
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                rec.name
            )));
        }
        engine(e.remove(&rec.id, force, volumes))?;
        Ok(status(StatusCode::NO_CONTENT))
    })
    .await
}

/// `POST /containers/prune?filters=`: every stopped container (matching docker's prune
/// filters: until, label, label!) goes.
pub async fn prune(State(s): State<AppState>, p: Params) -> ApiResult<Json<serde_json::Value>> {
    let filters = match p.get("filters").filter(|f| !f.is_empty()) {
        Some(f) => engine(barge_engine::filters::Filters::parse_json(f))?,
        None => Default::default(),
    };
    let filter = engine(barge_engine::prune::PruneFilter::new(&filters))?;
    s.blocking(move |e| {
        let r = engine(e.prune_containers_matching(&filter))?;
        Ok(Json(
            json!({ "ContainersDeleted": r.deleted, "SpaceReclaimed": r.space_reclaimed }),
        ))
    })
    .await
}
