//! `docker cp`: `GET|HEAD|PUT /containers/ID/archive?path=`. The path's stat travels in
//! `X-Docker-Container-Path-Stat` (base64 JSON); the tar is streamed both ways, never held
//! whole. Paths resolve inside the container (see `barge_engine::archive`).

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use base64::Engine as _;

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::routes::transfer::{body_reader, stream_response};
use crate::server::status;
use crate::state::{engine, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/containers/{id}/archive",
        get(get_archive).head(head_archive).put(put_archive),
    )
}

fn path_param(p: &Params) -> ApiResult<String> {
    match p.get("path") {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(ApiError::bad_request(
            "archive: the path parameter is required",
        )),
    }
}

fn stat_header(st: &barge_engine::archive::PathStat) -> ApiResult<String> {
    let json = serde_json::to_vec(st).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(json))
}

async fn head_archive(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let path = path_param(&p)?;
    let st = s
        .blocking(move |e| {
            let o = engine(e.archive_open(&id))?;
            engine(e.archive_stat(&o, &path))
        })
        .await?;
    let mut r = status(StatusCode::OK);
    let h =
        HeaderValue::from_str(&stat_header(&st)?).map_err(|e| ApiError::internal(e.to_string()))?;
    r.headers_mut().insert("X-Docker-Container-Path-Stat", h);
    Ok(r)
}

async fn get_archive(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let path = path_param(&p)?;
    let at = path.clone();
    let (opened, st) = s
        .blocking(move |e| {
            let o = engine(e.archive_open(&id))?;
            let st = engine(e.archive_stat(&o, &at))?;
            Ok((o, st))
        })
        .await?;
    let eng = s.engine.clone();
    stream_response(
        vec![
            ("Content-Type", "application/x-tar".to_string()),
            ("X-Docker-Container-Path-Stat", stat_header(&st)?),
        ],
        move |w| engine(eng.archive_get(&opened, &path, w)),
    )
    .await
}

async fn put_archive(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    req: Request,
) -> ApiResult<Response> {
    let path = path_param(&p)?;
    let keep_kinds = p.flag("noOverwriteDirNonDir", false)?;
    p.flag("copyUIDGID", false)?;
    let reader = body_reader(req.into_body());
    s.blocking(move |e| {
        let o = engine(e.archive_open(&id))?;
        engine(e.archive_put(&o, &path, reader, keep_kinds))
    })
    .await?;
    Ok(status(StatusCode::OK))
}
