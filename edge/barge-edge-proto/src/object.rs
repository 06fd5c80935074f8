//! Kubernetes-like resources, as the fleet API serves them and as the hub sends them to
//! edges: `{"apiVersion", "kind", "metadata", "spec", "status"}`. `spec` and `status` stay
//! JSON values (the kinds are Kubernetes' own shapes; `barge kube play` on the edge is their
//! schema check), `metadata` is typed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kinds the fleet stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Node,
    Pod,
    Deployment,
    DaemonSet,
    ConfigMap,
    Secret,
    /// KubeEdge's `devices.kubeedge.io/v1beta1` `DeviceModel` (see [`crate::device`]).
    DeviceModel,
    /// KubeEdge's `devices.kubeedge.io/v1beta1` `Device` (see [`crate::device`]).
    Device,
}

impl Kind {
    /// Every kind, in the order `fleet apply` creates them (data before workloads).
    pub const ALL: [Kind; 8] = [
        Kind::Node,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::DeviceModel,
        Kind::Device,
        Kind::Pod,
        Kind::Deployment,
        Kind::DaemonSet,
    ];

    /// `apiVersion` of the kind.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::DaemonSet => "apps/v1",
            Kind::DeviceModel | Kind::Device => crate::device::API_VERSION,
            _ => "v1",
        }
    }

    /// The kind's name as in YAML (`Deployment`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::DaemonSet => "DaemonSet",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::DeviceModel => "DeviceModel",
            Kind::Device => "Device",
        }
    }

    /// Lowercase plural used in URLs and etcd keys (`deployments`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::Pod => "pods",
            Kind::Deployment => "deployments",
            Kind::DaemonSet => "daemonsets",
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
            Kind::DeviceModel => "devicemodels",
            Kind::Device => "devices",
        }
    }

    /// Nodes are cluster-wide; everything else lives in a namespace.
    pub fn namespaced(self) -> bool {
        self != Kind::Node
    }

    /// From a YAML `kind`, a plural, a singular or a short name (`deploy`, `ds`, `cm`, `no`,
    /// `po`, `dev`, `dm`), case-insensitive.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "node" | "nodes" | "no" => Kind::Node,
            "pod" | "pods" | "po" => Kind::Pod,
            "deployment" | "deployments" | "deploy" => Kind::Deployment,
            "daemonset" | "daemonsets" | "ds" => Kind::DaemonSet,
            "configmap" | "configmaps" | "cm" => Kind::ConfigMap,
            "secret" | "secrets" => Kind::Secret,
            "devicemodel" | "devicemodels" | "dm" => Kind::DeviceModel,
            "device" | "devices" | "dev" => Kind::Device,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    /// `default` when not given (never set on Nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The etcd revision that last changed the object, as a decimal string (Kubernetes'
    /// convention). Set by the hub; ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Set by the hub when the object is first stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// RFC 3339, set by the hub when the object is first stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Pods the hub derives from a Deployment or DaemonSet point at it here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
}

/// `metadata.ownerReferences[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// One resource. `spec` and `status` are Kubernetes' shapes for the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    pub api_version: String,
    pub kind: Kind,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub spec: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub status: Value,
    /// ConfigMap and Secret contents (`data`; Secret values base64 as in Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    /// Secret `stringData` (folded into `data` by the hub when stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_data: Option<BTreeMap<String, String>>,
    /// Secret `type`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

impl Object {
    /// The object's namespace (`default` when unset; empty for Nodes).
    pub fn namespace(&self) -> &str {
        if !self.kind.namespaced() {
            return "";
        }
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// Its key (kind, namespace, name).
    pub fn key(&self) -> ObjKey {
        ObjKey {
            kind: self.kind,
            namespace: self.namespace().to_string(),
            name: self.metadata.name.clone(),
        }
    }

    /// `metadata.resourceVersion` as a number (0 when unset or not a number).
    pub fn revision(&self) -> i64 {
        self.metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// Identifies an object: kind, namespace (empty for Nodes) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind.plural(), self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind.plural(), self.namespace, self.name)
        }
    }
}

/// A Kubernetes-style list (`{"apiVersion":"v1","kind":"List","items":[...]}`), what
/// `fleet get -o json` prints and the fleet API's list endpoints return.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct List {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ListMeta,
    pub items: Vec<Object>,
}

/// `metadata` of a list: the etcd revision it was read at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

impl List {
    pub fn new(items: Vec<Object>, revision: i64) -> List {
        List {
            api_version: "v1".into(),
            kind: "List".into(),
            metadata: ListMeta {
                resource_version: Some(revision.to_string()),
            },
            items,
        }
    }
}

/// Pod phases, as Kubernetes names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// A container's state inside a [`PodStatus`] (Kubernetes' `containerStatuses[]`, reduced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// The container's name in the pod spec.
    pub name: String,
    /// barge's container id on the device.
    #[serde(default)]
    pub container_id: String,
    pub image: String,
    /// `waiting`, `running` or `terminated`.
    pub state: String,
    pub ready: bool,
    pub restart_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `status` of a Pod, as the agent reports it and the hub stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub phase: PodPhase,
    /// The `resourceVersion` of the pod spec this status is for.
    #[serde(default)]
    pub observed_revision: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
    /// barge's pod id on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Why it is not running (a failed pull, a bad spec...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339 time the agent observed this status.
    pub observed_at: String,
}

/// `status` of a Node (what the agent reports plus what the hub derives).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub architecture: String,
    pub os: String,
    pub kernel_version: String,
    pub agent_version: String,
    /// Logical CPUs.
    pub cpus: u32,
    pub memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// Resource use the agent reports with its heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeUsage {
    /// CPU in use, in thousandths of a CPU.
    pub cpu_millis: u64,
    pub memory_used_bytes: u64,
    pub pods: u32,
    pub containers_running: u32,
}
