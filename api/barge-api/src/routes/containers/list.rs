//! `GET /containers/json` (list with all, limit, size, filters), `GET /containers/{id}/json`
//! (inspect) and `GET /containers/{id}/top`: docker's documents from the engine's
//! docker-format module.

use axum::extract::{Path, State};
use axum::Json;
use barge_engine::docker;
use barge_engine::list::ListOptions;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::state::{engine, AppState};

pub async fn list(State(s): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
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
    s.blocking(move |e| {
        let now = docker::time::now();
        let rows = engine(e.list_containers(&opts))?
            .into_iter()
            .map(|l| {
                let mut v = docker::list::entry(e, &l.record, &l.status, now);
                if size {
                    v["SizeRw"] = json!(0);
                    v["SizeRootFs"] = json!(0);
                }
                v
            })
            .collect();
        Ok(Json(Value::Array(rows)))
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
            v["SizeRw"] = json!(0);
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
    let ps_args = p.get("ps_args").unwrap_or("").to_string();
    let pids = s
        .blocking(move |e| {
            let rec = engine(e.db.find(&id))?;
            if !e.status(&rec).state.is_active() {
                return Err(ApiError::conflict(format!(
                    "Container {} is not running",
                    rec.id
                )));
            }
            let store = engine(e.runtime())?;
            let st = store
                .load(&rec.id)
                .map_err(|err| ApiError::from(barge_engine::Error::from(err)))?;
            st.cgroup
                .pids()
                .map_err(|err| ApiError::from(barge_engine::Error::from(err)))
        })
        .await?;
    let args: Vec<String> = if ps_args.trim().is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.split_whitespace().map(str::to_string).collect()
    };
    let out = tokio::process::Command::new("ps")
        .args(&args)
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("run ps {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(ApiError::internal(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles.iter().position(|t| *t == "PID").ok_or_else(|| {
        ApiError::bad_request(format!(
            "ps {}: its output has no PID column",
            args.join(" ")
        ))
    })?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) keeps its spaces.
        let n = titles.len();
        let mut row: Vec<String> = fields.iter().take(n - 1).map(|s| s.to_string()).collect();
        row.push(fields.get(n - 1..).map(|r| r.join(" ")).unwrap_or_default());
        procs.push(row);
    }
    Ok(Json(json!({ "Titles": titles, "Processes": procs })))
}
