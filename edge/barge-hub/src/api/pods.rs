//! Pods as the fleet runs them: every node's view expanded ([`crate::view::node_view`]:
//! its own Pods, the replicas of Deployments placed on it, the pods of matching DaemonSets),
//! each with `spec.nodeName` and `status` = the PodStatus its agent reported (`Pending`
//! when none yet, phase `Unknown` while the node is NotReady). Stored Pods that no node runs
//! (no `nodeName`, or an unknown node) are listed `Pending`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use axum::Json;
use barge_edge_proto::object::{Kind, List, ObjKey, Object};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::nodes::{self, NodeState};
use super::{store, Api};

/// How long a listing waits for the watched cache to catch up with etcd.
const CACHE_CATCH_UP: Duration = Duration::from_secs(5);

/// Every pod of the fleet (in `ns`, or everywhere), sorted by namespace and name.
///
/// Objects and placements come from the hub's watched cache (no read of every object per
/// request); the listing first waits until the cache holds the newest write under the
/// watched prefixes, so a listing right after a write sees it. Pod statuses and node records are read from etcd.
pub async fn expanded(api: &Api, ns: Option<&str>) -> ApiResult<(Vec<Object>, i64)> {
    let now = current_revision(api).await?;
    if tokio::time::timeout(CACHE_CATCH_UP, api.hub.cache.wait_for(now))
        .await
        .is_err()
    {
        return Err(ApiError::unavailable(format!(
            "the hub's cache did not reach etcd revision {now} within {CACHE_CATCH_UP:?}; try again"
        )));
    }
    let snap = api.hub.cache.snapshot();
    let statuses: BTreeMap<String, Value> =
        store::list_json(api, &format!("{}status/pods/", api.prefix))
            .await?
            .into_iter()
            .collect();
    let (nodes, _) = nodes::load_all(api).await?;
    let mut out = Vec::new();
    let mut placed = BTreeSet::new();
    for node in &nodes {
        let view = crate::view::node_view(&node.object, &snap.objects, &snap.placements);
        for (key, pod) in view {
            if key.kind != Kind::Pod || ns.is_some_and(|n| n != key.namespace) {
                continue;
            }
            placed.insert(key.clone());
            out.push(on_node(api, Object::clone(&pod), node, &statuses));
        }
    }
    for (key, pod) in crate::view::of_kind(&snap.objects, Kind::Pod) {
        if placed.contains(key) || ns.is_some_and(|n| n != key.namespace) {
            continue;
        }
        out.push(unplaced(Object::clone(pod), &nodes));
    }
    out.sort_by_key(Object::key);
    Ok((out, snap.revision.max(now)))
}

/// The revision of the last write under the prefixes the cache watches (`objects/`,
/// `placements/`, `revoked/`): keys only, the newest one of each.
async fn current_revision(api: &Api) -> ApiResult<i64> {
    let mut c = api.etcd.clone();
    let mut rev = 0;
    for sub in ["objects/", "placements/", "revoked/"] {
        let key = format!("{}{sub}", api.prefix);
        let opts = etcd_client::GetOptions::new()
            .with_prefix()
            .with_keys_only()
            .with_sort(
                etcd_client::SortTarget::Mod,
                etcd_client::SortOrder::Descend,
            )
            .with_limit(1);
        let resp = c
            .get(key.clone(), Some(opts))
            .await
            .map_err(|e| super::error::etcd(&key, e))?;
        if let Some(kv) = resp.kvs().first() {
            rev = rev.max(kv.mod_revision());
        }
    }
    Ok(rev)
}

/// A pod of `node`'s view with its node and status.
fn on_node(
    api: &Api,
    mut pod: Object,
    node: &NodeState,
    statuses: &BTreeMap<String, Value>,
) -> Object {
    let name = &node.object.metadata.name;
    if let Some(spec) = pod.spec.as_object_mut() {
        spec.insert("nodeName".into(), Value::String(name.clone()));
    }
    let key = format!("{name}/{}/{}", pod.namespace(), pod.metadata.name);
    let mut status = statuses
        .get(&key)
        .cloned()
        .unwrap_or_else(|| json!({"phase": "Pending", "message": "not reported by the node yet"}));
    if !nodes::is_ready(api, node) {
        if let Some(s) = status.as_object_mut() {
            s.insert("phase".into(), json!("Unknown"));
            s.insert("reason".into(), json!("NodeNotReady"));
        }
    }
    pod.status = status;
    pod
}

/// A stored Pod no node runs.
fn unplaced(mut pod: Object, nodes: &[NodeState]) -> Object {
    let node = pod
        .spec
        .get("nodeName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = match node {
        Some(n) if !nodes.iter().any(|s| s.object.metadata.name == n) => {
            format!("node {n} does not exist")
        }
        Some(n) => format!("not in node {n}'s view"),
        None => "no spec.nodeName: a bare Pod runs only on the node it names".to_string(),
    };
    pod.status = json!({"phase": "Pending", "reason": "Unscheduled", "message": message});
    pod
}

/// `GET /api/v1/pods`, `GET /api/v1/namespaces/{ns}/pods`.
pub async fn list(api: &Api, ns: Option<&str>) -> ApiResult<Response> {
    let (items, rev) = expanded(api, ns).await?;
    Ok(Json(List::new(items, rev)).into_response())
}

/// `GET /api/v1/namespaces/{ns}/pods/{name}`.
pub async fn get(api: &Api, ns: &str, name: &str) -> ApiResult<Response> {
    let (items, _) = expanded(api, Some(ns)).await?;
    let want = ObjKey {
        kind: Kind::Pod,
        namespace: ns.to_string(),
        name: name.to_string(),
    };
    match items.into_iter().find(|p| p.key() == want) {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ApiError::not_found(format!("pods {ns}/{name} not found"))),
    }
}
