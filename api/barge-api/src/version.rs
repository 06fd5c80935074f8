//! API version negotiation as dockerd does it: every path may carry a `/vX.Y` prefix; a
//! version newer than ours or older than the oldest we serve is refused with docker's
//! message; the version a request asked for travels in its extensions.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri};

/// The API version barge speaks (Docker Engine 27's), and the oldest it accepts.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";

/// The version a request asked for (`/v1.41/...`), or ours when unversioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
    pub fn current() -> ApiVersion {
        ApiVersion::parse(API_VERSION).unwrap_or(ApiVersion(1, 47))
    }
    pub fn min() -> ApiVersion {
        ApiVersion::parse(MIN_API_VERSION).unwrap_or(ApiVersion(1, 24))
    }
    /// Whether the client asked for at least `major.minor`.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= ApiVersion(major, minor)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Split `/v1.41/containers/json` into the version and `/containers/json`.
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (v, tail) = rest.split_at(end);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some((v, if tail.is_empty() { "/" } else { tail }))
}

/// Strip the version prefix before routing; an unsupported version is answered at once.
pub fn negotiate(mut req: Request<Body>) -> Result<Request<Body>, Box<Response<Body>>> {
    let path = req.uri().path().to_string();
    let version = match split_version(&path) {
        Some((v, tail)) => {
            let Some(ver) = ApiVersion::parse(v) else {
                return Err(refuse(format!("invalid API version {v:?}")));
            };
            if ver > ApiVersion::current() {
                return Err(refuse(format!(
                    "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
                )));
            }
            if ver < ApiVersion::min() {
                return Err(refuse(format!(
                    "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                )));
            }
            let pq = match req.uri().query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail.to_string(),
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = pq.parse().ok();
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
            ver
        }
        None => ApiVersion::current(),
    };
    req.extensions_mut().insert(version);
    Ok(req)
}

fn refuse(message: String) -> Box<Response<Body>> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Box::new(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            Some(("1.41", "/containers/json"))
        );
        assert_eq!(split_version("/v1.41"), Some(("1.41", "/")));
        assert_eq!(split_version("/volumes"), None);
        assert_eq!(split_version("/containers/json"), None);
        assert!(ApiVersion(1, 41) < ApiVersion(1, 47));
        assert!(ApiVersion(1, 9) < ApiVersion(1, 10));
    }
}
