//! Dashboard sessions: the login form trades the admin token for a random session id in an
//! `HttpOnly; SameSite=Strict` cookie. Only the id's SHA-256 is stored, in etcd under
//! `ui/sessions/<sha256>` attached to a lease of [`TTL_SECS`], so the cookie works on every
//! hub of the fleet and logout (deleting the key) ends it everywhere. Requests that change
//! state with a cookie must carry [`CSRF_HEADER`] = [`csrf_token`] of the session.

use axum::http::HeaderMap;
use barge_edge_proto::token::sha256_hex;
use etcd_client::PutOptions;

use crate::api::auth::ct_eq;
use crate::api::error::{self, ApiError, ApiResult};
use crate::api::Api;

/// The session cookie's name.
pub const COOKIE: &str = "barge_session";
/// The header the page's state-changing `fetch` calls carry.
pub const CSRF_HEADER: &str = "x-barge-csrf";
/// A session lasts this long after login.
pub const TTL_SECS: i64 = 12 * 3600;

fn key(api: &Api, id: &str) -> String {
    format!("{}ui/sessions/{}", api.prefix, sha256_hex(id.as_bytes()))
}

/// Start a session: store its hash under a fresh lease and return the id (cookie value).
pub async fn create(api: &Api) -> ApiResult<String> {
    let id: String = crate::api::random_bytes::<32>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut c = api.etcd.clone();
    let lease = c
        .lease_grant(TTL_SECS, None)
        .await
        .map_err(|e| error::etcd("grant a dashboard session lease", e))?
        .id();
    let k = key(api, &id);
    let v = serde_json::json!({"created": barge_util::time::now_rfc3339()}).to_string();
    c.put(k.as_str(), v, Some(PutOptions::new().with_lease(lease)))
        .await
        .map_err(|e| error::etcd(&format!("put {k}"), e))?;
    Ok(id)
}

/// Whether `id` is a live session of the fleet.
pub async fn valid(api: &Api, id: &str) -> ApiResult<bool> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(false);
    }
    let k = key(api, id);
    let resp = api
        .etcd
        .kv_client()
        .get(k.as_str(), None)
        .await
        .map_err(|e| error::etcd(&format!("get {k}"), e))?;
    Ok(!resp.kvs().is_empty())
}

/// End a session (logout).
pub async fn delete(api: &Api, id: &str) -> ApiResult<()> {
    let k = key(api, id);
    api.etcd
        .kv_client()
        .delete(k.as_str(), None)
        .await
        .map_err(|e| error::etcd(&format!("delete {k}"), e))?;
    Ok(())
}

/// The session cookie of a request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
}

/// The CSRF token of a session (derived from its id: the page gets it, a cross-site form
/// cannot read it).
pub fn csrf_token(id: &str) -> String {
    sha256_hex(format!("barge-dashboard-csrf:{id}").as_bytes())
}

/// The cookie that sets a session. `secure` when the API is served over https (the default),
/// so that the browser never sends the session over plain HTTP; a hub run with
/// `--api-insecure-http` cannot set it (browsers drop `Secure` cookies from http origins).
pub fn set_cookie(id: &str, secure: bool) -> String {
    cookie_header(id, TTL_SECS, secure)
}

/// The cookie that clears it (with the same attributes as the one that set it).
pub fn clear_cookie(secure: bool) -> String {
    cookie_header("", 0, secure)
}

fn cookie_header(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}")
}

/// A request authenticated by cookie: the session id. Err(401) when the cookie is missing,
/// forged or expired; state-changing methods also need the CSRF header.
pub async fn check(
    api: &Api,
    method: &axum::http::Method,
    headers: &HeaderMap,
) -> ApiResult<String> {
    let Some(id) = cookie(headers) else {
        return Err(ApiError::unauthorized(
            "missing Authorization: Bearer <admin token> (or a dashboard session cookie)",
        ));
    };
    if !valid(api, &id).await? {
        return Err(ApiError::unauthorized(
            "the dashboard session is unknown or expired; log in again at /ui/login",
        ));
    }
    let safe = matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    if !safe {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct_eq(sent.as_bytes(), csrf_token(&id).as_bytes()) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "Forbidden",
                format!("{method} with a session cookie needs the {CSRF_HEADER} header of the dashboard page"),
            ));
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=b; barge_session=abc ; c=d".parse().unwrap(),
        );
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        assert_ne!(csrf_token("x"), csrf_token("y"));
        assert!(set_cookie("x", false).contains("HttpOnly; SameSite=Strict"));
        assert!(!set_cookie("x", false).contains("Secure"));
        assert!(set_cookie("x", true).ends_with("; Secure"));
        assert!(clear_cookie(true).contains("Max-Age=0; Secure"));
    }
}
