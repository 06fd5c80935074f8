//! `POST /images/create`: `fromImage` pulls from a registry with docker's JSON progress
//! stream; `fromSrc=-` imports the request body as a one-layer image.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::Response;
use barge_image::platform::Platform;
use barge_image::progress::{Event, LayerState, Progress};
use barge_image::pull::PullOptions;
use barge_image::reference::ImageRef;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::routes::transfer::{json_lines, Lines};
use crate::state::AppState;

pub async fn create(s: State<AppState>, p: Params, req: Request) -> ApiResult<Response> {
    if p.get("fromSrc").is_some_and(|v| !v.is_empty()) {
        return super::archive::import(s, p, req).await;
    }
    let Some(from) = p.get("fromImage").filter(|v| !v.is_empty()) else {
        return Err(ApiError::bad_request(
            "images/create: give fromImage (pull) or fromSrc (import)",
        ));
    };
    let tag = p.get("tag").unwrap_or("");
    // `tag` may be a tag or a digest; an image named with a tag already keeps it.
    let name = if tag.is_empty() {
        from.to_string()
    } else if tag.contains(':') {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let reference = ImageRef::parse(&name)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format: {name}: {e}")))?;
    let platform = match p.get("platform").filter(|v| !v.is_empty()) {
        Some(pl) => Platform::parse(pl).map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => Platform::host(),
    };
    let credentials = super::registry_auth(req.headers())?;
    let config = barge_image::config::Config::load(&s.engine.opts.config)?;
    let store = s.engine.images.clone();
    let (lines, resp) = json_lines();
    let opts = PullOptions {
        platform,
        insecure: false,
        credentials,
    };
    // The pull runs to its end even if the client goes away (a cut pull would only be
    // resumed later); its messages then go nowhere.
    tokio::spawn(async move {
        let repo = reference.repository().to_string();
        let tag = reference
            .tag()
            .map(str::to_string)
            .or_else(|| reference.digest().map(|d| d.to_string()))
            .unwrap_or_else(|| "latest".into());
        lines.send(&json!({"status": format!("Pulling from {repo}"), "id": tag}));
        let had = store.db.image(&reference.canonical()).ok().flatten();
        let progress = Arc::new(StreamProgress {
            lines: lines.clone(),
            last: Mutex::new(HashMap::new()),
        });
        let r = barge_image::pull::pull(store.clone(), &config, &reference, &opts, progress).await;
        match r {
            Ok(rec) => {
                lines.send(&json!({"status": format!("Digest: {}", rec.target)}));
                let fresh = had.is_none_or(|old| old.config != rec.config);
                let what = if fresh {
                    "Downloaded newer image for"
                } else {
                    "Image is up to date for"
                };
                let shown = barge_engine::docker::image::display_name(&rec.name);
                lines.send(&json!({"status": format!("Status: {what} {shown}")}));
            }
            Err(e) => {
                let msg = match &e {
                    barge_image::Error::NotFound { .. } => {
                        format!("manifest for {name} not found: {e}")
                    }
                    _ => e.to_string(),
                };
                lines.send(&Lines::error_value(&msg));
            }
        }
    });
    Ok(resp)
}

/// A pull's progress events as docker's per-layer status lines (ids are the layers' short
/// digests). Repeated states are sent once.
struct StreamProgress {
    lines: Lines,
    last: Mutex<HashMap<String, String>>,
}

impl Progress for StreamProgress {
    fn event(&self, event: Event) {
        let Event::Layer { digest, state } = event else {
            return;
        };
        let id = digest.short().to_string();
        let (status, detail): (&str, Value) = match &state {
            LayerState::Exists => ("Already exists", json!({})),
            LayerState::Waiting => ("Pulling fs layer", json!({})),
            LayerState::Downloading { done, total } => {
                ("Downloading", json!({"current": done, "total": total}))
            }
            LayerState::Resuming { from } => ("Downloading", json!({"current": from})),
            LayerState::Retrying { attempt, error } => {
                let s = format!("Retrying (attempt {attempt}): {error}");
                self.lines
                    .send(&json!({"status": s, "progressDetail": {}, "id": id}));
                return;
            }
            LayerState::Extracting => ("Extracting", json!({})),
            LayerState::Complete => ("Pull complete", json!({})),
        };
        if !matches!(state, LayerState::Downloading { .. }) {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.get(&id).is_some_and(|s| s == status) {
                return;
            }
            last.insert(id.clone(), status.to_string());
        }
        self.lines
            .send(&json!({"status": status, "progressDetail": detail, "id": id}));
    }
}
