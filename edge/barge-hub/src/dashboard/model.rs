//! The fleet as the dashboard shows it, built from the hub's object cache and the watched
//! reports ([`super::live`]): nodes with their Ready state (the rule of `fleet get nodes`,
//! [`crate::api::nodes::readiness`]), their pods (each node's view, [`crate::view`]) and the
//! devices with each property's desired and reported value.

use barge_edge_proto::device::DeviceSpec;
use barge_edge_proto::keys::{ConnRecord, NodeRecord, Revoked};
use barge_edge_proto::object::{Kind, Object, PodStatus};
use serde_json::Value;

use super::live::Reports;
use crate::api::nodes::{readiness, NodeState};
use crate::store::cache::Snapshot;

/// One node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub name: String,
    pub online: bool,
    /// The Ready condition's reason (`SessionOpen`, `NodeSilent`...).
    pub reason: &'static str,
    pub last_seen: String,
    pub labels: Vec<(String, String)>,
    pub cpu_millis: u64,
    pub cpus: u32,
    pub memory_used: u64,
    pub memory_total: u64,
    pub pods: Vec<PodRow>,
}

/// One pod on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRow {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub restarts: u32,
    /// `ready/total` containers.
    pub ready: String,
}

/// One device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub model: String,
    pub state: String,
    pub properties: Vec<PropertyRow>,
}

/// One property of a device's twin.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyRow {
    pub name: String,
    pub desired: Option<String>,
    pub reported: Option<String>,
    /// Desired values were settled against each other (see the device's status).
    pub conflict: bool,
}

/// The whole page's data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    pub nodes: Vec<NodeRow>,
    pub devices: Vec<DeviceRow>,
}

/// Build the page's data at `now_secs` with the fleet's grace period.
pub fn build(snap: &Snapshot, rep: &Reports, grace_secs: u64, now_secs: i64) -> Fleet {
    let mut fleet = Fleet::default();
    for (_, object) in crate::view::of_kind(&snap.objects, Kind::Node) {
        let name = object.metadata.name.clone();
        let state = NodeState {
            object: Object::clone(object),
            record: rep.nodes.get(&name).map(|r| NodeRecord::clone(r)),
            conn: rep.conns.get(&name).map(|c| ConnRecord::clone(c)),
            revoked: snap
                .revoked
                .contains(&name)
                .then(|| Revoked { at: String::new() }),
        };
        let (ready, reason) = readiness(&state, grace_secs, now_secs);
        let online = ready == "True";
        let rec = state.record.clone().unwrap_or_default();
        let view = crate::view::node_view(object, &snap.objects, &snap.placements);
        let pods = view
            .iter()
            .filter(|(k, _)| k.kind == Kind::Pod)
            .map(|(k, _)| pod_row(rep, &name, &k.namespace, &k.name, online))
            .collect();
        fleet.nodes.push(NodeRow {
            name,
            online,
            reason,
            last_seen: rec.last_seen.clone(),
            labels: object
                .metadata
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cpu_millis: rec.usage.cpu_millis,
            cpus: rec.info.cpus,
            memory_used: rec.usage.memory_used_bytes,
            memory_total: rec.info.memory_bytes,
            pods,
        });
    }
    for (key, object) in crate::view::of_kind(&snap.objects, Kind::Device) {
        let spec: DeviceSpec = serde_json::from_value(object.spec.clone()).unwrap_or_default();
        let twin = rep
            .devices
            .get(&format!("{}/{}", key.namespace, key.name))
            .map(|t| &**t);
        // The same status the API shows ([`crate::devices::status`]).
        let status = crate::devices::status(&spec, twin);
        let properties = status
            .twins
            .iter()
            .map(|t| PropertyRow {
                name: t.property_name.clone(),
                desired: t.observed_desired.as_ref().map(|d| d.value.clone()),
                reported: t.reported.as_ref().map(|r| r.value.clone()),
                conflict: !t.conflicts.is_empty(),
            })
            .collect();
        fleet.devices.push(DeviceRow {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            node: spec.node_name.clone().unwrap_or_default(),
            model: spec
                .device_model_ref
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            state: status.state.clone().unwrap_or_else(|| "unknown".into()),
            properties,
        });
    }
    fleet
}

fn pod_row(rep: &Reports, node: &str, ns: &str, name: &str, online: bool) -> PodRow {
    let raw = rep.pods.get(&format!("{node}/{ns}/{name}"));
    let status: Option<PodStatus> = raw.and_then(|v| serde_json::from_value(Value::clone(v)).ok());
    let mut row = PodRow {
        namespace: ns.to_string(),
        name: name.to_string(),
        phase: "Pending".into(),
        restarts: 0,
        ready: "-".into(),
    };
    if let Some(s) = status {
        row.phase = phase_name(raw.and_then(|v| v.get("phase")));
        row.restarts = s.container_statuses.iter().map(|c| c.restart_count).sum();
        let ready = s.container_statuses.iter().filter(|c| c.ready).count();
        row.ready = format!("{ready}/{}", s.container_statuses.len());
    }
    if !online {
        row.phase = "Unknown".into();
    }
    row
}

fn phase_name(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("Unknown").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use barge_edge_proto::device::{Conflict, Origin, Versioned};
    use barge_edge_proto::keys::PropertyRecord;
    use barge_edge_proto::object::Object;
    use serde_json::json;
    use std::sync::Arc;

    fn put(snap: &mut Snapshot, v: Value) {
        let o: Object = serde_json::from_value(v).unwrap();
        snap.objects.insert(o.key(), std::sync::Arc::new(o));
    }

    fn ver(value: &str, version: u64) -> Versioned {
        Versioned {
            value: value.into(),
            version,
            origin: Origin::Cloud,
            timestamp: 0,
        }
    }

    #[test]
    fn nodes_pods_and_devices_from_cache_and_reports() {
        let mut snap = Snapshot::default();
        put(
            &mut snap,
            json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"up","labels":{"zone":"x"}}}),
        );
        put(
            &mut snap,
            json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"down"}}),
        );
        for (pod, node) in [("a", "up"), ("b", "down")] {
            put(
                &mut snap,
                json!({"apiVersion":"v1","kind":"Pod",
                "metadata":{"name":pod,"namespace":"default"},
                "spec":{"nodeName":node,"containers":[{"name":"c","image":"bb"}]}}),
            );
        }
        put(
            &mut snap,
            json!({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"Device",
            "metadata":{"name":"d","namespace":"default"},
            "spec":{"deviceModelRef":{"name":"m"},"nodeName":"up",
                "properties":[{"name":"t","desired":{"value":"21"}}]}}),
        );
        let mut rep = Reports::default();
        rep.conns.insert(
            "up".into(),
            Arc::new(ConnRecord {
                hub: "h".into(),
                since: String::new(),
            }),
        );
        rep.nodes.insert(
            "down".into(),
            Arc::new(NodeRecord {
                last_seen: barge_util::time::rfc3339_secs(900),
                ..Default::default()
            }),
        );
        let status = json!({"phase":"Running","observedAt":"x","containerStatuses":[
            {"name":"c","image":"bb","state":"running","ready":true,"restartCount":2}]});
        rep.pods
            .insert("up/default/a".into(), Arc::new(status.clone()));
        rep.pods.insert("down/default/b".into(), Arc::new(status));
        let mut twin = barge_edge_proto::keys::DeviceTwinRecord::default();
        twin.properties.insert(
            "t".into(),
            PropertyRecord {
                reported: Some(ver("20", 3)),
                conflicts: vec![Conflict {
                    kept: ver("21", 2),
                    lost: ver("19", 2),
                    at: String::new(),
                }],
            },
        );
        twin.state = Some("online".into());
        rep.devices.insert("default/d".into(), Arc::new(twin));

        let f = build(&snap, &rep, 40, 1000);
        let down = f.nodes.iter().find(|n| n.name == "down").unwrap();
        let up = f.nodes.iter().find(|n| n.name == "up").unwrap();
        assert!(up.online && !down.online);
        assert_eq!(down.reason, "NodeSilent");
        assert_eq!(up.labels, vec![("zone".to_string(), "x".to_string())]);
        assert_eq!(up.pods.len(), 1);
        assert_eq!(
            (
                up.pods[0].phase.as_str(),
                up.pods[0].restarts,
                up.pods[0].ready.as_str()
            ),
            ("Running", 2, "1/1")
        );
        // An offline node's pods are Unknown, whatever they last reported.
        assert_eq!(down.pods[0].phase, "Unknown");
        let d = &f.devices[0];
        assert_eq!(
            (d.node.as_str(), d.model.as_str(), d.state.as_str()),
            ("up", "m", "online")
        );
        assert_eq!(
            d.properties,
            vec![PropertyRow {
                name: "t".into(),
                desired: Some("21".into()),
                reported: Some("20".into()),
                conflict: true,
            }]
        );
        // Within the grace period a silent node is still online.
        assert!(build(&snap, &rep, 200, 1000).nodes.iter().all(|n| n.online));
    }
}
