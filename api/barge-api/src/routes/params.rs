//! Query strings and JSON bodies as docker clients send them: booleans as `1`/`true`/`0`/
//! `false`, repeated keys (`names=a&names=b`), filters as a JSON object in one parameter;
//! bodies that are not valid JSON of the expected shape refused with a 400 naming the error.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Every `key=value` of the query string, decoded, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: &str) -> Params {
        Params(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean flag: `1`, `true`, `True` are true; absent is `default`.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some("1" | "true" | "True" | "TRUE" | "yes") => Ok(true),
            Some("0" | "false" | "False" | "FALSE" | "no") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {key}: {v:?} is not a boolean"
            ))),
        }
    }

    /// A number parameter; absent is `None`.
    pub fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not a number"))
            }),
        }
    }

    /// docker's `filters` parameter: a JSON object of `key: [values]` (or the older
    /// `key: {value: true}` form), as a map of key to values.
    pub fn filters(&self) -> Result<Vec<(String, Vec<String>)>, ApiError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(Vec::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filters {raw:?}: {e}")))?;
        let obj = v.as_object().ok_or_else(|| {
            ApiError::bad_request(format!("invalid filters {raw:?}: not an object"))
        })?;
        let mut out = Vec::new();
        for (k, vals) in obj {
            let list = match vals {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>(),
                serde_json::Value::Object(m) => Some(
                    m.iter()
                        .filter(|(_, on)| on.as_bool() == Some(true))
                        .map(|(s, _)| s.clone())
                        .collect(),
                ),
                _ => None,
            }
            .ok_or_else(|| {
                ApiError::bad_request(format!("invalid filter {k:?}: values must be strings"))
            })?;
            out.push((k.clone(), list));
        }
        Ok(out)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

/// Decode a JSON body into `T`; an empty body is `T::default()` where docker allows it.
pub fn json_body<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the {what} request: {e}")))
}

/// The API version the request asked for.
pub fn api_version(parts: &axum::http::Extensions) -> crate::version::ApiVersion {
    parts
        .get::<crate::version::ApiVersion>()
        .copied()
        .unwrap_or_else(crate::version::ApiVersion::current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_forms() {
        let p = Params::parse(
            "all=1&names=a&names=b%2Fc&filters=%7B%22status%22%3A%5B%22running%22%5D%7D",
        );
        assert!(p.flag("all", false).unwrap());
        assert_eq!(p.all("names"), ["a", "b/c"]);
        assert_eq!(
            p.filters().unwrap(),
            vec![("status".to_string(), vec!["running".to_string()])]
        );
        let old = Params::parse("filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D");
        assert_eq!(old.filters().unwrap()[0].1, ["a=b"]);
        assert!(Params::parse("all=maybe").flag("all", false).is_err());
        assert!(Params::parse("filters=%5B1%5D").filters().is_err());
    }
}
