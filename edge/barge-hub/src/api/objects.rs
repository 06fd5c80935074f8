//! Namespaced objects (Pods, Deployments, DaemonSets, ConfigMaps, Secrets) stored in etcd at
//! `objects/<plural>/<ns>/<name>`. PUT creates or replaces (apply), POST only creates;
//! `metadata.uid` and `creationTimestamp` are set once, `resourceVersion` is the etcd mod
//! revision. Pods are read through [`super::pods`] (the expanded views).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use barge_edge_proto::object::{Kind, List, Object};
use etcd_client::TxnOp;

use super::error::{ApiError, ApiResult};
use super::store::{self, Expect};
use super::{validate, Api};

/// The response header saying what a write did: `created`, `configured` or `unchanged`
/// (what `barge fleet apply` prints).
pub const RESULT_HEADER: &str = "barge-result";

/// The kind a URL's group and plural name: core (`/api/v1`) pods, configmaps, secrets;
/// apps (`/apis/apps/v1`) deployments, daemonsets.
pub fn kind_of(apps: bool, plural: &str) -> ApiResult<Kind> {
    let k = match (apps, plural) {
        (false, "pods") => Kind::Pod,
        (false, "configmaps") => Kind::ConfigMap,
        (false, "secrets") => Kind::Secret,
        (true, "deployments") => Kind::Deployment,
        (true, "daemonsets") => Kind::DaemonSet,
        _ => {
            let g = if apps { "/apis/apps/v1" } else { "/api/v1" };
            return Err(ApiError::not_found(format!(
                "no resource {plural:?} under {g}"
            )));
        }
    };
    Ok(k)
}

/// `GET /api/v1/{plural}`, `GET /apis/apps/v1/{plural}`: every namespace.
pub async fn list_all(api: &Arc<Api>, apps: bool, plural: &str) -> ApiResult<Response> {
    let kind = kind_of(apps, plural)?;
    if kind == Kind::Pod {
        return super::pods::list(api, None).await;
    }
    let (items, rev) = store::list_objects(api, kind, None).await?;
    Ok(Json(List::new(items, rev)).into_response())
}

/// `GET .../namespaces/{ns}/{plural}`.
pub async fn list_ns(api: &Arc<Api>, apps: bool, ns: &str, plural: &str) -> ApiResult<Response> {
    let kind = kind_of(apps, plural)?;
    if kind == Kind::Pod {
        return super::pods::list(api, Some(ns)).await;
    }
    let (items, rev) = store::list_objects(api, kind, Some(ns)).await?;
    Ok(Json(List::new(items, rev)).into_response())
}

/// `GET .../namespaces/{ns}/{plural}/{name}`.
pub async fn get(
    api: &Arc<Api>,
    apps: bool,
    ns: &str,
    plural: &str,
    name: &str,
) -> ApiResult<Response> {
    let kind = kind_of(apps, plural)?;
    if kind == Kind::Pod {
        return super::pods::get(api, ns, name).await;
    }
    match store::get_object(api, kind, ns, name).await? {
        Some((o, _)) => Ok(Json(o).into_response()),
        None => Err(not_found(kind, ns, name)),
    }
}

pub fn not_found(kind: Kind, ns: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("{} {ns}/{name} not found", kind.plural()))
}

/// What [`write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Configured,
    Unchanged,
}

/// Store `body` as `kind` in `ns`: created when absent; replaced when present (unless
/// `create_only`: AlreadyExists). An identical object is not rewritten (its revision stays,
/// so edges are not sent it again).
pub async fn write(
    api: &Api,
    kind: Kind,
    ns: &str,
    url_name: Option<&str>,
    body: &[u8],
    create_only: bool,
) -> ApiResult<(Written, Object)> {
    let mut obj: Object = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("{} body: {e}", kind.plural())))?;
    validate::prepare(&mut obj, kind, ns, url_name)?;
    let name = obj.metadata.name.clone();
    let key = store::object_key(api, kind, ns, &name);
    // A concurrent writer may win between our read and our write: read again and retry.
    for _ in 0..8 {
        let (expect, written) = match store::get_raw(api, &key).await? {
            None => {
                obj.metadata.uid = Some(super::random_uid()?);
                obj.metadata.creation_timestamp =
                    Some(barge_util::time::rfc3339_secs(barge_util::time::now().0));
                (Expect::Absent, Written::Created)
            }
            Some(_) if create_only => {
                return Err(ApiError::already_exists(format!(
                    "{} {ns}/{name} already exists",
                    kind.plural()
                )))
            }
            Some((old, rev)) => {
                let old = store::decode_object(&key, &old, rev)?;
                obj.metadata.uid = old.metadata.uid.clone();
                obj.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
                let mut same = old.clone();
                same.metadata.resource_version = None;
                if same == obj {
                    return Ok((Written::Unchanged, old));
                }
                (Expect::ModRevision(rev), Written::Configured)
            }
        };
        let value = serde_json::to_vec(&obj)
            .map_err(|e| ApiError::internal(format!("encode {key}: {e}")))?;
        if let Some(rev) = store::put_if(api, &key, value, expect, Vec::new()).await? {
            obj.metadata.resource_version = Some(rev.to_string());
            return Ok((written, obj));
        }
    }
    Err(ApiError::conflict(format!(
        "{} {ns}/{name}: changed concurrently too many times, try again",
        kind.plural()
    )))
}

fn written_response(w: Written, obj: Object) -> Response {
    let (code, word) = match w {
        Written::Created => (StatusCode::CREATED, "created"),
        Written::Configured => (StatusCode::OK, "configured"),
        Written::Unchanged => (StatusCode::OK, "unchanged"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(RESULT_HEADER, HeaderValue::from_static(word));
    (code, headers, Json(obj)).into_response()
}

/// `POST .../namespaces/{ns}/{plural}`: create.
pub async fn create(
    api: &Arc<Api>,
    apps: bool,
    ns: &str,
    plural: &str,
    body: Bytes,
) -> ApiResult<Response> {
    let kind = kind_of(apps, plural)?;
    let (w, o) = write(api, kind, ns, None, &body, true).await?;
    Ok(written_response(w, o))
}

/// `PUT .../namespaces/{ns}/{plural}/{name}`: create or replace.
pub async fn put(
    api: &Arc<Api>,
    apps: bool,
    ns: &str,
    plural: &str,
    name: &str,
    body: Bytes,
) -> ApiResult<Response> {
    let kind = kind_of(apps, plural)?;
    let (w, o) = write(api, kind, ns, Some(name), &body, false).await?;
    Ok(written_response(w, o))
}

/// `DELETE .../namespaces/{ns}/{plural}/{name}`: the deleted object.
pub async fn delete(
    api: &Arc<Api>,
    apps: bool,
    ns: &str,
    plural: &str,
    name: &str,
) -> ApiResult<Response> {
    let kind = kind_of(apps, plural)?;
    let key = store::object_key(api, kind, ns, name);
    for _ in 0..8 {
        let Some((v, rev)) = store::get_raw(api, &key).await? else {
            return Err(not_found(kind, ns, name));
        };
        let obj = store::decode_object(&key, &v, rev)?;
        // A Deployment's placement goes with it (in the same transaction).
        let also = match kind {
            Kind::Deployment => vec![TxnOp::delete(
                barge_edge_proto::keys::placement(&api.prefix, ns, name),
                None,
            )],
            _ => Vec::new(),
        };
        if store::delete_if(api, &key, rev, also).await?.is_some() {
            return Ok(Json(obj).into_response());
        }
    }
    Err(ApiError::conflict(format!(
        "{} {ns}/{name}: changed concurrently too many times, try again",
        kind.plural()
    )))
}

// Axum handlers: the core group (`/api/v1`) and the apps group (`/apis/apps/v1`).

type S = State<Arc<Api>>;

pub async fn core_all(State(api): S, Path(plural): Path<String>) -> ApiResult<Response> {
    list_all(&api, false, &plural).await
}
pub async fn apps_all(State(api): S, Path(plural): Path<String>) -> ApiResult<Response> {
    list_all(&api, true, &plural).await
}
pub async fn core_list(
    State(api): S,
    Path((ns, plural)): Path<(String, String)>,
) -> ApiResult<Response> {
    list_ns(&api, false, &ns, &plural).await
}
pub async fn apps_list(
    State(api): S,
    Path((ns, plural)): Path<(String, String)>,
) -> ApiResult<Response> {
    list_ns(&api, true, &ns, &plural).await
}
pub async fn core_create(
    State(api): S,
    Path((ns, plural)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    create(&api, false, &ns, &plural, body).await
}
pub async fn apps_create(
    State(api): S,
    Path((ns, plural)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    create(&api, true, &ns, &plural, body).await
}
pub async fn core_get(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    get(&api, false, &ns, &plural, &name).await
}
pub async fn apps_get(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    get(&api, true, &ns, &plural, &name).await
}
pub async fn core_put(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    put(&api, false, &ns, &plural, &name, body).await
}
pub async fn apps_put(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    put(&api, true, &ns, &plural, &name, body).await
}
pub async fn core_delete(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    delete(&api, false, &ns, &plural, &name).await
}
pub async fn apps_delete(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    delete(&api, true, &ns, &plural, &name).await
}
