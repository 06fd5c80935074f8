//! `POST /images/NAME/tag`, `DELETE /images/NAME`, `POST /images/prune`, and the two
//! registry operations barge does not serve yet: search (no index reachable) and push.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Request, State};
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
    let mut all = false;
    let mut labels = Vec::new();
    let mut not_labels = Vec::new();
    let mut until: Option<i64> = None;
    for (k, vals) in p.filters()? {
        match k.as_str() {
            "dangling" => all = vals.iter().any(|v| v == "false" || v == "0"),
            "label" => labels.extend(vals),
            "label!" => not_labels.extend(vals),
            "until" => {
                let v = vals.into_iter().next().unwrap_or_default();
                until = Some(until_secs(&v)?);
            }
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    let report = s
        .blocking(move |e| {
            let store = e.images.clone();
            let keep = |rec: &barge_image::meta::ImageRecord| -> bool {
                let Ok(img) = store.image(rec) else {
                    return false;
                };
                let lbl: BTreeMap<String, String> = img
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.labels().clone())
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let created = img
                    .config
                    .created()
                    .as_deref()
                    .and_then(barge_engine::docker::time::parse_rfc3339)
                    .unwrap_or(0);
                !labels.iter().all(|l| super::list::label_matches(l, &lbl))
                    || not_labels
                        .iter()
                        .any(|l| super::list::label_matches(l, &lbl))
                    || until.is_some_and(|u| created >= u)
            };
            Ok(barge_image::prune::prune_images(&e.images, all, &keep)?)
        })
        .await?;
    Ok(Json(json!({
        "ImagesDeleted": report.removed.iter().map(removed_json).collect::<Vec<_>>(),
        "SpaceReclaimed": report.gc.bytes,
    }))
    .into_response())
}

/// docker's `until`: unix seconds, RFC 3339, or a duration before now (`10m`, `24h`).
pub fn until_secs(v: &str) -> ApiResult<i64> {
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    if let Some(t) = barge_engine::docker::time::parse_rfc3339(v) {
        return Ok(t);
    }
    let (num, unit) = v.split_at(v.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: i64 = num
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid until value {v:?}")))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(ApiError::bad_request(format!("invalid until value {v:?}"))),
    };
    Ok(barge_image::meta::now() - n * mult)
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

pub async fn push(name: &str, _req: Request) -> ApiResult<Response> {
    Err(ApiError::not_implemented(format!(
        "push {name}: barge cannot push images yet (it comes with the image build support)"
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn until_forms() {
        assert_eq!(super::until_secs("1700000000").unwrap(), 1700000000);
        assert!(super::until_secs("10m").unwrap() < barge_image::meta::now());
        assert!(super::until_secs("soon").is_err());
    }
}
