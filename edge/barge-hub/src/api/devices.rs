//! `devices.kubeedge.io/v1beta1`: `DeviceModel` and `Device` objects in etcd
//! (`objects/devicemodels/...`, `objects/devices/...`), the twin endpoint, and Devices
//! answered with their `status` (desired values, and what the edge reported in
//! `status/devices/<ns>/<name>`).
//!
//! Every write is one etcd transaction whose conditions cover what it was checked against:
//! a Device write compares the model's mod revision and that no Device anywhere changed
//! since the read (names are unique per node across namespaces); a model write or delete
//! compares that no Device of its namespace changed. A lost race is retried.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use barge_edge_proto::device::{DeviceModelSpec, DeviceSpec, Origin, Versioned};
use barge_edge_proto::keys::{self, DeviceTwinRecord};
use barge_edge_proto::object::{Kind, List, Object};
use etcd_client::{Compare, CompareOp, TxnOp};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::objects::{not_found, Written, RESULT_HEADER};
use super::{store, validate, Api};
use crate::devices as dv;

/// Attempts of a write that lost a race before answering 409.
const TRIES: usize = 8;

fn kind_of(plural: &str) -> ApiResult<Kind> {
    match plural {
        "devicemodels" => Ok(Kind::DeviceModel),
        "devices" => Ok(Kind::Device),
        _ => Err(ApiError::not_found(format!(
            "no resource {plural:?} under /apis/devices.kubeedge.io/v1beta1"
        ))),
    }
}

fn raced(kind: Kind, ns: &str, name: &str) -> ApiError {
    ApiError::conflict(format!(
        "{} {ns}/{name}: changed concurrently too many times, try again",
        kind.plural()
    ))
}

/// `mod_revision < rev + 1` over every key under `prefix`: nothing there changed (or
/// appeared) since a read at `rev`.
fn unchanged_since(prefix: &str, rev: i64) -> Compare {
    Compare::mod_revision(prefix, CompareOp::Less, rev + 1).with_prefix()
}

fn encode(key: &str, obj: &Object) -> ApiResult<Vec<u8>> {
    let mut o = obj.clone();
    o.metadata.resource_version = None;
    o.status = Value::Null;
    serde_json::to_vec(&o).map_err(|e| ApiError::internal(format!("encode {key}: {e}")))
}

fn devices_prefix(api: &Api, ns: Option<&str>) -> String {
    let mut p = keys::objects_of(&api.prefix, Kind::Device);
    if let Some(ns) = ns {
        p.push_str(ns);
        p.push('/');
    }
    p
}

fn status_prefix(api: &Api, ns: Option<&str>) -> String {
    let mut p = format!("{}status/devices/", api.prefix);
    if let Some(ns) = ns {
        p.push_str(ns);
        p.push('/');
    }
    p
}

/// The twin record of a device (None when nothing was reported).
pub async fn twin_record(api: &Api, ns: &str, name: &str) -> ApiResult<Option<DeviceTwinRecord>> {
    store::get_json(api, &keys::device_status(&api.prefix, ns, name)).await
}

/// A model, parsed (None when absent): the object's spec and its mod revision.
async fn model(api: &Api, ns: &str, name: &str) -> ApiResult<Option<(DeviceModelSpec, i64)>> {
    let Some((m, rev)) = store::get_object(api, Kind::DeviceModel, ns, name).await? else {
        return Ok(None);
    };
    let spec = dv::check_model(&m.spec)
        .map_err(|e| ApiError::internal(format!("stored DeviceModel {ns}/{name}: {e}")))?;
    Ok(Some((spec, rev)))
}

/// Devices (one namespace or all) with their status.
async fn list_devices(api: &Api, ns: Option<&str>) -> ApiResult<(Vec<Object>, i64)> {
    let (mut items, rev) = store::list_objects(api, Kind::Device, ns).await?;
    let records: BTreeMap<String, DeviceTwinRecord> =
        store::list_json(api, &status_prefix(api, None))
            .await?
            .into_iter()
            .collect();
    for o in &mut items {
        let k = format!("{}/{}", o.namespace(), o.metadata.name);
        dv::with_status(o, records.get(&k));
    }
    Ok((items, rev))
}

/// One device with its status, or 404.
pub async fn get_device(api: &Api, ns: &str, name: &str) -> ApiResult<Object> {
    let Some((mut o, _)) = store::get_object(api, Kind::Device, ns, name).await? else {
        return Err(not_found(Kind::Device, ns, name));
    };
    let rec = twin_record(api, ns, name).await?;
    dv::with_status(&mut o, rec.as_ref());
    Ok(o)
}

/// Store a Device from `body` (see the module doc for the transaction).
pub async fn write_device(
    api: &Api,
    ns: &str,
    url_name: Option<&str>,
    body: &[u8],
    create_only: bool,
) -> ApiResult<(Written, Object)> {
    let mut obj: Object = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("devices body: {e}")))?;
    validate::prepare(&mut obj, Kind::Device, ns, url_name)?;
    let name = obj.metadata.name.clone();
    let what = format!("Device {ns}/{name}");
    let spec =
        dv::check_device(&obj.spec).map_err(|e| ApiError::bad_request(format!("{what} {e}")))?;
    let node = spec.node_name.clone().unwrap_or_default();
    let model_name = spec
        .device_model_ref
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let key = store::object_key(api, Kind::Device, ns, &name);
    let all = devices_prefix(api, None);
    let submitted = obj.spec.clone();
    for _ in 0..TRIES {
        let (devs, rev) = store::list_raw(api, &all).await?;
        let Some((model, model_rev)) = model(api, ns, &model_name).await? else {
            return Err(ApiError::bad_request(format!(
                "{what} spec.deviceModelRef.name: DeviceModel {ns}/{model_name} not found"
            )));
        };
        dv::check_against_model(&spec, &model_name, &model)
            .map_err(|e| ApiError::bad_request(format!("{what} {e}")))?;
        let mut old = None;
        for (k, v, r) in &devs {
            let full = format!("{all}{k}");
            let o = store::decode_object(&full, v, *r)?;
            if full == key {
                old = Some((o, *r));
                continue;
            }
            let other_node = o.spec.get("nodeName").and_then(Value::as_str);
            if o.metadata.name == name && other_node == Some(node.as_str()) {
                return Err(ApiError::conflict(format!(
                    "{what}: node {node} already has a device named {name} (in namespace {}); \
                     device names are unique per node (they name MQTT topics)",
                    o.namespace()
                )));
            }
        }
        let mut obj = obj.clone();
        obj.spec = submitted.clone();
        let written = match &old {
            Some(_) if create_only => {
                return Err(ApiError::already_exists(format!(
                    "devices {ns}/{name} already exists"
                )))
            }
            Some((o, _)) => {
                obj.metadata.uid = o.metadata.uid.clone();
                obj.metadata.creation_timestamp = o.metadata.creation_timestamp.clone();
                Written::Configured
            }
            None => {
                obj.metadata.uid = Some(super::random_uid()?);
                obj.metadata.creation_timestamp =
                    Some(barge_util::time::rfc3339_secs(barge_util::time::now().0));
                Written::Created
            }
        };
        let old_desired = old
            .as_ref()
            .and_then(|(o, _)| serde_json::from_value::<DeviceSpec>(o.spec.clone()).ok())
            .map(|s| dv::desired_of(&s))
            .unwrap_or_default();
        dv::stamp_desired(&mut obj.spec, &old_desired, dv::now_ms());
        if let Some((o, _)) = &old {
            let mut same = o.clone();
            same.metadata.resource_version = None;
            if same == obj {
                return Ok((Written::Unchanged, o.clone()));
            }
        }
        let when = vec![
            unchanged_since(&all, rev),
            Compare::mod_revision(
                store::object_key(api, Kind::DeviceModel, ns, &model_name),
                CompareOp::Equal,
                model_rev,
            ),
        ];
        let ops = vec![TxnOp::put(key.as_str(), encode(&key, &obj)?, None)];
        if let Some(r) = store::txn(api, &key, when, ops).await? {
            obj.metadata.resource_version = Some(r.to_string());
            return Ok((written, obj));
        }
    }
    Err(raced(Kind::Device, ns, &name))
}

/// Store a DeviceModel from `body`; a model some Device uses must still fit it (409).
pub async fn write_model(
    api: &Api,
    ns: &str,
    url_name: Option<&str>,
    body: &[u8],
    create_only: bool,
) -> ApiResult<(Written, Object)> {
    let mut obj: Object = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("devicemodels body: {e}")))?;
    validate::prepare(&mut obj, Kind::DeviceModel, ns, url_name)?;
    let name = obj.metadata.name.clone();
    let spec = dv::check_model(&obj.spec)
        .map_err(|e| ApiError::bad_request(format!("DeviceModel {ns}/{name} {e}")))?;
    let key = store::object_key(api, Kind::DeviceModel, ns, &name);
    let devs_ns = devices_prefix(api, Some(ns));
    for _ in 0..TRIES {
        let (users, rev) = users_of(api, ns, &name).await?;
        for (dname, dspec) in &users {
            dv::check_against_model(dspec, &name, &spec).map_err(|e| {
                ApiError::conflict(format!(
                    "DeviceModel {ns}/{name}: Device {ns}/{dname} uses it and would not fit: {e}"
                ))
            })?;
        }
        let mut obj = obj.clone();
        let (expect, written) = match store::get_raw(api, &key).await? {
            None => {
                obj.metadata.uid = Some(super::random_uid()?);
                obj.metadata.creation_timestamp =
                    Some(barge_util::time::rfc3339_secs(barge_util::time::now().0));
                (
                    Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
                    Written::Created,
                )
            }
            Some(_) if create_only => {
                return Err(ApiError::already_exists(format!(
                    "devicemodels {ns}/{name} already exists"
                )))
            }
            Some((v, r)) => {
                let old = store::decode_object(&key, &v, r)?;
                obj.metadata.uid = old.metadata.uid.clone();
                obj.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
                let mut same = old.clone();
                same.metadata.resource_version = None;
                if same == obj {
                    return Ok((Written::Unchanged, old));
                }
                (
                    Compare::mod_revision(key.as_str(), CompareOp::Equal, r),
                    Written::Configured,
                )
            }
        };
        let when = vec![expect, unchanged_since(&devs_ns, rev)];
        let ops = vec![TxnOp::put(key.as_str(), encode(&key, &obj)?, None)];
        if let Some(r) = store::txn(api, &key, when, ops).await? {
            obj.metadata.resource_version = Some(r.to_string());
            return Ok((written, obj));
        }
    }
    Err(raced(Kind::DeviceModel, ns, &name))
}

/// The Devices of `ns` that use model `name`, and the revision of the read.
async fn users_of(api: &Api, ns: &str, name: &str) -> ApiResult<(Vec<(String, DeviceSpec)>, i64)> {
    let (items, rev) = store::list_objects(api, Kind::Device, Some(ns)).await?;
    let users = items
        .into_iter()
        .filter_map(|o| {
            let s: DeviceSpec = serde_json::from_value(o.spec).ok()?;
            (s.device_model_ref.as_ref().map(|r| r.name.as_str()) == Some(name))
                .then_some((o.metadata.name, s))
        })
        .collect();
    Ok((users, rev))
}

/// Delete a model (409 while a Device uses it) or a Device (with its twin record).
pub async fn delete_object(api: &Api, kind: Kind, ns: &str, name: &str) -> ApiResult<Object> {
    let key = store::object_key(api, kind, ns, name);
    for _ in 0..TRIES {
        let Some((v, rev)) = store::get_raw(api, &key).await? else {
            return Err(not_found(kind, ns, name));
        };
        let obj = store::decode_object(&key, &v, rev)?;
        let mut when = vec![Compare::mod_revision(key.as_str(), CompareOp::Equal, rev)];
        let mut ops = vec![TxnOp::delete(key.as_str(), None)];
        if kind == Kind::DeviceModel {
            let (users, at) = users_of(api, ns, name).await?;
            if let Some((d, _)) = users.first() {
                return Err(ApiError::conflict(format!(
                    "DeviceModel {ns}/{name} is used by Device {ns}/{d}; delete the device first"
                )));
            }
            when.push(unchanged_since(&devices_prefix(api, Some(ns)), at));
        } else {
            ops.push(TxnOp::delete(
                keys::device_status(&api.prefix, ns, name),
                None,
            ));
        }
        if store::txn(api, &key, when, ops).await?.is_some() {
            return Ok(obj);
        }
    }
    Err(raced(kind, ns, name))
}

/// A desired value in the twin endpoint's body: a string, or a number or boolean (taken
/// as its text).
fn value_text(prop: &str, v: &Value) -> ApiResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(ApiError::bad_request(format!(
            "desired.{prop}: {other} is not a string, number or boolean"
        ))),
    }
}

/// Set desired values of a device from the cloud (`{"desired": {"PROP": "VALUE"}}`): all
/// checked first, then one transaction; each changed value gets version old+1, origin cloud.
pub async fn set_twin(api: &Api, ns: &str, name: &str, body: &[u8]) -> ApiResult<Object> {
    let what = format!("Device {ns}/{name}");
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("{what} twin body: {e}")))?;
    let Some(desired) = v.get("desired").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(format!(
            "{what} twin body: expected {{\"desired\": {{\"PROPERTY\": \"VALUE\", ...}}}}"
        )));
    };
    let mut wanted = BTreeMap::new();
    for (p, v) in desired {
        wanted.insert(p.clone(), value_text(p, v)?);
    }
    let key = store::object_key(api, Kind::Device, ns, name);
    for _ in 0..TRIES {
        let Some((mut obj, rev)) = store::get_object(api, Kind::Device, ns, name).await? else {
            return Err(not_found(Kind::Device, ns, name));
        };
        let spec: DeviceSpec = serde_json::from_value(obj.spec.clone())
            .map_err(|e| ApiError::internal(format!("stored {what}: spec: {e}")))?;
        let model_name = spec
            .device_model_ref
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let Some((model, model_rev)) = model(api, ns, &model_name).await? else {
            return Err(ApiError::conflict(format!(
                "{what}: its DeviceModel {ns}/{model_name} is gone"
            )));
        };
        let current = dv::desired_of(&spec);
        let now = dv::now_ms();
        let mut changed = false;
        for (p, val) in &wanted {
            let Some(mp) = model.property(p) else {
                return Err(ApiError::not_found(format!(
                    "{what} has no property {p:?} (DeviceModel {model_name})"
                )));
            };
            mp.check_desired(val)
                .map_err(|e| ApiError::bad_request(format!("{what} desired.{p}: {e}")))?;
            let cur = current.get(p);
            if cur.is_some_and(|c| &c.value == val) {
                continue;
            }
            let next = Versioned {
                value: val.clone(),
                version: cur.map(|c| c.version).unwrap_or(0) + 1,
                origin: Origin::Cloud,
                timestamp: now,
            };
            dv::set_desired(&mut obj.spec, p, &next);
            changed = true;
        }
        if changed {
            let when = vec![
                Compare::mod_revision(key.as_str(), CompareOp::Equal, rev),
                Compare::mod_revision(
                    store::object_key(api, Kind::DeviceModel, ns, &model_name),
                    CompareOp::Equal,
                    model_rev,
                ),
            ];
            let ops = vec![TxnOp::put(key.as_str(), encode(&key, &obj)?, None)];
            match store::txn(api, &key, when, ops).await? {
                None => continue,
                Some(r) => obj.metadata.resource_version = Some(r.to_string()),
            }
        }
        let rec = twin_record(api, ns, name).await?;
        dv::with_status(&mut obj, rec.as_ref());
        return Ok(obj);
    }
    Err(raced(Kind::Device, ns, name))
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

async fn write(
    api: &Api,
    ns: &str,
    plural: &str,
    name: Option<&str>,
    body: &[u8],
    create_only: bool,
) -> ApiResult<Response> {
    let (w, o) = match kind_of(plural)? {
        Kind::Device => write_device(api, ns, name, body, create_only).await?,
        _ => write_model(api, ns, name, body, create_only).await?,
    };
    Ok(written_response(w, o))
}

// Axum handlers under `/apis/devices.kubeedge.io/v1beta1`.

type S = State<Arc<Api>>;

/// `GET /apis/devices.kubeedge.io/v1beta1/{plural}`: every namespace.
pub async fn all(State(api): S, Path(plural): Path<String>) -> ApiResult<Response> {
    let (items, rev) = match kind_of(&plural)? {
        Kind::Device => list_devices(&api, None).await?,
        k => store::list_objects(&api, k, None).await?,
    };
    Ok(Json(List::new(items, rev)).into_response())
}

/// `GET .../namespaces/{ns}/{plural}`.
pub async fn list(
    State(api): S,
    Path((ns, plural)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (items, rev) = match kind_of(&plural)? {
        Kind::Device => list_devices(&api, Some(&ns)).await?,
        k => store::list_objects(&api, k, Some(&ns)).await?,
    };
    Ok(Json(List::new(items, rev)).into_response())
}

/// `POST .../namespaces/{ns}/{plural}`: create.
pub async fn create(
    State(api): S,
    Path((ns, plural)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    write(&api, &ns, &plural, None, &body, true).await
}

/// `GET .../namespaces/{ns}/{plural}/{name}` (Devices with `status`).
pub async fn get(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    match kind_of(&plural)? {
        Kind::Device => Ok(Json(get_device(&api, &ns, &name).await?).into_response()),
        k => match store::get_object(&api, k, &ns, &name).await? {
            Some((o, _)) => Ok(Json(o).into_response()),
            None => Err(not_found(k, &ns, &name)),
        },
    }
}

/// `PUT .../namespaces/{ns}/{plural}/{name}`: create or replace.
pub async fn put(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    write(&api, &ns, &plural, Some(&name), &body, false).await
}

/// `DELETE .../namespaces/{ns}/{plural}/{name}`: the deleted object.
pub async fn delete(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let kind = kind_of(&plural)?;
    Ok(Json(delete_object(&api, kind, &ns, &name).await?).into_response())
}

/// `POST .../namespaces/{ns}/devices/{name}/twin`.
pub async fn twin(
    State(api): S,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    if kind_of(&plural)? != Kind::Device {
        return Err(ApiError::not_found(format!("{plural} have no twin")));
    }
    Ok(Json(set_twin(&api, &ns, &name, &body).await?).into_response())
}
