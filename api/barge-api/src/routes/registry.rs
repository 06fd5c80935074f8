//! `POST /auth` (check credentials against a registry, as `docker login` asks the daemon)
//! and `GET /distribution/NAME/json` (what the registry offers for a name, without pulling).

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use barge_engine::registry::proto::Credentials;
use barge_image::reference::ImageRef;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::routes::images::{registry_auth, AuthConfig};
use crate::routes::params::json_body;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth", post(auth))
        .route("/distribution/{*rest}", get(distribution))
}

/// The registry host of docker's `serveraddress` (`https://index.docker.io/v1/`,
/// `http://127.0.0.1:5000`, `127.0.0.1:5000`).
fn registry_host(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

async fn auth(State(s): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let cfg: AuthConfig = json_body(&body, "auth")?;
    let Some((user, password)) = cfg.credentials() else {
        return Err(ApiError::bad_request(
            "auth: username and password are required (identity tokens are not supported)",
        ));
    };
    let server = registry_host(&cfg.serveraddress);
    // Checked by the registry helper: the HTTP/TLS client never runs in the daemon.
    let who = server.clone();
    s.blocking(move |e| {
        e.login_check(&who, &user, &password, false)
            .map_err(|err| match err.kind() {
                barge_engine::error::ErrorKind::Unauthorized => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    format!("login attempt to {who} failed with status: 401 Unauthorized ({err})"),
                ),
                _ => ApiError::internal(format!("login to {who}: {err}")),
            })
    })
    .await?;
    Ok(Json(json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
}

async fn distribution(
    State(s): State<AppState>,
    Path(rest): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let Some(name) = rest.strip_suffix("/json").filter(|n| !n.is_empty()) else {
        return Err(ApiError::not_found(format!(
            "page not found: GET /distribution/{rest}"
        )));
    };
    let name = name.to_string();
    ImageRef::parse(&name)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format: {name}: {e}")))?;
    let auth = registry_auth(req.headers())?.map(|(username, password)| Credentials {
        username,
        password,
        server: String::new(),
    });
    let (descriptor, platforms) = s
        .blocking(move |e| {
            e.describe(&name, auth).map_err(|err| match err.kind() {
                barge_engine::error::ErrorKind::NotFound => {
                    ApiError::not_found(format!("manifest for {name} not found: manifest unknown"))
                }
                _ => ApiError::from(err),
            })
        })
        .await?;
    Ok(Json(json!({"Descriptor": descriptor, "Platforms": platforms})).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_addresses() {
        assert_eq!(
            super::registry_host("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(
            super::registry_host("http://127.0.0.1:5000"),
            "127.0.0.1:5000"
        );
        assert_eq!(super::registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
