//! A node's desired set: the objects the hub sends it (EDGE.md "What the hub sends a node").
//!
//! Pods bound to the node by `spec.nodeName`, the pods of Deployments placed on it
//! (`placements/`, `<deploy>-<node>-<i>`) and of DaemonSets whose template's nodeSelector
//! matches its labels (`<ds>-<node>`), plus the ConfigMaps and Secrets those pods reference
//! in the same namespace; the Devices whose `spec.nodeName` is the node, with the
//! DeviceModels they reference (same namespace). Nothing else ever reaches a node.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use barge_edge_proto::keys::Placement;
use barge_edge_proto::object::{Kind, ObjKey, Object, ObjectMeta, OwnerReference};
use serde_json::Value;

/// Label the hub puts on pods it derives from a workload.
pub const OWNER_LABEL: &str = "barge.io/owner";

/// The fleet's objects as the cache holds them: a persistent map (a snapshot per change
/// shares all but the changed path with the one before; objects are never copied).
pub type Objects = imbl::OrdMap<ObjKey, Arc<Object>>;

/// Every object of `kind` (keys sort by kind first: a range, not a scan of the fleet).
pub fn of_kind(objects: &Objects, kind: Kind) -> impl Iterator<Item = (&ObjKey, &Arc<Object>)> {
    let from = ObjKey {
        kind,
        namespace: String::new(),
        name: String::new(),
    };
    objects
        .range(from..)
        .take_while(move |(k, _)| k.kind == kind)
}

/// Every object of `kind` in namespace `ns`.
pub fn of_kind_in<'a>(
    objects: &'a Objects,
    kind: Kind,
    ns: &'a str,
) -> impl Iterator<Item = (&'a ObjKey, &'a Arc<Object>)> {
    let from = ObjKey {
        kind,
        namespace: ns.to_string(),
        name: String::new(),
    };
    objects
        .range(from..)
        .take_while(move |(k, _)| k.kind == kind && k.namespace == ns)
}

/// The objects `node` must hold, keyed, each with its revision in `resourceVersion`.
/// Reads only the workload and device kinds (not the fleet's nodes), so its cost grows with
/// the workloads, not with the fleet.
pub fn node_view(
    node: &Object,
    objects: &Objects,
    placements: &BTreeMap<(String, String), Placement>,
) -> BTreeMap<ObjKey, Arc<Object>> {
    let name = node.metadata.name.as_str();
    let mut out = BTreeMap::new();
    let bound = |o: &Object| o.spec.get("nodeName").and_then(Value::as_str) == Some(name);
    for (key, obj) in of_kind(objects, Kind::Pod) {
        if bound(obj) {
            out.insert(key.clone(), obj.clone());
        }
    }
    for (key, obj) in of_kind(objects, Kind::Deployment) {
        let count = placements
            .get(&(key.namespace.clone(), key.name.clone()))
            .and_then(|p| p.nodes.get(name))
            .copied()
            .unwrap_or(0);
        for i in 0..count {
            let pod = derived_pod(obj, name, format!("{}-{name}-{i}", key.name));
            out.insert(pod.key(), Arc::new(pod));
        }
    }
    for (key, obj) in of_kind(objects, Kind::DaemonSet) {
        if selector_matches(template_spec(obj), &node.metadata.labels) {
            let pod = derived_pod(obj, name, format!("{}-{name}", key.name));
            out.insert(pod.key(), Arc::new(pod));
        }
    }
    for (key, obj) in of_kind(objects, Kind::Device) {
        if bound(obj) {
            out.insert(key.clone(), obj.clone());
        }
    }
    let mut refs = BTreeSet::new();
    for obj in out.values() {
        if obj.kind == Kind::Device {
            if let Some(k) = device_model_ref(obj) {
                refs.insert(k);
            }
        } else {
            referenced(&obj.spec, obj.namespace(), &mut refs);
        }
    }
    for key in refs {
        if let Some(obj) = objects.get(&key) {
            out.insert(key, obj.clone());
        }
    }
    out
}

/// The DeviceModel a Device references (same namespace).
pub fn device_model_ref(device: &Object) -> Option<ObjKey> {
    device
        .spec
        .pointer("/deviceModelRef/name")
        .and_then(Value::as_str)
        .map(|m| ObjKey {
            kind: Kind::DeviceModel,
            namespace: device.namespace().to_string(),
            name: m.to_string(),
        })
}

/// The ConfigMaps and Secrets a workload's pods reference (a Pod's spec, or a
/// Deployment's/DaemonSet's template).
pub fn workload_refs(workload: &Object) -> BTreeSet<ObjKey> {
    let spec = match workload.kind {
        Kind::Pod => &workload.spec,
        _ => template_spec(workload),
    };
    let mut out = BTreeSet::new();
    referenced(spec, workload.namespace(), &mut out);
    out
}

/// A workload's `spec.template.spec`.
pub fn template_spec(workload: &Object) -> &Value {
    workload
        .spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .unwrap_or(&Value::Null)
}

/// Whether a pod spec's `nodeSelector` (every key=value) and `nodeName` (when set) allow a
/// node with `labels` and name... (the name is checked by the controller; here labels only).
pub fn selector_matches(pod_spec: &Value, labels: &BTreeMap<String, String>) -> bool {
    match pod_spec.get("nodeSelector").and_then(Value::as_object) {
        None => true,
        Some(sel) => sel.iter().all(|(k, v)| {
            v.as_str()
                .is_some_and(|v| labels.get(k).map(String::as_str) == Some(v))
        }),
    }
}

/// The pod a workload runs on `node`, named `pod_name`.
fn derived_pod(workload: &Object, node: &str, pod_name: String) -> Object {
    let template = workload.spec.get("template");
    // The template's metadata has no name: read its labels and annotations by hand.
    let tmeta = template.and_then(|t| t.get("metadata"));
    let map = |field: &str| -> BTreeMap<String, String> {
        tmeta
            .and_then(|m| m.get(field))
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default()
    };
    let mut spec = template_spec(workload).clone();
    if let Some(m) = spec.as_object_mut() {
        m.insert("nodeName".into(), Value::String(node.to_string()));
    } else {
        spec = serde_json::json!({ "nodeName": node });
    }
    let mut labels = map("labels");
    labels.insert(
        OWNER_LABEL.into(),
        format!("{}/{}", workload.kind, workload.metadata.name),
    );
    Object {
        api_version: "v1".into(),
        kind: Kind::Pod,
        metadata: ObjectMeta {
            name: pod_name,
            namespace: Some(workload.namespace().to_string()),
            labels,
            annotations: map("annotations"),
            resource_version: workload.metadata.resource_version.clone(),
            uid: None,
            creation_timestamp: workload.metadata.creation_timestamp.clone(),
            owner_references: vec![OwnerReference {
                api_version: workload.kind.api_version().into(),
                kind: workload.kind.as_str().into(),
                name: workload.metadata.name.clone(),
                uid: workload.metadata.uid.clone(),
            }],
        },
        spec,
        status: Value::Null,
        data: None,
        string_data: None,
        type_: None,
    }
}

/// Add the ConfigMaps and Secrets a pod spec references (volumes, env, envFrom).
fn referenced(spec: &Value, ns: &str, out: &mut BTreeSet<ObjKey>) {
    let mut add = |kind: Kind, name: Option<&Value>| {
        if let Some(name) = name.and_then(Value::as_str) {
            out.insert(ObjKey {
                kind,
                namespace: ns.to_string(),
                name: name.to_string(),
            });
        }
    };
    let arr = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    for vol in arr(spec.get("volumes")) {
        add(Kind::ConfigMap, vol.pointer("/configMap/name"));
        add(Kind::Secret, vol.pointer("/secret/secretName"));
        for src in arr(vol.pointer("/projected/sources")) {
            add(Kind::ConfigMap, src.pointer("/configMap/name"));
            add(Kind::Secret, src.pointer("/secret/name"));
        }
    }
    let containers = arr(spec.get("containers"))
        .into_iter()
        .chain(arr(spec.get("initContainers")));
    for c in containers {
        for e in arr(c.get("env")) {
            add(
                Kind::ConfigMap,
                e.pointer("/valueFrom/configMapKeyRef/name"),
            );
            add(Kind::Secret, e.pointer("/valueFrom/secretKeyRef/name"));
        }
        for e in arr(c.get("envFrom")) {
            add(Kind::ConfigMap, e.pointer("/configMapRef/name"));
            add(Kind::Secret, e.pointer("/secretRef/name"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value, rev: i64) -> Object {
        let mut o: Object = serde_json::from_value(v).unwrap();
        o.metadata.resource_version = Some(rev.to_string());
        o
    }

    fn node(name: &str, labels: Value) -> Object {
        obj(
            json!({"apiVersion":"v1","kind":"Node","metadata":{"name":name,"labels":labels}}),
            1,
        )
    }

    fn fleet() -> Objects {
        let list = vec![
            obj(
                json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p-a","namespace":"default"},
                "spec":{"nodeName":"a","containers":[{"name":"c","image":"busybox",
                "env":[{"name":"X","valueFrom":{"secretKeyRef":{"name":"s1","key":"k"}}}]}]}}),
                5,
            ),
            obj(
                json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p-b","namespace":"default"},
                "spec":{"nodeName":"b","containers":[{"name":"c","image":"busybox"}],
                "volumes":[{"name":"v","configMap":{"name":"cm-b"}}]}}),
                6,
            ),
            obj(
                json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"unplaced","namespace":"default"},
                "spec":{"containers":[{"name":"c","image":"busybox"}]}}),
                7,
            ),
            obj(
                json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s1","namespace":"default"},"data":{"k":"dg=="}}),
                2,
            ),
            obj(
                json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-b","namespace":"default"},"data":{"x":"y"}}),
                3,
            ),
            obj(
                json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-web","namespace":"prod"},"data":{"x":"y"}}),
                3,
            ),
            obj(
                json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod","uid":"u1"},
                "spec":{"replicas":3,"template":{"metadata":{"labels":{"app":"web"}},
                "spec":{"containers":[{"name":"c","image":"nginx","envFrom":[{"configMapRef":{"name":"cm-web"}}]}]}}}}),
                9,
            ),
            obj(
                json!({"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent","namespace":"default"},
                "spec":{"template":{"spec":{"nodeSelector":{"zone":"x"},"containers":[{"name":"c","image":"busybox"}]}}}}),
                11,
            ),
        ];
        list.into_iter().map(|o| (o.key(), Arc::new(o))).collect()
    }

    #[test]
    fn node_sees_only_its_own_objects() {
        let objects = fleet();
        let mut placements = BTreeMap::new();
        placements.insert(
            ("prod".to_string(), "web".to_string()),
            Placement {
                nodes: [("a".to_string(), 2), ("b".to_string(), 1)].into(),
            },
        );
        let a = node_view(&node("a", json!({"zone":"x"})), &objects, &placements);
        let expect: BTreeSet<&str> = [
            "pods/default/agent-a",
            "pods/default/p-a",
            "pods/prod/web-a-0",
            "pods/prod/web-a-1",
            "configmaps/prod/cm-web",
            "secrets/default/s1",
        ]
        .into();
        let got: BTreeSet<String> = a.keys().map(|k| k.to_string()).collect();
        assert_eq!(got, expect.iter().map(|s| s.to_string()).collect());

        let b = node_view(&node("b", json!({})), &objects, &placements);
        let got: BTreeSet<String> = b.keys().map(|k| k.to_string()).collect();
        let expect: BTreeSet<String> = [
            "pods/default/p-b",
            "pods/prod/web-b-0",
            "configmaps/default/cm-b",
            "configmaps/prod/cm-web",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(got, expect);
        // Devices go to their node with their model; another node's device does not.
        let mut objects = objects;
        for o in [
            obj(
                json!({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"DeviceModel",
                "metadata":{"name":"thermo","namespace":"default"},"spec":{"properties":[]}}),
                12,
            ),
            obj(
                json!({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"DeviceModel",
                "metadata":{"name":"unused","namespace":"default"},"spec":{"properties":[]}}),
                13,
            ),
            obj(
                json!({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"Device",
                "metadata":{"name":"t1","namespace":"default"},
                "spec":{"nodeName":"b","deviceModelRef":{"name":"thermo"}}}),
                14,
            ),
            obj(
                json!({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"Device",
                "metadata":{"name":"t2","namespace":"default"},
                "spec":{"nodeName":"z","deviceModelRef":{"name":"thermo"}}}),
                15,
            ),
        ] {
            objects.insert(o.key(), Arc::new(o));
        }
        let b = node_view(&node("b", json!({})), &objects, &placements);
        let got: BTreeSet<String> = b
            .keys()
            .filter(|k| matches!(k.kind, Kind::Device | Kind::DeviceModel))
            .map(|k| k.to_string())
            .collect();
        let expect: BTreeSet<String> = ["devices/default/t1", "devicemodels/default/thermo"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, expect);
        // Node c: no pod bound, not placed, no matching DaemonSet -> nothing at all.
        assert!(node_view(&node("c", json!({"zone":"y"})), &objects, &placements).is_empty());
    }

    #[test]
    fn derived_pods_carry_template_owner_and_revision() {
        let objects = fleet();
        let placements = [(
            ("prod".to_string(), "web".to_string()),
            Placement {
                nodes: [("a".to_string(), 1)].into(),
            },
        )]
        .into();
        let v = node_view(&node("a", json!({})), &objects, &placements);
        let pod = &v[&ObjKey {
            kind: Kind::Pod,
            namespace: "prod".into(),
            name: "web-a-0".into(),
        }];
        assert_eq!(pod.revision(), 9);
        assert_eq!(pod.metadata.labels["app"], "web");
        assert_eq!(pod.metadata.labels[OWNER_LABEL], "Deployment/web");
        assert_eq!(pod.metadata.owner_references[0].uid.as_deref(), Some("u1"));
        assert_eq!(pod.spec["nodeName"], "a");
        assert_eq!(pod.spec["containers"][0]["image"], "nginx");
        // The DaemonSet's nodeSelector zone=x does not match a node without labels.
        assert!(!v.keys().any(|k| k.name.starts_with("agent-")));
    }
}
