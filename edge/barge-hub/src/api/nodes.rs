//! Nodes: `GET /api/v1/nodes[/{name}]` with a status derived from the session
//! (`conns/<node>`), the agent's reports (`status/nodes/<node>`) and the grace period;
//! `PATCH` (labels, unschedulable), `drain`, `revoke` and `DELETE`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use barge_edge_proto::keys::{self, ConnRecord, NodeRecord, Revoked};
use barge_edge_proto::object::{Kind, List, Object};
use etcd_client::{DeleteOptions, TxnOp};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::store::{self, Expect};
use super::{validate, Api};

/// The annotation `drain` sets (with `spec.unschedulable`): the controller moves the
/// node's replicas elsewhere. Cleared when the node is made schedulable again.
pub const DRAINED: &str = "barge.io/drained";

/// What the hub knows of a node.
#[derive(Debug, Clone)]
pub struct NodeState {
    pub object: Object,
    pub record: Option<NodeRecord>,
    pub conn: Option<ConnRecord>,
    pub revoked: Option<Revoked>,
}

/// `Ready` condition: status (`True|False|Unknown`) and reason.
pub fn readiness(n: &NodeState, grace_secs: u64, now_secs: i64) -> (&'static str, &'static str) {
    if n.revoked.is_some() {
        return ("False", "Revoked");
    }
    if n.conn.is_some() {
        return ("True", "SessionOpen");
    }
    let Some(rec) = &n.record else {
        return ("Unknown", "NeverConnected");
    };
    let seen = barge_util::time::parse_rfc3339(&rec.last_seen).map(|(s, _)| s);
    match seen {
        Some(s) if now_secs - s <= grace_secs as i64 => ("True", "HeartbeatRecent"),
        _ => ("False", "NodeSilent"),
    }
}

/// Whether the node counts as Ready now.
pub fn is_ready(api: &Api, n: &NodeState) -> bool {
    readiness(n, api.grace_secs(), barge_util::time::now().0).0 == "True"
}

/// The node as the API shows it: its object plus `status`.
pub fn render(api: &Api, n: &NodeState) -> Object {
    let (ready, reason) = readiness(n, api.grace_secs(), barge_util::time::now().0);
    let mut o = n.object.clone();
    let rec = n.record.clone().unwrap_or_default();
    let message = match reason {
        "SessionOpen" => format!(
            "connected to hub {}",
            n.conn.as_ref().map(|c| c.hub.as_str()).unwrap_or("")
        ),
        "HeartbeatRecent" => "disconnected within the grace period".to_string(),
        "NodeSilent" => format!("not heard from for over {} s", api.grace_secs()),
        "Revoked" => "the node was revoked; it must join again".to_string(),
        _ => "the node never connected".to_string(),
    };
    o.status = json!({
        "conditions": [{
            "type": "Ready",
            "status": ready,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": n.record.as_ref().map(|r| r.last_seen.clone()),
        }],
        "nodeInfo": rec.info,
        "usage": rec.usage,
        "ackedRevision": rec.acked_revision,
        "certNotAfter": rec.cert_not_after,
        "hub": n.conn.as_ref().map(|c| c.hub.clone()),
        "revoked": n.revoked.as_ref().map(|r| r.at.clone()),
    });
    o
}

/// Every node, by name, and the revision of the read.
pub async fn load_all(api: &Api) -> ApiResult<(Vec<NodeState>, i64)> {
    let (objects, rev) = store::list_objects(api, Kind::Node, Some("")).await?;
    let records: std::collections::BTreeMap<String, NodeRecord> =
        store::list_json(api, &format!("{}status/nodes/", api.prefix))
            .await?
            .into_iter()
            .collect();
    let conns: std::collections::BTreeMap<String, ConnRecord> =
        store::list_json(api, &format!("{}conns/", api.prefix))
            .await?
            .into_iter()
            .collect();
    let revoked: std::collections::BTreeMap<String, Revoked> =
        store::list_json(api, &format!("{}revoked/", api.prefix))
            .await?
            .into_iter()
            .collect();
    let nodes = objects
        .into_iter()
        .map(|object| {
            let name = &object.metadata.name;
            NodeState {
                record: records.get(name).cloned(),
                conn: conns.get(name).cloned(),
                revoked: revoked.get(name).cloned(),
                object,
            }
        })
        .collect();
    Ok((nodes, rev))
}

/// One node (NotFound when it does not exist) and its object's mod revision.
pub async fn load_one(api: &Api, name: &str) -> ApiResult<(NodeState, i64)> {
    let Some((object, rev)) = store::get_object(api, Kind::Node, "", name).await? else {
        return Err(ApiError::not_found(format!("node {name} not found")));
    };
    let p = &api.prefix;
    let state = NodeState {
        record: store::get_json(api, &keys::node_status(p, name)).await?,
        conn: store::get_json(api, &keys::conn(p, name)).await?,
        revoked: store::get_json(api, &keys::revoked(p, name)).await?,
        object,
    };
    Ok((state, rev))
}

type S = State<Arc<Api>>;

/// `GET /api/v1/nodes`.
pub async fn list(State(api): S) -> ApiResult<Response> {
    let (nodes, rev) = load_all(&api).await?;
    let items = nodes.iter().map(|n| render(&api, n)).collect();
    Ok(Json(List::new(items, rev)).into_response())
}

/// `GET /api/v1/nodes/{name}`.
pub async fn get(State(api): S, Path(name): Path<String>) -> ApiResult<Response> {
    let (n, _) = load_one(&api, &name).await?;
    Ok(Json(render(&api, &n)).into_response())
}

/// Change a node's object with `f` (compare-and-swap, retried on concurrent writes).
async fn update(
    api: &Api,
    name: &str,
    f: impl Fn(&mut Object) -> ApiResult<()>,
) -> ApiResult<Object> {
    for _ in 0..8 {
        let (mut n, rev) = load_one(api, name).await?;
        let mut o = n.object.clone();
        f(&mut o)?;
        o.metadata.resource_version = None;
        o.status = Value::Null;
        let key = store::object_key(api, Kind::Node, "", name);
        let value =
            serde_json::to_vec(&o).map_err(|e| ApiError::internal(format!("encode {key}: {e}")))?;
        if let Some(new_rev) =
            store::put_if(api, &key, value, Expect::ModRevision(rev), Vec::new()).await?
        {
            o.metadata.resource_version = Some(new_rev.to_string());
            n.object = o;
            return Ok(render(api, &n));
        }
    }
    Err(ApiError::conflict(format!(
        "node {name}: changed concurrently too many times, try again"
    )))
}

fn set_unschedulable(o: &mut Object, on: bool) {
    if !o.spec.is_object() {
        o.spec = Value::Object(Map::new());
    }
    if let Some(spec) = o.spec.as_object_mut() {
        if on {
            spec.insert("unschedulable".into(), Value::Bool(true));
        } else {
            spec.remove("unschedulable");
        }
    }
    if !on {
        o.metadata.annotations.remove(DRAINED);
    }
}

/// Apply a JSON merge patch to a node: only `metadata.labels` (null removes a label) and
/// `spec.unschedulable` may change.
pub fn merge_patch(o: &mut Object, patch: &Value) -> ApiResult<()> {
    let name = o.metadata.name.clone();
    let top = patch.as_object().ok_or_else(|| {
        ApiError::bad_request(format!("node {name}: the patch must be a JSON object"))
    })?;
    for (k, v) in top {
        match k.as_str() {
            "metadata" => {
                let m = v.as_object().ok_or_else(|| {
                    ApiError::bad_request(format!("node {name}: metadata must be an object"))
                })?;
                for (mk, mv) in m {
                    if mk != "labels" {
                        return Err(ApiError::bad_request(format!(
                            "node {name}: metadata.{mk} cannot be patched (only labels)"
                        )));
                    }
                    let labels = mv.as_object().ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "node {name}: metadata.labels must be an object"
                        ))
                    })?;
                    for (lk, lv) in labels {
                        match lv {
                            Value::Null => {
                                o.metadata.labels.remove(lk);
                            }
                            Value::String(s) => {
                                o.metadata.labels.insert(lk.clone(), s.clone());
                            }
                            _ => {
                                return Err(ApiError::bad_request(format!(
                                    "node {name}: label {lk}: value must be a string or null"
                                )))
                            }
                        }
                    }
                }
            }
            "spec" => {
                let s = v.as_object().ok_or_else(|| {
                    ApiError::bad_request(format!("node {name}: spec must be an object"))
                })?;
                for (sk, sv) in s {
                    match (sk.as_str(), sv) {
                        ("unschedulable", Value::Bool(b)) => set_unschedulable(o, *b),
                        ("unschedulable", Value::Null) => set_unschedulable(o, false),
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "node {name}: spec.{sk} cannot be patched (only unschedulable, a boolean)"
                            )))
                        }
                    }
                }
            }
            // Shapes `kubectl`-like clients send along; harmless when they match.
            "apiVersion" | "kind" => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "node {name}: {k} cannot be patched"
                )))
            }
        }
    }
    validate::labels(&format!("node {name} metadata.labels"), &o.metadata.labels)
}

/// `PATCH /api/v1/nodes/{name}` (JSON merge patch).
pub async fn patch(State(api): S, Path(name): Path<String>, body: Bytes) -> ApiResult<Response> {
    let patch: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("node {name}: patch body: {e}")))?;
    let o = update(&api, &name, |o| merge_patch(o, &patch)).await?;
    Ok(Json(o).into_response())
}

/// `POST /api/v1/nodes/{name}/drain`: unschedulable, and its Deployment replicas are moved
/// (by the controller) to other nodes.
pub async fn drain(State(api): S, Path(name): Path<String>) -> ApiResult<Response> {
    let now = barge_util::time::now_rfc3339();
    let o = update(&api, &name, |o| {
        set_unschedulable(o, true);
        o.metadata.annotations.insert(DRAINED.into(), now.clone());
        Ok(())
    })
    .await?;
    tracing::info!("fleet API: node {name} drained");
    Ok(Json(o).into_response())
}

/// `POST /api/v1/nodes/{name}/revoke`: `revoked/<node>`; the hubs refuse its next
/// connection (and drop the current one).
pub async fn revoke(State(api): S, Path(name): Path<String>) -> ApiResult<Response> {
    let (mut n, _) = load_one(&api, &name).await?;
    let rec = Revoked {
        at: barge_util::time::now_rfc3339(),
    };
    let key = keys::revoked(&api.prefix, &name);
    let value =
        serde_json::to_vec(&rec).map_err(|e| ApiError::internal(format!("encode {key}: {e}")))?;
    api.etcd
        .kv_client()
        .put(key.as_str(), value, None)
        .await
        .map_err(|e| super::error::etcd(&format!("put {key}"), e))?;
    tracing::info!("fleet API: node {name} revoked");
    n.revoked = Some(rec);
    Ok(Json(render(&api, &n)).into_response())
}

/// `DELETE /api/v1/nodes/{name}`: its object, its reported status and its pods' statuses;
/// in the same transaction `revoked/<name>`, so its session (on whichever hub) is cut at
/// once and its certificate refused until it joins again with a new token.
pub async fn delete(State(api): S, Path(name): Path<String>) -> ApiResult<Response> {
    let revoked = serde_json::to_vec(&Revoked {
        at: barge_util::time::now_rfc3339(),
    })
    .map_err(|e| ApiError::internal(format!("encode revoked/{name}: {e}")))?;
    for _ in 0..8 {
        let (n, rev) = load_one(&api, &name).await?;
        let p = &api.prefix;
        let key = store::object_key(&api, Kind::Node, "", &name);
        let also = vec![
            TxnOp::put(keys::revoked(p, &name), revoked.clone(), None),
            TxnOp::delete(keys::node_status(p, &name), None),
            TxnOp::delete(
                format!("{p}status/pods/{name}/"),
                Some(DeleteOptions::new().with_prefix()),
            ),
        ];
        if store::delete_if(&api, &key, rev, also).await?.is_some() {
            tracing::info!("fleet API: node {name} deleted");
            return Ok(Json(render(&api, &n)).into_response());
        }
    }
    Err(ApiError::conflict(format!(
        "node {name}: changed concurrently too many times, try again"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Object {
        serde_json::from_value(json!({"apiVersion":"v1","kind":"Node",
            "metadata":{"name":"n1","labels":{"a":"1","b":"2"}}}))
        .unwrap()
    }

    #[test]
    fn patch_labels_and_unschedulable() {
        let mut o = node();
        merge_patch(
            &mut o,
            &json!({"metadata":{"labels":{"a":null,"c":"3"}},"spec":{"unschedulable":true}}),
        )
        .unwrap();
        assert_eq!(o.metadata.labels.get("a"), None);
        assert_eq!(o.metadata.labels["c"], "3");
        assert_eq!(o.spec["unschedulable"], true);
        assert!(merge_patch(&mut o, &json!({"metadata":{"name":"x"}})).is_err());
        assert!(merge_patch(&mut o, &json!({"spec":{"unschedulable":"yes"}})).is_err());
        assert!(merge_patch(&mut o, &json!({"metadata":{"labels":{"bad key!":"x"}}})).is_err());
    }

    #[test]
    fn readiness_rules() {
        let mut n = NodeState {
            object: node(),
            record: None,
            conn: None,
            revoked: None,
        };
        assert_eq!(readiness(&n, 40, 1000).0, "Unknown");
        n.record = Some(NodeRecord {
            last_seen: barge_util::time::rfc3339_secs(980),
            ..Default::default()
        });
        assert_eq!(readiness(&n, 40, 1000).0, "True");
        assert_eq!(readiness(&n, 40, 1100).0, "False");
        n.conn = Some(ConnRecord {
            hub: "h".into(),
            since: String::new(),
        });
        assert_eq!(readiness(&n, 40, 1100).0, "True");
        n.revoked = Some(Revoked { at: String::new() });
        assert_eq!(readiness(&n, 40, 1100).0, "False");
    }
}
