//! Deployment placement (KubeEdge's EdgeController, reduced): one hub at a time holds
//! `locks/controller` (attached to its lease) and writes `placements/<ns>/<deploy>`.
//!
//! Placement is sticky (edge semantics): replicas stay on a node while it exists, is not
//! revoked, not drained (`spec.unschedulable`) and still matches the template's
//! nodeSelector / nodeName, even when it is NotReady. Missing replicas go to the eligible
//! nodes with the fewest; extra ones come off the nodes with the most.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use barge_edge_proto::keys::{self, Placement};
use barge_edge_proto::object::{Kind, Object};
use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use serde_json::Value;

use crate::hub::Hub;
use crate::view::{selector_matches, template_spec};

/// Whether a node may receive new replicas of a workload whose pod template is `spec`.
pub fn eligible(node: &Object, spec: &Value, revoked: &BTreeSet<String>) -> bool {
    let name = node.metadata.name.as_str();
    !revoked.contains(name)
        && node.spec.get("unschedulable").and_then(Value::as_bool) != Some(true)
        && spec
            .get("nodeName")
            .and_then(Value::as_str)
            .is_none_or(|n| n == name)
        && selector_matches(spec, &node.metadata.labels)
}

/// The placement of `deploy` over `nodes`, starting from `current` (sticky).
pub fn place(
    deploy: &Object,
    nodes: &[&Object],
    revoked: &BTreeSet<String>,
    current: Option<&Placement>,
) -> Placement {
    let spec = template_spec(deploy);
    let replicas = deploy
        .spec
        .get("replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1) as u32;
    let eligible: Vec<&str> = nodes
        .iter()
        .filter(|n| eligible(n, spec, revoked))
        .map(|n| n.metadata.name.as_str())
        .collect();
    let mut out: BTreeMap<String, u32> = current
        .map(|p| {
            p.nodes
                .iter()
                .filter(|(n, c)| **c > 0 && eligible.contains(&n.as_str()))
                .map(|(n, c)| (n.clone(), *c))
                .collect()
        })
        .unwrap_or_default();
    let mut total: u32 = out.values().sum();
    while total > replicas {
        // Take one off the node with the most (the last name among equals).
        let Some(node) = out
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
            .map(|(n, _)| n.clone())
        else {
            break;
        };
        if let Some(c) = out.get_mut(&node) {
            *c -= 1;
            if *c == 0 {
                out.remove(&node);
            }
        }
        total -= 1;
    }
    while total < replicas && !eligible.is_empty() {
        // Add one to the eligible node with the fewest (the first name among equals).
        let Some(node) = eligible
            .iter()
            .min_by(|a, b| {
                let ca = out.get(**a).copied().unwrap_or(0);
                let cb = out.get(**b).copied().unwrap_or(0);
                ca.cmp(&cb).then(a.cmp(b))
            })
            .map(|n| n.to_string())
        else {
            break;
        };
        *out.entry(node).or_insert(0) += 1;
        total += 1;
    }
    Placement { nodes: out }
}

/// Hold the controller lock when free and place Deployments while holding it.
pub async fn run(hub: Arc<Hub>) {
    let lock = hub.key("locks/controller");
    loop {
        match acquire(&hub, &lock).await {
            Ok(true) => {
                tracing::info!("hub {}: holding the controller lock", hub.id);
                hold(&hub, &lock).await;
                tracing::info!("hub {}: lost the controller lock", hub.id);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("controller lock {lock}: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn acquire(hub: &Hub, lock: &str) -> crate::Result<bool> {
    let mut c = hub.etcd.clone();
    let txn = Txn::new()
        .when([Compare::version(lock, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            lock,
            hub.id.clone(),
            Some(PutOptions::new().with_lease(hub.lease)),
        )])
        .or_else([TxnOp::get(lock, None)]);
    let resp = c
        .txn(txn)
        .await
        .map_err(|e| crate::store::unavailable(lock, e))?;
    if resp.succeeded() {
        return Ok(true);
    }
    for r in resp.op_responses() {
        if let etcd_client::TxnOpResponse::Get(g) = r {
            if let Some(kv) = g.kvs().first() {
                return Ok(kv.value() == hub.id.as_bytes());
            }
        }
    }
    Ok(false)
}

async fn hold(hub: &Hub, lock: &str) {
    let mut changed = hub.cache.subscribe();
    loop {
        match reconcile(hub, lock).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!("controller: {e}"),
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Bring every placement up to date; false when the lock is no longer ours.
async fn reconcile(hub: &Hub, lock: &str) -> crate::Result<bool> {
    let snap = hub.cache.snapshot();
    let nodes: Vec<&Object> = crate::view::of_kind(&snap.objects, Kind::Node)
        .map(|(_, o)| o.as_ref())
        .collect();
    // Each write holds only if the Deployment is still as seen (put) or still gone
    // (delete): a Deployment deleted meanwhile never gets its placement back.
    let mut writes: Vec<(String, Option<Placement>, Compare)> = Vec::new();
    for (k, deploy) in crate::view::of_kind(&snap.objects, Kind::Deployment) {
        let pk = (k.namespace.clone(), k.name.clone());
        let current = snap.placements.get(&pk);
        let want = place(deploy, &nodes, &snap.revoked, current);
        if current != Some(&want) {
            let dk = keys::object(&hub.prefix, Kind::Deployment, &k.namespace, &k.name);
            writes.push((
                keys::placement(&hub.prefix, &k.namespace, &k.name),
                Some(want),
                Compare::mod_revision(dk, CompareOp::Equal, deploy.revision()),
            ));
        }
    }
    for (ns, name) in snap.placements.keys() {
        let dk = barge_edge_proto::object::ObjKey {
            kind: Kind::Deployment,
            namespace: ns.clone(),
            name: name.clone(),
        };
        if !snap.objects.contains_key(&dk) {
            let dk = keys::object(&hub.prefix, Kind::Deployment, ns, name);
            writes.push((
                keys::placement(&hub.prefix, ns, name),
                None,
                Compare::version(dk, CompareOp::Equal, 0),
            ));
        }
    }
    let mut c = hub.etcd.clone();
    for (key, p, deploy_as_seen) in writes {
        let op = match &p {
            Some(p) => TxnOp::put(key.clone(), crate::store::to_json(p)?, None),
            None => TxnOp::delete(key.clone(), None),
        };
        let still_ours = Compare::value(lock, CompareOp::Equal, hub.id.clone());
        let txn = Txn::new()
            .when([still_ours.clone(), deploy_as_seen])
            .and_then([op]);
        let resp = c
            .txn(txn)
            .await
            .map_err(|e| crate::store::unavailable(&key, e))?;
        if !resp.succeeded() {
            // The lock is gone, or the Deployment changed since the snapshot (the next
            // round sees the change).
            let lock_held = c
                .txn(Txn::new().when([still_ours]))
                .await
                .map_err(|e| crate::store::unavailable(lock, e))?
                .succeeded();
            if !lock_held {
                return Ok(false);
            }
            continue;
        }
        tracing::info!("controller: {key} -> {p:?}");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: Value, unschedulable: bool) -> Object {
        serde_json::from_value(json!({"apiVersion":"v1","kind":"Node",
            "metadata":{"name":name,"labels":labels},"spec":{"unschedulable":unschedulable}}))
        .unwrap()
    }

    fn deploy(replicas: u32, selector: Value) -> Object {
        serde_json::from_value(json!({"apiVersion":"apps/v1","kind":"Deployment",
            "metadata":{"name":"web","namespace":"default"},
            "spec":{"replicas":replicas,"template":{"spec":{"nodeSelector":selector,
            "containers":[{"name":"c","image":"nginx"}]}}}}))
        .unwrap()
    }

    fn p(pairs: &[(&str, u32)]) -> Placement {
        Placement {
            nodes: pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }

    #[test]
    fn spreads_over_matching_nodes_only() {
        let a = node("a", json!({"zone":"x"}), false);
        let b = node("b", json!({"zone":"x"}), false);
        let c = node("c", json!({"zone":"y"}), false);
        let none = BTreeSet::new();
        let got = place(&deploy(3, json!({"zone":"x"})), &[&a, &b, &c], &none, None);
        assert_eq!(got, p(&[("a", 2), ("b", 1)]));
    }

    #[test]
    fn sticky_until_drained_revoked_or_deleted() {
        let a = node("a", json!({}), false);
        let b = node("b", json!({}), false);
        let c = node("c", json!({}), false);
        let none = BTreeSet::new();
        let cur = p(&[("b", 2)]);
        // Sticky: nothing moves although a and c have none.
        assert_eq!(
            place(&deploy(2, json!({})), &[&a, &b, &c], &none, Some(&cur)),
            cur
        );
        // Scaling up adds to the emptiest nodes, keeping b's.
        assert_eq!(
            place(&deploy(4, json!({})), &[&a, &b, &c], &none, Some(&cur)),
            p(&[("a", 1), ("b", 2), ("c", 1)])
        );
        // Scaling down takes from the fullest.
        assert_eq!(
            place(
                &deploy(1, json!({})),
                &[&a, &b, &c],
                &none,
                Some(&p(&[("a", 1), ("b", 2)]))
            ),
            p(&[("a", 1)])
        );
        // Drained b: its replicas move.
        let b_drained = node("b", json!({}), true);
        assert_eq!(
            place(
                &deploy(2, json!({})),
                &[&a, &b_drained, &c],
                &none,
                Some(&cur)
            ),
            p(&[("a", 1), ("c", 1)])
        );
        // Revoked b: same.
        let revoked: BTreeSet<String> = ["b".to_string()].into();
        assert_eq!(
            place(&deploy(2, json!({})), &[&a, &b, &c], &revoked, Some(&cur)),
            p(&[("a", 1), ("c", 1)])
        );
        // Deleted b (not in the node list): same.
        assert_eq!(
            place(&deploy(2, json!({})), &[&a, &c], &none, Some(&cur)),
            p(&[("a", 1), ("c", 1)])
        );
        // No eligible node: nothing placed.
        assert_eq!(
            place(&deploy(2, json!({"zone":"z"})), &[&a], &none, None),
            p(&[])
        );
    }
}
