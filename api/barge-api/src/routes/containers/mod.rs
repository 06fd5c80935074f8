//! `/containers/...`: one module per concern (create and lifecycle, attach, logs, listing and
//! inspection, stats, files); each turns docker's request into engine calls.

mod attach;
mod files;
mod lifecycle;
mod list;
mod logs;
mod stats;

use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(lifecycle::create))
        .route("/containers/json", get(list::list))
        .route("/containers/prune", post(lifecycle::prune))
        .route("/containers/{id}/json", get(list::inspect))
        .route("/containers/{id}/top", get(list::top))
        .route("/containers/{id}/start", post(lifecycle::start))
        .route("/containers/{id}/stop", post(lifecycle::stop))
        .route("/containers/{id}/restart", post(lifecycle::restart))
        .route("/containers/{id}/kill", post(lifecycle::kill))
        .route("/containers/{id}/pause", post(lifecycle::pause))
        .route("/containers/{id}/unpause", post(lifecycle::unpause))
        .route("/containers/{id}/rename", post(lifecycle::rename))
        .route("/containers/{id}/resize", post(lifecycle::resize))
        .route("/containers/{id}/update", post(lifecycle::update))
        .route("/containers/{id}/wait", post(lifecycle::wait))
        .route("/containers/{id}", delete(lifecycle::remove))
        .route("/containers/{id}/attach", post(attach::attach))
        .route("/containers/{id}/logs", get(logs::logs))
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/containers/{id}/changes", get(files::changes))
        .route("/containers/{id}/export", get(files::export))
}
