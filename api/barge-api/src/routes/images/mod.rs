//! `/images/...`: pull (and import) through `create`, list, inspect, history, tag, remove,
//! prune, save (`get`), load, search and push (its own module). Image names carry slashes
//! (`localhost:5000/team/app`), so the per-image paths are matched as one tail and split on
//! their last segment.

mod archive;
mod auth;
mod list;
mod pull;
mod push;
mod remove;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::state::AppState;

pub use auth::{registry_auth, registry_config, AuthConfig};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list::list))
        .route("/images/create", post(pull::create))
        .route("/images/load", post(archive::load))
        .route("/images/get", get(archive::get_many))
        .route("/images/search", get(remove::search))
        .route("/images/prune", post(remove::prune))
        .route(
            "/images/{*rest}",
            get(by_name_get).post(by_name_post).delete(remove::delete),
        )
}

/// `name` and the operation of `/images/NAME/OP`.
fn split_op(rest: &str) -> Option<(&str, &str)> {
    let (name, op) = rest.rsplit_once('/')?;
    (!name.is_empty()).then_some((name, op))
}

async fn by_name_get(
    s: State<AppState>,
    Path(rest): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    match split_op(&rest) {
        Some((name, "json")) => list::inspect(s, name.to_string()).await,
        Some((name, "history")) => list::history(s, name.to_string()).await,
        Some((name, "get")) => archive::get(s, vec![name.to_string()]).await,
        _ => Err(no_route("GET", &rest, p)),
    }
}

async fn by_name_post(
    s: State<AppState>,
    Path(rest): Path<String>,
    p: Params,
    req: Request,
) -> ApiResult<Response> {
    match split_op(&rest) {
        Some((name, "tag")) => remove::tag(s, name.to_string(), p).await,
        Some((name, "push")) => push::push(s, name.to_string(), p, req).await,
        _ => Err(no_route("POST", &rest, p)),
    }
}

fn no_route(method: &str, rest: &str, _: Params) -> ApiError {
    ApiError::not_found(format!("page not found: {method} /images/{rest}"))
}
