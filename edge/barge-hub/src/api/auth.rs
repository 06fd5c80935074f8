//! Every request needs `Authorization: Bearer <admin token>`; the token's SHA-256 must
//! equal `pki/admin-token` (compared in constant time), or the dashboard's session cookie
//! ([`crate::dashboard::session`]; with its CSRF header when the method changes state).
//! 401 otherwise.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use barge_edge_proto::token::sha256_hex;

use super::error::ApiError;
use super::{store, Api};

/// `a == b` without an early exit on the first difference.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin token's hash, read from etcd once and then kept (it never changes).
pub(crate) async fn admin_hash(api: &Api) -> Result<String, ApiError> {
    if let Some(h) = api.admin_hash.get() {
        return Ok(h.clone());
    }
    let key = format!("{}pki/admin-token", api.prefix);
    match store::get_raw(api, &key).await? {
        Some((v, _)) => {
            let h = String::from_utf8_lossy(&v).trim().to_ascii_lowercase();
            let _ = api.admin_hash.set(h.clone());
            Ok(h)
        }
        None => Err(ApiError::unauthorized(
            "the fleet has no admin token yet (the hub makes it on its first start)",
        )),
    }
}

/// The bearer token of a request, if any.
pub fn bearer(req: &Request) -> Option<&str> {
    bearer_of(req.headers())
}

/// The bearer token in `Authorization`, if any (tunnels forwarded to another hub carry it on).
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?;
    let v = v.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub async fn require_admin(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let Some(token) = bearer(&req) else {
        return match crate::dashboard::session::check(&api, req.method(), req.headers()).await {
            Ok(_) => next.run(req).await,
            Err(e) => e.into_response(),
        };
    };
    let want = match admin_hash(&api).await {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    if !ct_eq(sha256_hex(token.as_bytes()).as_bytes(), want.as_bytes()) {
        tracing::warn!(
            "fleet API: {} {}: bad admin token",
            req.method(),
            req.uri().path()
        );
        return ApiError::unauthorized("the bearer token is not the fleet's admin token")
            .into_response();
    }
    next.run(req).await
}

/// Whether `token` is the fleet's admin token (the dashboard's login form).
pub async fn is_admin_token(api: &Api, token: &str) -> Result<bool, ApiError> {
    let want = admin_hash(api).await?;
    Ok(ct_eq(
        sha256_hex(token.trim().as_bytes()).as_bytes(),
        want.as_bytes(),
    ))
}
