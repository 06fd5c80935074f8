//! `GET /containers/{id}/changes` and `GET /containers/{id}/export`.

use axum::extract::{Path, State};
use axum::response::Response;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn changes(State(_s): State<AppState>, Path(_id): Path<String>) -> ApiResult<Response> {
    Err(ApiError::not_implemented("changes: not served yet"))
}

pub async fn export(State(_s): State<AppState>, Path(_id): Path<String>) -> ApiResult<Response> {
    Err(ApiError::not_implemented("export: not served yet"))
}
