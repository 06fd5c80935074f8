//! docker's `X-Registry-Auth` header: base64url of a JSON `AuthConfig` (`username`,
//! `password`, `serveraddress`, `identitytoken`). The CLI sends it on every pull, often as
//! `{}` when it has no credentials.

use axum::http::HeaderMap;
use base64::Engine as _;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

/// docker's AuthConfig, as the `/auth` body and inside `X-Registry-Auth`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    #[serde(alias = "serveraddress")]
    pub serveraddress: String,
    pub identitytoken: String,
    pub auth: String,
}

impl AuthConfig {
    /// User and password, from the fields or from `auth` (base64 of `user:password`).
    pub fn credentials(&self) -> Option<(String, String)> {
        if !self.username.is_empty() || !self.password.is_empty() {
            return Some((self.username.clone(), self.password.clone()));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }
}

/// Decode base64 as docker clients write it (URL-safe, padded or not; some send standard).
fn decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    URL_SAFE
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .ok()
}

/// The credentials of `X-Registry-Auth`, if it carries any. An identity token (OAuth
/// refresh token) is refused clearly: barge's registry client speaks basic credentials.
pub fn registry_auth(headers: &HeaderMap) -> ApiResult<Option<(String, String)>> {
    let Some(v) = headers.get("X-Registry-Auth") else {
        return Ok(None);
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Registry-Auth: not ASCII"))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let raw = decode(text)
        .ok_or_else(|| ApiError::bad_request("X-Registry-Auth: not base64 (URL-safe)"))?;
    let cfg: AuthConfig = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("X-Registry-Auth: invalid JSON: {e}")))?;
    if !cfg.identitytoken.is_empty() && cfg.credentials().is_none() {
        return Err(ApiError::bad_request(
            "X-Registry-Auth: identity tokens are not supported; log in with a user and password",
        ));
    }
    Ok(cfg.credentials())
}

/// docker's `X-Registry-Config` (sent on `POST /build`): base64 JSON of registry →
/// `AuthConfig`. Each entry with credentials, as `(registry, user, password)`.
pub fn registry_config(headers: &HeaderMap) -> ApiResult<Vec<(String, String, String)>> {
    let Some(v) = headers.get("X-Registry-Config") else {
        return Ok(Vec::new());
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Registry-Config: not ASCII"))?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let raw = decode(text)
        .ok_or_else(|| ApiError::bad_request("X-Registry-Config: not base64 (URL-safe)"))?;
    let map: std::collections::BTreeMap<String, AuthConfig> = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("X-Registry-Config: invalid JSON: {e}")))?;
    Ok(map
        .into_iter()
        .filter_map(|(server, cfg)| cfg.credentials().map(|(u, p)| (server, u, p)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(registry_auth(&h).unwrap(), None);
        h.insert("X-Registry-Auth", "e30=".parse().unwrap());
        assert_eq!(registry_auth(&h).unwrap(), None);
        let json = r#"{"username":"u","password":"p?>","serveraddress":"r"}"#;
        let enc = base64::engine::general_purpose::URL_SAFE.encode(json);
        h.insert("X-Registry-Auth", enc.parse().unwrap());
        assert_eq!(
            registry_auth(&h).unwrap(),
            Some(("u".to_string(), "p?>".to_string()))
        );
        h.insert("X-Registry-Auth", "!!".parse().unwrap());
        assert!(registry_auth(&h).is_err());
        // X-Registry-Config: a map of registries.
        let cfg =
            r#"{"r.local:5000":{"username":"u","password":"p"},"https://index.docker.io/v1/":{}}"#;
        let enc = base64::engine::general_purpose::URL_SAFE.encode(cfg);
        h.insert("X-Registry-Config", enc.parse().unwrap());
        assert_eq!(
            registry_config(&h).unwrap(),
            vec![("r.local:5000".to_string(), "u".to_string(), "p".to_string())]
        );
        h.insert("X-Registry-Config", "e30".parse().unwrap());
        assert_eq!(registry_config(&h).unwrap(), vec![]);
        h.insert("X-Registry-Config", "W10".parse().unwrap());
        assert!(registry_config(&h).is_err(), "a JSON array is refused");
    }
}
