//! The hub's etcd layout. Every hub process of a fleet reads and writes these keys; values
//! are JSON. `PREFIX` is `/barge/` (a hub's `--etcd-prefix` may change it for tests).
//!
//! | key | value | written by |
//! |-----|-------|------------|
//! | `objects/<plural>/<ns>/<name>` (`<ns>` empty for nodes: `objects/nodes//<name>`) | [`crate::object::Object`] without `status` | fleet API |
//! | `status/pods/<node>/<ns>/<name>` | [`crate::object::PodStatus`] | the hub holding the node's session |
//! | `status/devices/<ns>/<name>` | [`DeviceTwinRecord`]: reported values, conflicts, state | the hub holding the node's session (conflicts: any hub settling an edit) |
//! | `status/nodes/<node>` | [`NodeRecord`] | the hub holding the session |
//! | `conns/<node>` | [`ConnRecord`], attached to the writing hub's etcd lease | the hub holding the session |
//! | `placements/<ns>/<deployment>` | [`Placement`] | the hub that holds the controller lock |
//! | `hubs/<hub id>` | [`HubRecord`], attached to the hub's lease | each hub |
//! | `tokens/<id>` | [`TokenRecord`] (deleted when used, in the same transaction as the node's creation) | fleet API / hub |
//! | `revoked/<node>` | [`Revoked`] | fleet API |
//! | `pki/ca` | [`CaRecord`]: CA certificates and their keys sealed with the hub's key file | first hub / CA rotation |
//! | `pki/admin-token` | SHA-256 hex of the admin bearer token | first hub |
//! | `pki/admin-certs/<name>` | [`AdminCertRecord`]: an admin client certificate name issued, and its revocation | fleet API |
//! | `locks/controller` | the hub id holding the controller lock (lease-attached) | hubs |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::device::{Conflict, Versioned};
use crate::object::{Kind, NodeInfo, NodeUsage};

/// Default key prefix.
pub const PREFIX: &str = "/barge/";

/// `objects/<plural>/<ns>/<name>` under `prefix`.
pub fn object(prefix: &str, kind: Kind, namespace: &str, name: &str) -> String {
    format!("{prefix}objects/{}/{namespace}/{name}", kind.plural())
}

/// `objects/<plural>/` under `prefix`: every object of a kind.
pub fn objects_of(prefix: &str, kind: Kind) -> String {
    format!("{prefix}objects/{}/", kind.plural())
}

/// `status/pods/<node>/<ns>/<name>`.
pub fn pod_status(prefix: &str, node: &str, namespace: &str, name: &str) -> String {
    format!("{prefix}status/pods/{node}/{namespace}/{name}")
}

/// `status/devices/<ns>/<name>`.
pub fn device_status(prefix: &str, namespace: &str, name: &str) -> String {
    format!("{prefix}status/devices/{namespace}/{name}")
}

/// `status/nodes/<node>`.
pub fn node_status(prefix: &str, node: &str) -> String {
    format!("{prefix}status/nodes/{node}")
}

/// `conns/<node>`.
pub fn conn(prefix: &str, node: &str) -> String {
    format!("{prefix}conns/{node}")
}

/// `placements/<ns>/<deployment>`.
pub fn placement(prefix: &str, namespace: &str, name: &str) -> String {
    format!("{prefix}placements/{namespace}/{name}")
}

/// `hubs/<id>`.
pub fn hub(prefix: &str, id: &str) -> String {
    format!("{prefix}hubs/{id}")
}

/// `tokens/<id>`.
pub fn token(prefix: &str, id: &str) -> String {
    format!("{prefix}tokens/{id}")
}

/// `revoked/<node>`.
pub fn revoked(prefix: &str, node: &str) -> String {
    format!("{prefix}revoked/{node}")
}

/// `pki/admin-certs/<name>`.
pub fn admin_cert(prefix: &str, name: &str) -> String {
    format!("{prefix}pki/admin-certs/{name}")
}

/// An admin client certificate name (`admin:<name>`): when its latest certificate was
/// issued and until when it is valid; once `revoked` is set, every certificate of that name
/// is refused (checked on each API request) and the name cannot be issued again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCertRecord {
    /// RFC 3339.
    pub issued: String,
    /// RFC 3339: expiry of the latest certificate issued.
    pub not_after: String,
    /// RFC 3339: when it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

/// What the hub keeps about a node besides its object: what the agent reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    pub info: NodeInfo,
    pub usage: NodeUsage,
    /// RFC 3339: when a hub last heard from the node (written on connect, on disconnect and
    /// at most once a minute in between).
    pub last_seen: String,
    /// The highest revision the node has acked.
    pub acked_revision: i64,
    /// RFC 3339: when its current certificate expires.
    #[serde(default)]
    pub cert_not_after: Option<String>,
}

/// A live session: which hub holds it (lease-attached, so it vanishes with a dead hub).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnRecord {
    pub hub: String,
    /// RFC 3339.
    pub since: String,
}

/// Where a Deployment's replicas run: node -> replica count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub nodes: BTreeMap<String, u32>,
}

/// A running hub: its edge endpoint and its internal API (for forwarding tunnels to the
/// hub that holds a node's session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubRecord {
    /// `host:port` edges connect to.
    pub edge_endpoint: String,
    /// `http://host:port` of its fleet API.
    pub api_url: String,
}

/// A join token as stored (the secret only as a hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub secret_sha256: String,
    /// Joins any number of nodes until it expires (kubeadm's and k3s's habit, for
    /// provisioning many devices); one-time when false (the default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reusable: bool,
    /// RFC 3339.
    pub expires: String,
    /// RFC 3339.
    pub created: String,
}

/// A revoked node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    /// RFC 3339.
    pub at: String,
}

/// The fleet's CA(s). `cas[0]` signs new certificates; every entry is trusted (two during
/// a rotation). Keys are sealed with the hub's key file (see the hub's `pki` module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaRecord {
    pub cas: Vec<CaEntry>,
}

/// One CA: certificate (PEM) and sealed private key (base64 of nonce || ciphertext).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaEntry {
    pub cert_pem: String,
    pub sealed_key: String,
}

/// What the hub keeps about a device besides its object: what its edge reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceTwinRecord {
    /// Property name -> its reported value and past conflicts.
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyRecord>,
    /// `online`/`offline`/`unknown`, as the mapper last said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// RFC 3339: when the device was last `online`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_online: Option<String>,
}

/// One property of a [`DeviceTwinRecord`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyRecord {
    /// The highest-versioned reported value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Versioned>,
    /// Desired values settled against each other (newest last, at most
    /// [`crate::device::MAX_CONFLICTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}
