//! `POST /images/NAME/tag`, `DELETE /images/NAME`, `POST /images/prune`, and the two
//! registry operations barge does not serve yet: search (no index reachable) and push.

use crate::state::engine;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use barge_image::store::Removed;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::server::status;
use crate::state::AppState;

pub async fn tag(State(s): State<AppState>, name: String, p: Params) -> ApiResult<Response> {
    let repo = p.get("repo").unwrap_or("").to_string();
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "tag: repository name (repo=) is required",
        ));
    }
    let target = match p.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo,
    };
    if barge_image::reference::ImageRef::parse(&target).is_err() {
        return Err(ApiError::bad_request(format!(
            "invalid reference format: {target}"
        )));
    }
    s.blocking(move |e| {
        e.images
            .resolve(&name)
            .map_err(|err| super::list::no_such_image(&name, err))?;
        e.images.tag(&name, &target)?;
        Ok(())
    })
    .await?;
    Ok(status(StatusCode::CREATED))
}

fn removed_json(r: &Removed) -> Value {
    match r {
        Removed::Untagged(n) => json!({"Untagged": barge_engine::docker::image::display_name(n)}),
        Removed::Deleted(d) => json!({"Deleted": d.to_string()}),
    }
}

pub async fn delete(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let force = p.flag("force", false)?;
    p.flag("noprune", false)?;
    let done = s
        .blocking(move |e| {
            e.images
                .resolve(&name)
                .map_err(|err| super::list::no_such_image(&name, err))?;
            match e.images.remove(&name, force) {
                Ok(done) => Ok(done),
                Err(barge_image::Error::InUse { by, .. }) => Err(ApiError::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - {by}"
                ))),
                Err(err) => Err(err.into()),
            }
        })
        .await?;
    Ok(Json(done.iter().map(removed_json).collect::<Vec<_>>()).into_response())
}

/// `POST /images/prune`: dangling images, or with `dangling=false` every unused one;
/// `label`/`label!` and `until` filters spare images.
pub async fn prune(State(s): State<AppState>, p: Params) -> ApiResult<Response> {
    let filters = engine(barge_engine::filters::Filters::parse_json(
        p.get("filters").unwrap_or(""),
    ))?;
    let report = s
        .blocking(move |e| {
            let f = engine(barge_engine::prune::PruneFilter::new(&filters))?;
            // `dangling=false` is `docker image prune -a`: every image no container uses.
            let all = engine(f.dangling())? == Some(false);
            engine(barge_engine::prune::prune_images_matching(
                &e.images, all, &f,
            ))
        })
        .await?;
    Ok(Json(json!({
        "ImagesDeleted": report.removed.iter().map(removed_json).collect::<Vec<_>>(),
        "SpaceReclaimed": report.space_reclaimed,
    }))
    .into_response())
}

/// `GET /images/search`: barge has no index client; say whether one would be reachable.
pub async fn search(p: Params) -> ApiResult<Response> {
    let term = p.get("term").unwrap_or("").to_string();
    const INDEX: &str = "index.docker.io:443";
    let reach = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(INDEX),
    )
    .await;
    match reach {
        Ok(Ok(_)) => Err(ApiError::not_implemented(format!(
            "search {term:?}: barge does not search registry indexes yet"
        ))),
        Ok(Err(e)) => Err(ApiError::internal(format!(
            "search {term:?}: no registry index is reachable ({INDEX}: {e})"
        ))),
        Err(_) => Err(ApiError::internal(format!(
            "search {term:?}: no registry index is reachable ({INDEX}: timed out after 3s)"
        ))),
    }
}
