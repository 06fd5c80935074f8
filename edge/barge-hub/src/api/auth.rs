//! Every request needs one of:
//! - `Authorization: Bearer <admin token>`; the token's SHA-256 must equal `pki/admin-token`
//!   (compared in constant time);
//! - over https, a client certificate that chains to a fleet CA, is valid now and has the
//!   CN `admin:<name>`, whose name is issued and not revoked (`pki/admin-certs/<name>`,
//!   read on every request). A node certificate (`node:<name>`) gets 403. Browsers send
//!   client certificates on their own, so a request it authenticates that changes state
//!   must carry the [`CSRF_HEADER`] (a cross-site form cannot set a header);
//! - the dashboard's session cookie ([`crate::dashboard::session`]; with its CSRF header
//!   when the method changes state).
//!
//! 401 otherwise (403 for a valid certificate without the admin role).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use barge_edge_proto::token::sha256_hex;

use barge_edge_proto::keys::{self, AdminCertRecord};

use super::error::ApiError;
use super::tls::ClientCert;
use super::{store, Api};

/// The header a state-changing request authenticated by a client certificate must carry
/// (any value; the dashboard's page sends its CSRF token in it, `barge fleet` sends `1`).
pub const CSRF_HEADER: &str = crate::dashboard::session::CSRF_HEADER;

/// The admin name a request's client certificate authenticates: `Ok(None)` when it has no
/// certificate; 401 for an invalid, unknown or revoked one, 403 without the admin role or
/// (for a method that changes state) without [`CSRF_HEADER`].
pub async fn cert_admin(
    api: &Api,
    method: &axum::http::Method,
    headers: &axum::http::HeaderMap,
    cert: Option<&ClientCert>,
) -> Result<Option<String>, ApiError> {
    let peer = match cert {
        None | Some(ClientCert::None) => return Ok(None),
        Some(ClientCert::Invalid(why)) => return Err(ApiError::unauthorized(why.clone())),
        Some(ClientCert::Valid(p)) => p,
    };
    let Some(name) = cert.and_then(ClientCert::admin) else {
        let what = match peer.node() {
            Some(n) => format!("a node certificate (node:{n}) has no access to the fleet API"),
            None => format!(
                "client certificate {:?} carries no admin role (CN admin:<name>)",
                peer.common_name
            ),
        };
        return Err(ApiError::forbidden(what));
    };
    let key = keys::admin_cert(&api.prefix, name);
    let rec = match store::get_raw(api, &key).await? {
        Some((v, _)) => serde_json::from_slice::<AdminCertRecord>(&v)
            .map_err(|e| ApiError::internal(format!("{key}: malformed record: {e}")))?,
        None => {
            return Err(ApiError::unauthorized(format!(
                "admin certificate {name} was not issued by this fleet's API"
            )))
        }
    };
    if let Some(at) = rec.revoked {
        return Err(ApiError::unauthorized(format!(
            "admin certificate {name} was revoked at {at}"
        )));
    }
    let safe = matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    if !safe && headers.get(CSRF_HEADER).is_none_or(|v| v.is_empty()) {
        return Err(ApiError::forbidden(format!(
            "a {method} authenticated by a client certificate needs the {CSRF_HEADER} header"
        )));
    }
    Ok(Some(name.to_string()))
}

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
        let cert = req.extensions().get::<ClientCert>();
        match cert_admin(&api, req.method(), req.headers(), cert).await {
            Ok(Some(_)) => return next.run(req).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(
                    "fleet API: {} {}: {}",
                    req.method(),
                    req.uri().path(),
                    e.message
                );
                return e.into_response();
            }
        }
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
