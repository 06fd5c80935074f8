//! `GET /images/json` (with docker's filters), `GET /images/NAME/json` and
//! `GET /images/NAME/history`.

use barge_engine::filters::label_matches;
use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::state::AppState;

/// The filters `GET /images/json` understands.
#[derive(Default)]
struct ImageFilters {
    dangling: Option<bool>,
    labels: Vec<String>,
    references: Vec<String>,
    before: Option<String>,
    since: Option<String>,
}

impl ImageFilters {
    fn parse(p: &Params) -> ApiResult<ImageFilters> {
        let mut f = ImageFilters::default();
        for (k, vals) in p.filters()? {
            match k.as_str() {
                "dangling" => {
                    for v in vals {
                        f.dangling = Some(match v.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => {
                                return Err(ApiError::bad_request(format!(
                                    "invalid filter 'dangling={v}'"
                                )))
                            }
                        });
                    }
                }
                "label" => f.labels.extend(vals),
                "reference" => f.references.extend(vals),
                "before" => f.before = vals.into_iter().next(),
                "since" => f.since = vals.into_iter().next(),
                other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
            }
        }
        Ok(f)
    }
}

/// docker's `path.Match` subset for reference filters: `*` (not across `/`), `?`, literals.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => {
                (0..=t.len()).any(|i| !t[..i].contains(&b'/') && go(rest, &t[i..]))
            }
            Some((b'?', rest)) => t.first().is_some_and(|c| *c != b'/') && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Whether a `reference` filter matches one of the image's `repo:tag` names (by name, or by
/// name and tag).
fn reference_matches(pattern: &str, tags: &[String]) -> bool {
    tags.iter().any(|t| {
        let repo = t.rsplit_once(':').map_or(t.as_str(), |(r, _)| r);
        glob(pattern, t) || glob(pattern, repo)
    })
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v["Labels"].clone()).unwrap_or_default()
}

pub async fn list(State(s): State<AppState>, p: Params) -> ApiResult<Response> {
    let f = ImageFilters::parse(&p)?;
    let rows = s
        .blocking(move |e| {
            let store = &e.images;
            let all = barge_engine::docker::image::list(store)?;
            let created_of = |name: &str| -> ApiResult<i64> {
                let rec = store.resolve(name)?;
                let v = barge_engine::docker::image::summary(store, &rec)?;
                Ok(v["Created"].as_i64().unwrap_or(0))
            };
            let before = f.before.as_deref().map(created_of).transpose()?;
            let since = f.since.as_deref().map(created_of).transpose()?;
            let refs = f.references.clone();
            Ok(all
                .into_iter()
                .map(|mut v| {
                    // With a reference filter docker lists only the names that match.
                    if !refs.is_empty() {
                        let tags: Vec<String> =
                            serde_json::from_value(v["RepoTags"].clone()).unwrap_or_default();
                        let kept: Vec<String> = tags
                            .into_iter()
                            .filter(|t| {
                                refs.iter()
                                    .any(|r| reference_matches(r, std::slice::from_ref(t)))
                            })
                            .collect();
                        if !kept.is_empty() {
                            v["RepoTags"] = json!(kept);
                            let digests: Vec<String> =
                                serde_json::from_value(v["RepoDigests"].clone())
                                    .unwrap_or_default();
                            let digests: Vec<String> = digests
                                .into_iter()
                                .filter(|d| {
                                    let repo = d.split_once('@').map_or(d.as_str(), |(r, _)| r);
                                    refs.iter().any(|r| glob(r, repo))
                                })
                                .collect();
                            v["RepoDigests"] = json!(digests);
                        }
                    }
                    v
                })
                .filter(|v| {
                    let tags: Vec<String> =
                        serde_json::from_value(v["RepoTags"].clone()).unwrap_or_default();
                    let created = v["Created"].as_i64().unwrap_or(0);
                    let labels = labels_of(v);
                    f.dangling.is_none_or(|d| d == tags.is_empty())
                        && f.labels.iter().all(|l| label_matches(l, &labels))
                        && (f.references.is_empty()
                            || f.references.iter().any(|r| reference_matches(r, &tags)))
                        && before.is_none_or(|b| created < b)
                        && since.is_none_or(|s| created > s)
                })
                .collect::<Vec<Value>>())
        })
        .await?;
    Ok(Json(Value::Array(rows)).into_response())
}

pub async fn inspect(State(s): State<AppState>, name: String) -> ApiResult<Response> {
    let doc = s
        .blocking(move |e| {
            let rec = e
                .images
                .resolve(&name)
                .map_err(|err| no_such_image(&name, err))?;
            Ok(barge_engine::docker::image::inspect(&e.images, &rec)?)
        })
        .await?;
    Ok(Json(doc).into_response())
}

/// docker's 404 text for an image.
pub fn no_such_image(name: &str, e: barge_image::Error) -> ApiError {
    match e {
        barge_image::Error::NotFound { .. } => {
            ApiError::not_found(format!("No such image: {name}"))
        }
        other => other.into(),
    }
}

/// `docker history`: the config's history, newest first; entries that made a layer get that
/// layer's size, the newest one the image ID.
pub async fn history(State(s): State<AppState>, name: String) -> ApiResult<Response> {
    let rows = s
        .blocking(move |e| {
            let store = &e.images;
            let rec = store
                .resolve(&name)
                .map_err(|err| no_such_image(&name, err))?;
            let img = store.image(&rec)?;
            let (tags, _) = barge_engine::docker::image::repo_tags_digests(store, &rec.config)?;
            let sizes: Vec<u64> = img.manifest.layers().iter().map(|l| l.size()).collect();
            let mut layer = 0usize;
            let mut rows = Vec::new();
            for h in img.config.history().clone().unwrap_or_default() {
                let empty = h.empty_layer().unwrap_or(false);
                let size = if empty {
                    0
                } else {
                    layer += 1;
                    sizes.get(layer - 1).copied().unwrap_or(0)
                };
                let created = h
                    .created()
                    .as_deref()
                    .and_then(barge_engine::docker::time::parse_rfc3339)
                    .unwrap_or(0);
                rows.push(json!({
                    "Id": "<missing>",
                    "Created": created,
                    "CreatedBy": h.created_by().clone().unwrap_or_default(),
                    "Tags": Value::Null,
                    "Size": size,
                    "Comment": h.comment().clone().unwrap_or_default(),
                }));
            }
            rows.reverse();
            if let Some(top) = rows.first_mut() {
                top["Id"] = json!(rec.config.to_string());
                top["Tags"] = json!(tags);
            }
            Ok(rows)
        })
        .await?;
    Ok(Json(Value::Array(rows)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_globs() {
        let tags = vec!["localhost:5000/bb:v1".to_string()];
        assert!(reference_matches("localhost:5000/bb", &tags));
        assert!(reference_matches("localhost:5000/*:v1", &tags));
        assert!(!reference_matches("bb*", &tags));
        assert!(glob("b?", "bb"));
        assert!(!glob("*", "a/b"));
    }
}
