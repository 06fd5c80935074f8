//! `GET /containers/json` (list with all, limit, size, filters), `GET /containers/{id}/json`
//! (inspect) and `GET /containers/{id}/top`: docker's documents from the engine's
//! docker-format module.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Json;
use barge_engine::docker;
use barge_engine::list::ListOptions;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::routes::params::Params;
use crate::state::{engine, AppState};

pub async fn list(State(s): State<AppState>, p: Params) -> ApiResult<Response> {
    let filters = match p.get("filters").filter(|f| !f.is_empty()) {
        Some(f) => engine(barge_engine::filters::Filters::parse_json(f))?,
        None => Default::default(),
    };
    let limit = p.number::<i64>("limit")?.unwrap_or(0).max(0) as usize;
    let opts = ListOptions {
        all: p.flag("all", false)?,
        limit,
        latest: false,
        filters,
    };
    let size = p.flag("size", false)?;
    let lists = s.lists.clone();
    s.blocking(move |e| {
        let now = docker::time::now();
        let mut body = Vec::with_capacity(1024);
        body.push(b'[');
        let mut first = true;
        engine(lists.list(e, &opts, |l| {
            if !first {
                body.push(b',');
            }
            first = false;
            let extra = if size {
                format!(",\"SizeRw\":{},\"SizeRootFs\":0", e.container_size_rw(l.id))
            } else {
                String::new()
            };
            l.write_json(&mut body, now, &extra);
        }))?;
        body.push(b']');
        let mut r = Response::new(Body::from(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(r)
    })
    .await
}

pub async fn inspect(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let size = p.flag("size", false)?;
    s.blocking(move |e| {
        let rec = engine(e.db.find(&id))?;
        let st = e.status(&rec);
        let mut v = docker::container::inspect(e, &rec, &st);
        if size {
            v["SizeRw"] = json!(e.container_size_rw(&rec.id));
            v["SizeRootFs"] = json!(0);
        }
        Ok(Json(v))
    })
    .await
}

/// `GET /containers/{id}/top?ps_args=`: the host's `ps` columns for the container's
/// processes (`ps` is a child that execs at once).
pub async fn top(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let ps_args: Vec<String> = p
        .get("ps_args")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    s.blocking(move |e| {
        let t = engine(e.top(&id, &ps_args))?;
        Ok(Json(
            json!({ "Titles": t.titles, "Processes": t.processes }),
        ))
    })
    .await
}
