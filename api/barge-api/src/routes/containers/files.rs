//! `GET /containers/{id}/changes` (from the engine's reading of the overlay upper dir) and
//! `GET /containers/{id}/export` (a tar of the root file system, written by a `tar` child
//! that execs at once, streamed as it comes).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::state::{engine, AppState};

pub async fn changes(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.blocking(move |e| {
        let list = engine(e.changes(&id))?;
        Ok(Json(Value::Array(
            list.into_iter()
                .map(|c| json!({ "Path": c.path, "Kind": c.kind as u8 }))
                .collect(),
        )))
    })
    .await
}

pub async fn export(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let rootfs = s
        .blocking(move |e| {
            let rec = engine(e.db.find(&id))?;
            engine(e.mount_rootfs(&rec.id))?;
            Ok(e.paths.rootfs(&rec.id))
        })
        .await?;
    let mut child = tokio::process::Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg("-")
        .arg(".")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ApiError::internal(format!("export {}: run tar: {e}", rootfs.display())))?;
    let Some(out) = child.stdout.take() else {
        return Err(ApiError::internal("export: tar has no stdout"));
    };
    // The child is reaped when the stream ends (or killed when the client goes).
    let stream =
        futures_util::stream::unfold((out, Some(child)), |(mut r, mut child)| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 64 * 1024];
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if let Some(mut c) = child.take() {
                        let _ = c.wait().await;
                    }
                    None
                }
                Ok(n) => {
                    buf.truncate(n);
                    Some((
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)),
                        (r, child),
                    ))
                }
            }
        });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}
