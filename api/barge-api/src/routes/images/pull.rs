//! `POST /images/create`: `fromImage` pulls from a registry with docker's JSON progress
//! stream; `fromSrc=-` imports the request body as a one-layer image.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::response::Response;
use barge_engine::pull::{PullOptions, PullProgress};
use barge_engine::registry::proto::{Credentials, PullEvent};
use barge_image::reference::ImageRef;
use serde_json::json;

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
    ImageRef::parse(&name)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format: {name}: {e}")))?;
    let platform = p
        .get("platform")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let auth = super::registry_auth(req.headers())?.map(|(username, password)| Credentials {
        username,
        password,
        server: String::new(),
    });
    let (lines, resp) = json_lines();
    // The pull runs in the registry helper (a child that execs: the HTTP/TLS stack and the
    // pull's buffers stay out of the daemon), to its end even if the client goes away (a cut
    // pull would only be resumed later); its messages then go nowhere.
    let engine = s.engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut last: HashMap<String, String> = HashMap::new();
        let mut on_event = |ev: PullEvent| {
            // Repeated states are sent once; byte counts always.
            if ev.current.is_none() {
                if last.get(&ev.id).is_some_and(|s| *s == ev.status) {
                    return;
                }
                last.insert(ev.id.clone(), ev.status.clone());
            }
            let detail = match (ev.current, ev.total) {
                (Some(c), Some(t)) => json!({"current": c, "total": t}),
                (Some(c), None) => json!({"current": c}),
                _ => json!({}),
            };
            lines.send(&json!({"status": ev.status, "progressDetail": detail, "id": ev.id}));
        };
        let mut opts = PullOptions {
            platform,
            insecure: false,
            auth,
            progress: PullProgress::Events(&mut on_event),
        };
        match engine.pull(&name, &mut opts) {
            Ok(pulled) => {
                lines.send(&json!({"status": format!("Digest: {}", pulled.digest)}));
                lines.send(&json!({"status": format!("Status: {}", pulled.status())}));
            }
            Err(e) => {
                lines.send(&Lines::error_value(&e.to_string()));
            }
        }
    });
    Ok(resp)
}
