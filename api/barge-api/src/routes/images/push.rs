//! `POST /images/{name}/push?tag=T`: push a stored image to its registry with docker's JSON
//! progress stream ("The push refers to repository [...]", per layer "Preparing",
//! "Pushing" with byte counts, "Pushed", "Layer already exists", "Mounted from REPO"), the
//! closing `TAG: digest: D size: N` and the `aux` message with `Tag`/`Digest`/`Size`;
//! a failure is the stream's `errorDetail`. Credentials come from `X-Registry-Auth` (as
//! `docker login` gave them to the CLI), else from `barge login`'s store.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::response::Response;
use barge_engine::pull::PullProgress;
use barge_engine::push::PushOptions;
use barge_engine::registry::proto::{Credentials, PullEvent};
use barge_image::reference::ImageRef;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::routes::transfer::{json_lines, Lines};
use crate::state::AppState;

pub async fn push(
    s: State<AppState>,
    name: String,
    p: Params,
    req: Request,
) -> ApiResult<Response> {
    let tag = p.get("tag").unwrap_or("");
    let local = if tag.is_empty() {
        name.clone()
    } else {
        format!("{name}:{tag}")
    };
    ImageRef::parse(&local)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format: {local}: {e}")))?;
    let auth = super::registry_auth(req.headers())?.map(|(username, password)| Credentials {
        username,
        password,
        server: String::new(),
    });
    // Not stored: docker's 404, before the stream starts.
    let engine = s.engine.clone();
    let probe = local.clone();
    let stored = tokio::task::spawn_blocking(move || engine.images.resolve(&probe).is_ok())
        .await
        .map_err(|e| ApiError::internal(format!("push {local}: {e}")))?;
    if !stored {
        return Err(ApiError::not_found(format!(
            "An image does not exist locally with the tag: {}",
            local
        )));
    }
    let (lines, resp) = json_lines();
    // Like a pull, the push runs in the registry helper to its end even if the client goes.
    let engine = s.engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut last: HashMap<String, String> = HashMap::new();
        let mut on_event = |ev: PullEvent| send_event(&lines, &mut last, ev);
        let mut opts = PushOptions {
            insecure: false,
            auth,
            progress: PullProgress::Events(&mut on_event),
        };
        match engine.push(&local, None, &mut opts) {
            Ok(pushed) => {
                lines.send(&json!({"status": pushed.status()}));
                lines.send(&json!({
                    "progressDetail": {},
                    "aux": {"Tag": pushed.tag, "Digest": pushed.digest, "Size": pushed.size},
                }));
            }
            Err(e) => {
                lines.send(&Lines::error_value(&e.to_string()));
            }
        }
    });
    Ok(resp)
}

/// One progress message; a repeated state is sent once, byte counts always.
fn send_event(lines: &Lines, last: &mut HashMap<String, String>, ev: PullEvent) {
    if ev.current.is_none() {
        if last.get(&ev.id).is_some_and(|s| *s == ev.status) {
            return;
        }
        last.insert(ev.id.clone(), ev.status.clone());
    }
    if ev.id.is_empty() {
        lines.send(&json!({"status": ev.status}));
        return;
    }
    let detail = match (ev.current, ev.total) {
        (Some(c), Some(t)) => json!({"current": c, "total": t}),
        (Some(c), None) => json!({"current": c}),
        _ => json!({}),
    };
    lines.send(&json!({"status": ev.status, "progressDetail": detail, "id": ev.id}));
}
