//! docker's endpoints, one module per resource. Each module's `routes()` adds its paths;
//! handlers parse the request, call the engine through [`AppState::blocking`] and shape
//! docker's answer.

pub mod archive;
pub mod build;
pub mod containers;
pub mod exec;
pub mod images;
pub mod networks;
pub mod params;
pub mod registry;
pub mod system;
pub mod transfer;
pub mod volumes;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(build::routes())
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(archive::routes())
        .merge(images::routes())
        .merge(volumes::routes())
        .merge(networks::routes())
        .merge(registry::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(req: axum::extract::Request) -> impl IntoResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {} {}", req.method(), req.uri().path()),
    )
}
