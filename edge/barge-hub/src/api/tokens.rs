//! `POST /api/v1/tokens` `{"ttlSeconds": N, "reusable": false}` -> `{"token": "K10..."}`: a
//! join token, one-time unless `reusable`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::Api;

/// Longest token lifetime the API grants (a year).
const MAX_TTL_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    ttl_seconds: Option<u64>,
    /// Joins any number of nodes until it expires.
    #[serde(default)]
    reusable: bool,
}

pub async fn create(State(api): State<Arc<Api>>, body: Bytes) -> ApiResult<Response> {
    let req: TokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TokenRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("token request body: {e}")))?
    };
    let ttl = req.ttl_seconds.unwrap_or(api.hub.config.token_ttl_secs);
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return Err(ApiError::bad_request(format!(
            "ttlSeconds {ttl}: must be between 1 and {MAX_TTL_SECS}"
        )));
    }
    let token = crate::tokens::create(&api.hub, Duration::from_secs(ttl), req.reusable).await?;
    let kind = if req.reusable { "reusable" } else { "one-time" };
    tracing::info!("fleet API: {kind} join token made (ttl {ttl} s)");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "ttlSeconds": ttl, "reusable": req.reusable })),
    )
        .into_response())
}
