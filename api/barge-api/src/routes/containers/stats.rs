//! `GET /containers/{id}/stats`.

use axum::extract::{Path, State};
use axum::response::Response;

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::state::AppState;

pub async fn stats(
    State(_s): State<AppState>,
    Path(_id): Path<String>,
    _p: Params,
) -> ApiResult<Response> {
    Err(ApiError::not_implemented("stats: not served yet"))
}
