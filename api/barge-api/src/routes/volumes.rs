//! `/volumes`: list (filters dangling, name, label, driver), create (the `local` driver only),
//! inspect, remove (409 while a container uses it), prune.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::params::{json_body, Params};
use crate::server::status;
use crate::state::{engine, AppState};
use barge_engine::filters::label_matches;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

#[derive(Default)]
struct VolumeFilters {
    dangling: Option<bool>,
    names: Vec<String>,
    labels: Vec<String>,
    drivers: Vec<String>,
}

fn bool_filter(key: &str, v: &str) -> ApiResult<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(format!("invalid filter '{key}={v}'"))),
    }
}

impl VolumeFilters {
    fn parse(p: &Params) -> ApiResult<VolumeFilters> {
        let mut f = VolumeFilters::default();
        for (k, vals) in p.filters()? {
            match k.as_str() {
                "dangling" => {
                    for v in &vals {
                        f.dangling = Some(bool_filter("dangling", v)?);
                    }
                }
                "name" => f.names.extend(vals),
                "label" => f.labels.extend(vals),
                "driver" => f.drivers.extend(vals),
                other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
            }
        }
        Ok(f)
    }
}

async fn list(State(s): State<AppState>, p: Params) -> ApiResult<Response> {
    let f = VolumeFilters::parse(&p)?;
    let vols = s
        .blocking(move |e| {
            let mut out = Vec::new();
            for v in engine(e.db.volumes())? {
                // docker's name filter matches a substring.
                if !f.names.is_empty() && !f.names.iter().any(|n| v.name.contains(n.as_str())) {
                    continue;
                }
                if !f.labels.iter().all(|l| label_matches(l, &v.labels)) {
                    continue;
                }
                if !f.drivers.is_empty() && !f.drivers.iter().any(|d| d == "local") {
                    continue;
                }
                if let Some(d) = f.dangling {
                    if engine(e.volume_users(&v.name))?.is_empty() != d {
                        continue;
                    }
                }
                out.push(barge_engine::docker::volume::volume(e, &v));
            }
            Ok(out)
        })
        .await?;
    Ok(Json(json!({"Volumes": vols, "Warnings": []})).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    name: String,
    driver: String,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
    cluster_volume_spec: Option<Value>,
}

async fn create(State(s): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: CreateBody = if body.is_empty() {
        CreateBody::default()
    } else {
        json_body(&body, "volume create")?
    };
    if !matches!(req.driver.as_str(), "" | "local") {
        return Err(ApiError::bad_request(format!(
            "volume driver {:?}: barge has only the local driver",
            req.driver
        )));
    }
    if req.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "volume create: driver options (DriverOpts) are not supported by barge's local driver",
        ));
    }
    if req
        .cluster_volume_spec
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request(
            "volume create: cluster volumes are not supported",
        ));
    }
    let doc = s
        .blocking(move |e| {
            let anonymous = req.name.is_empty();
            let name = if anonymous {
                engine(barge_engine::names::new_id())?
            } else {
                req.name
            };
            let v = engine(e.volume_create(&name, req.labels.unwrap_or_default(), anonymous))?;
            Ok(barge_engine::docker::volume::volume(e, &v))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

async fn inspect(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    let doc = s
        .blocking(move |e| {
            let v = engine(e.db.volume(&name))?;
            Ok(barge_engine::docker::volume::volume(e, &v))
        })
        .await?;
    Ok(Json(doc).into_response())
}

async fn remove(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    // docker refuses a volume in use even with force; force only hides "no such volume".
    let force = p.flag("force", false)?;
    s.blocking(move |e| match e.volume_remove(&name) {
        Err(barge_engine::Error::NoSuchVolume(_)) if force => Ok(()),
        Err(barge_engine::Error::Conflict(m)) => Err(ApiError::conflict(m)),
        r => engine(r),
    })
    .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune`: unused anonymous volumes, every unused one with `all=true`;
/// `label`/`label!` filters.
async fn prune(State(s): State<AppState>, p: Params) -> ApiResult<Response> {
    let filters = engine(barge_engine::filters::Filters::parse_json(
        p.get("filters").unwrap_or(""),
    ))?;
    let report = s
        .blocking(move |e| {
            // docker's volume prune takes no until or dangling filter.
            engine(filters.check_keys(&["label", "label!", "all"]))?;
            let f = engine(barge_engine::prune::PruneFilter::new(&filters))?;
            // `all=true`: named volumes too, not only anonymous ones.
            let all = engine(f.all())?.unwrap_or(false);
            engine(e.prune_volumes_matching(all, &f))
        })
        .await?;
    Ok(Json(json!({
        "VolumesDeleted": report.deleted,
        "SpaceReclaimed": report.space_reclaimed,
    }))
    .into_response())
}
