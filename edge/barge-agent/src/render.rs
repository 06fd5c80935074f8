//! A desired Pod as `kube play` YAML: the Pod (with the agent's labels) and the ConfigMaps
//! and Secrets it references, plus the content hash that decides whether a running pod must
//! be replaced. The hash covers what changes what runs (the pod's labels, annotations and
//! spec, and the referenced objects' data), not revisions: a Deployment whose replica count
//! changed gets a new revision but the same hash, and its pods are left alone.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use barge_edge_proto::object::{Kind, ObjKey, Object};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Label on every pod the agent runs.
pub const LABEL_OWNER: &str = "io.barge.edge.owner";
/// Its value.
pub const OWNER_AGENT: &str = "agent";
/// Label: the content hash of what the pod was made from.
pub const LABEL_HASH: &str = "io.barge.edge.hash";

/// A desired pod, ready to play.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub key: ObjKey,
    pub revision: i64,
    pub hash: String,
    pub yaml: String,
    /// Referenced ConfigMaps/Secrets the cache lacks (kube play will refuse the pod).
    pub missing: Vec<ObjKey>,
}

/// The ConfigMaps and Secrets a pod spec references (volumes, projected volumes, env
/// valueFrom, envFrom), as keys in `namespace`.
pub fn references(spec: &Value, namespace: &str) -> BTreeSet<ObjKey> {
    let mut out = BTreeSet::new();
    let mut add = |kind: Kind, name: Option<&Value>| {
        if let Some(n) = name.and_then(Value::as_str) {
            out.insert(ObjKey {
                kind,
                namespace: namespace.to_string(),
                name: n.to_string(),
            });
        }
    };
    let arr = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    for v in arr(spec.get("volumes")) {
        add(
            Kind::ConfigMap,
            v.get("configMap").and_then(|c| c.get("name")),
        );
        add(
            Kind::Secret,
            v.get("secret").and_then(|s| s.get("secretName")),
        );
        for src in arr(v.get("projected").and_then(|p| p.get("sources"))) {
            add(
                Kind::ConfigMap,
                src.get("configMap").and_then(|c| c.get("name")),
            );
            add(Kind::Secret, src.get("secret").and_then(|s| s.get("name")));
        }
    }
    for list in ["containers", "initContainers"] {
        for c in arr(spec.get(list)) {
            for e in arr(c.get("env")) {
                let from = e.get("valueFrom");
                add(
                    Kind::ConfigMap,
                    from.and_then(|f| f.get("configMapKeyRef"))
                        .and_then(|r| r.get("name")),
                );
                add(
                    Kind::Secret,
                    from.and_then(|f| f.get("secretKeyRef"))
                        .and_then(|r| r.get("name")),
                );
            }
            for e in arr(c.get("envFrom")) {
                add(
                    Kind::ConfigMap,
                    e.get("configMapRef").and_then(|r| r.get("name")),
                );
                add(Kind::Secret, e.get("secretRef").and_then(|r| r.get("name")));
            }
        }
    }
    out
}

/// The object as it goes into the YAML: no status, no server-set metadata.
fn clean(o: &Object) -> Object {
    let mut o = o.clone();
    o.status = Value::Null;
    o.metadata.resource_version = None;
    o.metadata.uid = None;
    o.metadata.creation_timestamp = None;
    o.metadata.owner_references.clear();
    o
}

/// The device's name for fleet pod `key`: its name in the `default` namespace, else
/// `<name>_<namespace>` (`_` is in no Kubernetes name or namespace, so pods of the same
/// name in two namespaces never collide on the device).
pub fn engine_name(key: &ObjKey) -> String {
    if key.namespace.is_empty() || key.namespace == "default" {
        key.name.clone()
    } else {
        format!("{}_{}", key.name, key.namespace)
    }
}

/// Render `pod` with what it references from `data` (ConfigMaps and Secrets by key).
pub fn render(pod: &Object, data: &BTreeMap<ObjKey, &Object>) -> Result<Rendered> {
    let key = pod.key();
    let mut refs = Vec::new();
    let mut missing = Vec::new();
    for r in references(&pod.spec, &key.namespace) {
        match data.get(&r) {
            Some(o) => refs.push(clean(o)),
            None => missing.push(r),
        }
    }
    let mut p = clean(pod);
    p.metadata.namespace = Some(key.namespace.clone());
    p.metadata.name = engine_name(&key);
    let content = json!({
        "labels": p.metadata.labels,
        "annotations": p.metadata.annotations,
        "spec": p.spec,
        "refs": refs.iter().map(|o| json!({
            "kind": o.kind, "name": o.metadata.name, "data": o.data,
            "stringData": o.string_data, "type": o.type_,
        })).collect::<Vec<_>>(),
    });
    let canon = serde_json::to_vec(&content).context("encode pod content")?;
    let hash = hex::encode(Sha256::digest(&canon))[..16].to_string();
    p.metadata
        .labels
        .insert(LABEL_OWNER.into(), OWNER_AGENT.into());
    p.metadata.labels.insert(LABEL_HASH.into(), hash.clone());
    let mut yaml = String::new();
    for o in refs.iter().chain(std::iter::once(&p)) {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(o).with_context(|| format!("YAML of {}", o.key()))?);
    }
    Ok(Rendered {
        key,
        revision: pod.revision(),
        hash,
        yaml,
        missing,
    })
}

/// The YAML `kube down` needs to find a pod play made.
pub fn down_yaml(name: &str, namespace: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name:?}\n  namespace: {namespace:?}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Object {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hash_ignores_revisions_and_follows_data() {
        let pod = obj(json!({"apiVersion":"v1","kind":"Pod",
            "metadata":{"name":"web","resourceVersion":"5"},
            "spec":{"containers":[{"name":"c","image":"bb",
                "envFrom":[{"configMapRef":{"name":"cfg"}}]}],
                "volumes":[{"name":"s","secret":{"secretName":"sec"}}]}}));
        let cm = obj(json!({"apiVersion":"v1","kind":"ConfigMap",
            "metadata":{"name":"cfg","resourceVersion":"3"},"data":{"a":"1"}}));
        let mut data = BTreeMap::new();
        data.insert(cm.key(), &cm);
        let r1 = render(&pod, &data).unwrap();
        assert_eq!(r1.missing.len(), 1);
        assert_eq!(r1.missing[0].name, "sec");
        assert!(r1.yaml.contains("kind: ConfigMap") && r1.yaml.contains(LABEL_HASH));
        assert!(!r1.yaml.contains("resourceVersion"));
        let mut pod2 = pod.clone();
        pod2.metadata.resource_version = Some("9".into());
        assert_eq!(render(&pod2, &data).unwrap().hash, r1.hash);
        let mut cm2 = cm.clone();
        cm2.data = Some([("a".to_string(), "2".to_string())].into());
        let mut data2 = BTreeMap::new();
        data2.insert(cm2.key(), &cm2);
        assert_ne!(render(&pod, &data2).unwrap().hash, r1.hash);
    }
}
