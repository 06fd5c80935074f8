//! Image archives: `GET /images/get` and `/images/NAME/get` (docker save, streamed as it is
//! written), `POST /images/load` (the body streamed into the store, never held whole) and the
//! import of `POST /images/create?fromSrc=-`.

use std::io::BufReader;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use barge_image::archive::{ArchiveFormat, ImportOptions};
use barge_image::platform::Platform;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::routes::transfer::{body_reader, stream_response};
use crate::state::AppState;

pub async fn get_many(s: State<AppState>, p: Params) -> ApiResult<Response> {
    let names: Vec<String> = p.all("names").into_iter().map(str::to_string).collect();
    get(s, names).await
}

pub async fn get(State(s): State<AppState>, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::bad_request("images/get: no image named (names=)"));
    }
    let engine = s.engine.clone();
    stream_response(
        vec![("Content-Type", "application/x-tar".to_string())],
        move |w| {
            // Every name is resolved first: an unknown one is a 404 before any byte.
            for n in &names {
                engine
                    .images
                    .resolve(n)
                    .map_err(|e| super::list::no_such_image(n, e))?;
            }
            barge_image::archive::save(&engine.images, &names, ArchiveFormat::DockerArchive, w)?;
            Ok(())
        },
    )
    .await
}

/// The JSON message stream `load` and `import` answer with, already complete.
fn messages(lines: &[Value]) -> Response {
    let mut body = String::new();
    for l in lines {
        body.push_str(&l.to_string());
        body.push('\n');
    }
    ([("Content-Type", "application/json")], body).into_response()
}

pub async fn load(State(s): State<AppState>, p: Params, req: Request) -> ApiResult<Response> {
    // Only the result lines are sent, so quiet and not quiet answer alike.
    p.flag("quiet", false)?;
    let reader = body_reader(req.into_body());
    let records = s
        .blocking(move |e| {
            let config = barge_image::config::Config::load(&e.opts.config)?;
            Ok(barge_image::archive::load(
                &e.images,
                &config,
                BufReader::with_capacity(1 << 20, reader),
                &barge_image::progress::Quiet,
            )?)
        })
        .await?;
    let lines: Vec<Value> = records
        .iter()
        .map(|rec| {
            let text = if rec.name.starts_with("<none>") {
                format!("Loaded image ID: {}\n", rec.config)
            } else {
                format!(
                    "Loaded image: {}\n",
                    barge_engine::docker::image::display_name(&rec.name)
                )
            };
            json!({ "stream": text })
        })
        .collect();
    Ok(messages(&lines))
}

/// `fromSrc=-`: the body is the rootfs tarball; `repo`, `tag`, `changes`, `message`,
/// `platform` as `docker import` sends them.
pub async fn import(State(s): State<AppState>, p: Params, req: Request) -> ApiResult<Response> {
    if p.get("fromSrc") != Some("-") {
        return Err(ApiError::bad_request(
            "images/create: importing from a URL is not supported; send the tarball as the body (fromSrc=-)",
        ));
    }
    let repo = p.get("repo").unwrap_or("");
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "images/create: an import needs a repository name (repo=)",
        ));
    }
    let name = match p.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let opts = ImportOptions {
        changes: p.all("changes").into_iter().map(str::to_string).collect(),
        message: p
            .get("message")
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        platform: match p.get("platform").filter(|v| !v.is_empty()) {
            Some(pl) => Platform::parse(pl).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => Platform::host(),
        },
    };
    let reader = body_reader(req.into_body());
    let rec = s
        .blocking(move |e| {
            let config = barge_image::config::Config::load(&e.opts.config)?;
            Ok(barge_image::archive::import(
                &e.images,
                &config,
                BufReader::with_capacity(1 << 20, reader),
                &name,
                &opts,
            )?)
        })
        .await?;
    Ok(messages(&[json!({ "status": rec.config.to_string() })]))
}
