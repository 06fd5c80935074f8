//! Devices and their twins: KubeEdge's `devices.kubeedge.io/v1beta1` `DeviceModel` and
//! `Device` shapes (users bring their manifests unchanged), the versioned twin values the hub
//! and the agent keep, the rule that settles desired values edited on both sides while the
//! link was down, and ([`mqtt`]) the topics and payloads of the edge's EventBus.
//!
//! Who owns what:
//! - **desired** values live in the `Device` object (`spec.properties[].desired`), stored by
//!   the hub in `objects/devices/...`; the hub is the only writer. A cloud edit (apply, or the
//!   twin endpoint) bumps the property's version by one with origin `cloud`; an edge edit
//!   (an app publishing `expected` on `$hw/events/device/{id}/twin/update`) travels up as a
//!   [`DesiredEdit`] and the hub settles it with [`resolve_desired`]. The version and origin
//!   ride in `desired.metadata` (`version`, `origin`, `timestamp`), so the object the edge
//!   receives through the ordinary Sync carries them.
//! - **reported** values come only from the device (its mapper, over MQTT `actual`); the
//!   agent keeps them durable and sends them up ([`crate::wire::EdgeMsg::Twin`]); the hub
//!   keeps the highest version per property in `status/devices/<ns>/<name>`
//!   ([`crate::keys::DeviceTwinRecord`]). A reported version is `max(previous + 1, unix ms)`,
//!   so a device whose agent lost its database still moves forward.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `apiVersion` of `DeviceModel` and `Device`.
pub const API_VERSION: &str = "devices.kubeedge.io/v1beta1";

/// How many past conflicts the hub keeps per property (newest last).
pub const MAX_CONFLICTS: usize = 10;

/// `spec` of a `DeviceModel`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceModelSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default)]
    pub properties: Vec<ModelProperty>,
}

impl DeviceModelSpec {
    pub fn property(&self, name: &str) -> Option<&ModelProperty> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// `spec.properties[]` of a `DeviceModel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelProperty {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub type_: PropertyType,
    #[serde(default)]
    pub access_mode: AccessMode,
    /// Inclusive bounds for INT, FLOAT and DOUBLE (strings, as KubeEdge writes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A property's value type (KubeEdge v1beta1 spells them in capitals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PropertyType {
    Int,
    Float,
    Double,
    String,
    Boolean,
    Bytes,
    Stream,
}

/// Whether the cloud (or an edge app) may set a desired value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessMode {
    #[default]
    ReadWrite,
    ReadOnly,
}

/// Why a value is refused for a property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{value:?} is not a valid {expected}")]
    WrongType {
        value: String,
        expected: &'static str,
    },
    #[error("{value} is below the minimum {minimum}")]
    BelowMinimum { value: String, minimum: String },
    #[error("{value} is above the maximum {maximum}")]
    AboveMaximum { value: String, maximum: String },
    #[error("the property is ReadOnly: only the device reports it")]
    ReadOnly,
}

impl PropertyType {
    /// The type name in MQTT twin metadata (`{"type": "int"}`), KubeEdge's lowercase names.
    pub fn twin_type(self) -> &'static str {
        match self {
            PropertyType::Int => "int",
            PropertyType::Float => "float",
            PropertyType::Double => "double",
            PropertyType::String => "string",
            PropertyType::Boolean => "boolean",
            PropertyType::Bytes => "bytes",
            PropertyType::Stream => "stream",
        }
    }
}

impl ModelProperty {
    /// Check a value (as the string a twin carries) against the type and bounds. Access mode
    /// is not checked here (a ReadOnly property is still *reported*); see [`Self::check_desired`].
    pub fn check_value(&self, value: &str) -> Result<(), ValueError> {
        let wrong = |expected| ValueError::WrongType {
            value: value.to_string(),
            expected,
        };
        let number = match self.type_ {
            PropertyType::Int => {
                Some(value.trim().parse::<i64>().map_err(|_| wrong("integer"))? as f64)
            }
            PropertyType::Float | PropertyType::Double => {
                let v = value.trim().parse::<f64>().map_err(|_| wrong("number"))?;
                if !v.is_finite() {
                    return Err(wrong("finite number"));
                }
                Some(v)
            }
            PropertyType::Boolean => {
                if value != "true" && value != "false" {
                    return Err(wrong("boolean (true or false)"));
                }
                None
            }
            PropertyType::String | PropertyType::Bytes | PropertyType::Stream => None,
        };
        if let Some(n) = number {
            if let Some(min) = self
                .minimum
                .as_deref()
                .and_then(|m| m.trim().parse::<f64>().ok())
            {
                if n < min {
                    return Err(ValueError::BelowMinimum {
                        value: value.to_string(),
                        minimum: self.minimum.clone().unwrap_or_default(),
                    });
                }
            }
            if let Some(max) = self
                .maximum
                .as_deref()
                .and_then(|m| m.trim().parse::<f64>().ok())
            {
                if n > max {
                    return Err(ValueError::AboveMaximum {
                        value: value.to_string(),
                        maximum: self.maximum.clone().unwrap_or_default(),
                    });
                }
            }
        }
        Ok(())
    }

    /// [`Self::check_value`] plus: the property must be ReadWrite.
    pub fn check_desired(&self, value: &str) -> Result<(), ValueError> {
        if self.access_mode == AccessMode::ReadOnly {
            return Err(ValueError::ReadOnly);
        }
        self.check_value(value)
    }
}

/// `spec` of a `Device`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model_ref: Option<ModelRef>,
    /// The edge node the device is attached to (the hub sends it there, with its model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default)]
    pub properties: Vec<DeviceProperty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolConfig>,
}

impl DeviceSpec {
    pub fn property(&self, name: &str) -> Option<&DeviceProperty> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// `spec.deviceModelRef`: a `DeviceModel` in the device's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
}

/// `spec.properties[]` of a `Device`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProperty {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<TwinProperty>,
    /// How the mapper reaches the property (protocol-specific `configData`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitors: Option<Visitor>,
    /// Milliseconds between reports to the cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_cycle: Option<i64>,
    /// Milliseconds between reads from the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect_cycle: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_to_cloud: Option<bool>,
}

/// A twin value as KubeEdge writes it: `{value, metadata}`; barge keeps `version`, `origin`
/// and `timestamp` (unix ms) in `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TwinProperty {
    pub value: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// `visitors` of a device property.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Visitor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_name: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub config_data: Value,
}

/// `spec.protocol` of a device (`protocolName: modbus`, `configData: {ip, port, slaveID}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolConfig {
    pub protocol_name: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub config_data: Value,
}

/// `status` of a Device as the fleet API shows it (assembled by the hub from the object's
/// desired values and `status/devices/...`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatus {
    #[serde(default)]
    pub twins: Vec<Twin>,
    /// `online`, `offline` or `unknown`, as the mapper last published on `state/update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_online_time: Option<String>,
}

/// `status.twins[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Twin {
    pub property_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<TwinProperty>,
    /// The desired value (KubeEdge's name for it in status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_desired: Option<TwinProperty>,
    /// barge: desired values edited on both sides while apart, and how each was settled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}

/// Which side made a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    Cloud,
    Edge,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Cloud => "cloud",
            Origin::Edge => "edge",
        }
    }
}

/// A versioned twin value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Versioned {
    pub value: String,
    pub version: u64,
    pub origin: Origin,
    /// Unix milliseconds when the value was set.
    pub timestamp: i64,
}

impl Versioned {
    /// As KubeEdge's `{value, metadata}` (version, origin and timestamp in `metadata`).
    pub fn to_twin_property(&self) -> TwinProperty {
        let mut metadata = BTreeMap::new();
        metadata.insert("version".into(), self.version.to_string());
        metadata.insert("origin".into(), self.origin.as_str().into());
        metadata.insert("timestamp".into(), self.timestamp.to_string());
        TwinProperty {
            value: self.value.clone(),
            metadata,
        }
    }

    /// Back from `{value, metadata}`: a value without barge's metadata (a manifest written
    /// by hand) is version 0 from the cloud.
    pub fn from_twin_property(p: &TwinProperty) -> Versioned {
        let num = |k: &str| p.metadata.get(k).and_then(|v| v.parse::<i64>().ok());
        Versioned {
            value: p.value.clone(),
            version: num("version").map(|v| v.max(0) as u64).unwrap_or(0),
            origin: match p.metadata.get("origin").map(String::as_str) {
                Some("edge") => Origin::Edge,
                _ => Origin::Cloud,
            },
            timestamp: num("timestamp").unwrap_or(0),
        }
    }
}

/// A desired value set on the edge (by an app on the EventBus), on its way to the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredEdit {
    pub value: String,
    /// The desired version the edge held (from the hub) when the first of its unsent edits
    /// was made.
    pub base: u64,
    /// `base` + the number of edge edits since (the edit's own version).
    pub version: u64,
    /// Unix milliseconds.
    pub timestamp: i64,
}

/// A desired value edited on both sides while apart: which value was kept and which lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub kept: Versioned,
    pub lost: Versioned,
    /// RFC 3339: when the hub settled it.
    pub at: String,
}

/// How the hub settles an edge's [`DesiredEdit`] against the current desired value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// No cloud change since the edge's base: the edit becomes the desired value.
    Accept(Versioned),
    /// Both sides changed it to the same value: nothing to do.
    Same,
    /// Both changed it; the edge's edit is newer (higher version) and wins. The cloud's value
    /// is recorded as lost.
    EdgeWins { desired: Versioned, lost: Versioned },
    /// Both changed it; the cloud's value has the higher or equal version and stays (a tie
    /// goes to the cloud: the operator's intent). The edge's value is recorded as lost.
    CloudWins { lost: Versioned },
}

/// The rule for desired values edited on both sides (see [`Resolution`]): with `current` the
/// hub's desired value (None: never set), the edit is accepted when `current.version <=
/// edit.base` (nothing changed in the cloud since); otherwise the higher version wins and a
/// tie goes to the cloud, and the loser is kept in the twin's `conflicts`.
pub fn resolve_desired(current: Option<&Versioned>, edit: &DesiredEdit) -> Resolution {
    let proposed = Versioned {
        value: edit.value.clone(),
        version: edit.version,
        origin: Origin::Edge,
        timestamp: edit.timestamp,
    };
    let Some(cur) = current else {
        return Resolution::Accept(proposed);
    };
    if cur.version <= edit.base {
        let version = edit.version.max(cur.version + 1);
        return Resolution::Accept(Versioned {
            version,
            ..proposed
        });
    }
    if cur.value == edit.value {
        return Resolution::Same;
    }
    if edit.version > cur.version {
        Resolution::EdgeWins {
            desired: proposed,
            lost: cur.clone(),
        }
    } else {
        Resolution::CloudWins { lost: proposed }
    }
}

/// The version of a new reported value: `max(previous + 1, now_ms)`.
pub fn next_reported_version(previous: u64, now_ms: i64) -> u64 {
    (previous + 1).max(now_ms.max(0) as u64)
}

/// The MQTT EventBus: KubeEdge's topics and JSON payloads, so existing mappers and scripts
/// work against barge's agent. Device ids in topics are the Device's `metadata.name` (the
/// hub refuses two devices of one name on one node).
pub mod mqtt {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::{DeviceModelSpec, DeviceSpec};

    /// A mapper or app reports `actual` (and may set `expected`) here.
    pub fn twin_update(id: &str) -> String {
        format!("$hw/events/device/{id}/twin/update")
    }
    /// The agent answers each `twin/update` here (the merged twin, or an [`ErrorResult`]).
    pub fn twin_update_result(id: &str) -> String {
        format!("$hw/events/device/{id}/twin/update/result")
    }
    /// The agent publishes desired values that differ from reported ones here.
    pub fn twin_update_delta(id: &str) -> String {
        format!("$hw/events/device/{id}/twin/update/delta")
    }
    /// The agent publishes each twin change as `{last, current}` here.
    pub fn twin_update_document(id: &str) -> String {
        format!("$hw/events/device/{id}/twin/update/document")
    }
    /// Ask for the whole twin; the answer goes to [`twin_get_result`].
    pub fn twin_get(id: &str) -> String {
        format!("$hw/events/device/{id}/twin/get")
    }
    pub fn twin_get_result(id: &str) -> String {
        format!("$hw/events/device/{id}/twin/get/result")
    }
    /// A mapper publishes the device's connection state (`online`/`offline`) here.
    pub fn state_update(id: &str) -> String {
        format!("$hw/events/device/{id}/state/update")
    }
    pub fn state_update_result(id: &str) -> String {
        format!("$hw/events/device/{id}/state/update/result")
    }
    /// Ask for the node's devices; the answer goes to [`membership_get_result`].
    pub fn membership_get(node: &str) -> String {
        format!("$hw/events/node/{node}/membership/get")
    }
    pub fn membership_get_result(node: &str) -> String {
        format!("$hw/events/node/{node}/membership/get/result")
    }
    /// Devices added to or removed from the node.
    pub fn membership_updated(node: &str) -> String {
        format!("$hw/events/node/{node}/membership/updated")
    }

    /// What an agent subscribes to (QoS 1).
    pub fn agent_subscriptions(node: &str) -> Vec<String> {
        vec![
            "$hw/events/device/+/twin/update".into(),
            "$hw/events/device/+/twin/get".into(),
            "$hw/events/device/+/state/update".into(),
            membership_get(node),
        ]
    }

    /// The device topics the agent handles.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DeviceTopic {
        TwinUpdate,
        TwinGet,
        StateUpdate,
    }

    /// `$hw/events/device/{id}/...` -> (id, which). None for any other topic.
    pub fn parse_device_topic(topic: &str) -> Option<(&str, DeviceTopic)> {
        let rest = topic.strip_prefix("$hw/events/device/")?;
        let (id, tail) = rest.split_once('/')?;
        if id.is_empty() {
            return None;
        }
        let which = match tail {
            "twin/update" => DeviceTopic::TwinUpdate,
            "twin/get" => DeviceTopic::TwinGet,
            "state/update" => DeviceTopic::StateUpdate,
            _ => return None,
        };
        Some((id, which))
    }

    /// Every KubeEdge EventBus message starts with these.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct BaseMessage {
        #[serde(default)]
        pub event_id: String,
        /// Unix milliseconds.
        #[serde(default)]
        pub timestamp: i64,
    }

    /// `{"value": "...", "metadata": {"timestamp": ms}}`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct TwinValue {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub value: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metadata: Option<ValueMetadata>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ValueMetadata {
        #[serde(default)]
        pub timestamp: i64,
    }

    /// `{"type": "int"}`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct TypeMetadata {
        #[serde(rename = "type", default)]
        pub type_: String,
    }

    /// KubeEdge's `{cloud, edge}` version pair (barge puts its single desired/reported
    /// version in `cloud` or `edge` by origin).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct TwinVersion {
        #[serde(default)]
        pub cloud: i64,
        #[serde(default)]
        pub edge: i64,
    }

    /// One property of a twin in a message.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct MsgTwin {
        /// Desired.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub expected: Option<TwinValue>,
        /// Reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub actual: Option<TwinValue>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub optional: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metadata: Option<TypeMetadata>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub expected_version: Option<TwinVersion>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub actual_version: Option<TwinVersion>,
    }

    /// Payload of `twin/update` (in), `twin/update/result` and `twin/get/result` (out).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct DeviceTwinUpdate {
        #[serde(flatten)]
        pub base: BaseMessage,
        #[serde(default)]
        pub twin: BTreeMap<String, MsgTwin>,
    }

    /// Payload of `twin/update/delta`: the twin and, for each property whose desired value
    /// differs from the reported one, the desired value.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct DeviceTwinDelta {
        #[serde(flatten)]
        pub base: BaseMessage,
        #[serde(default)]
        pub twin: BTreeMap<String, MsgTwin>,
        #[serde(default)]
        pub delta: BTreeMap<String, String>,
    }

    /// Payload of `twin/update/document`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct DeviceTwinDocument {
        #[serde(flatten)]
        pub base: BaseMessage,
        #[serde(default)]
        pub twin: BTreeMap<String, TwinDoc>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct TwinDoc {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last: Option<MsgTwin>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub current: Option<MsgTwin>,
    }

    /// A refused request, on the matching `.../result` topic: `code` 400 (malformed or out of
    /// range), 404 (unknown device or property), 500.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ErrorResult {
        #[serde(flatten)]
        pub base: BaseMessage,
        pub code: u16,
        pub reason: String,
    }

    /// Payload of `state/update`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct StateUpdate {
        #[serde(flatten)]
        pub base: BaseMessage,
        pub state: String,
    }

    /// Payload of `state/update/result`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct StateUpdateResult {
        #[serde(flatten)]
        pub base: BaseMessage,
        pub device: DeviceState,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct DeviceState {
        pub name: String,
        pub state: String,
        /// RFC 3339.
        #[serde(default)]
        pub last_online: String,
    }

    /// Payload of `membership/get/result`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct MembershipGetResult {
        #[serde(flatten)]
        pub base: BaseMessage,
        #[serde(default)]
        pub devices: Vec<MembershipDevice>,
    }

    /// Payload of `membership/updated`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct MembershipUpdated {
        #[serde(flatten)]
        pub base: BaseMessage,
        #[serde(default)]
        pub added_devices: Vec<MembershipDevice>,
        #[serde(default)]
        pub removed_devices: Vec<MembershipDevice>,
    }

    /// A device in a membership message. `spec`, `model` and `namespace` are barge's
    /// additions: everything a mapper needs (protocol config, visitors, property types) so
    /// it needs no other channel to the agent.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct MembershipDevice {
        pub id: String,
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        #[serde(default)]
        pub state: String,
        #[serde(default)]
        pub last_online: String,
        #[serde(default)]
        pub twin: BTreeMap<String, MsgTwin>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub namespace: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub spec: Option<DeviceSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<DeviceModelSpec>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(value: &str, version: u64, origin: Origin) -> Versioned {
        Versioned {
            value: value.into(),
            version,
            origin,
            timestamp: 1,
        }
    }

    fn edit(value: &str, base: u64, version: u64) -> DesiredEdit {
        DesiredEdit {
            value: value.into(),
            base,
            version,
            timestamp: 2,
        }
    }

    #[test]
    fn desired_edits_settle_by_version() {
        let cur = v("20", 3, Origin::Cloud);
        // Nothing changed in the cloud since the edge's base: accepted.
        assert_eq!(
            resolve_desired(Some(&cur), &edit("25", 3, 4)),
            Resolution::Accept(Versioned {
                value: "25".into(),
                version: 4,
                origin: Origin::Edge,
                timestamp: 2
            })
        );
        assert!(matches!(
            resolve_desired(None, &edit("25", 0, 1)),
            Resolution::Accept(_)
        ));
        // Both changed to the same value.
        assert_eq!(
            resolve_desired(Some(&cur), &edit("20", 2, 3)),
            Resolution::Same
        );
        // Both changed once from version 2: a tie goes to the cloud.
        assert_eq!(
            resolve_desired(Some(&cur), &edit("30", 2, 3)),
            Resolution::CloudWins {
                lost: Versioned {
                    timestamp: 2,
                    ..v("30", 3, Origin::Edge)
                }
            }
        );
        // The edge changed it twice while apart: its version is higher and it wins.
        match resolve_desired(Some(&cur), &edit("31", 2, 4)) {
            Resolution::EdgeWins { desired, lost } => {
                assert_eq!((desired.value.as_str(), desired.version), ("31", 4));
                assert_eq!(lost, cur);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_are_checked_against_the_model() {
        let p = ModelProperty {
            name: "temp".into(),
            description: None,
            type_: PropertyType::Int,
            access_mode: AccessMode::ReadWrite,
            minimum: Some("1".into()),
            maximum: Some("100".into()),
            unit: None,
        };
        assert!(p.check_desired("30").is_ok());
        assert!(matches!(
            p.check_value("abc"),
            Err(ValueError::WrongType { .. })
        ));
        assert!(matches!(
            p.check_value("0"),
            Err(ValueError::BelowMinimum { .. })
        ));
        assert!(matches!(
            p.check_value("101"),
            Err(ValueError::AboveMaximum { .. })
        ));
        let ro = ModelProperty {
            access_mode: AccessMode::ReadOnly,
            ..p
        };
        assert_eq!(ro.check_desired("30"), Err(ValueError::ReadOnly));
        assert!(ro.check_value("30").is_ok());
    }

    #[test]
    fn kubeedge_manifests_parse_as_they_are() {
        let model: DeviceModelSpec = serde_json::from_str(
            r#"{"protocol":"modbus","properties":[{"name":"temp","type":"INT","accessMode":"ReadWrite","minimum":"1","maximum":"100","unit":"C"}]}"#,
        )
        .unwrap();
        assert_eq!(model.properties[0].type_, PropertyType::Int);
        let dev: DeviceSpec = serde_json::from_str(
            r#"{"deviceModelRef":{"name":"m"},"nodeName":"edge-1","properties":[{"name":"temp","collectCycle":10000,"reportCycle":10000,"desired":{"value":"30"},"visitors":{"protocolName":"modbus","configData":{"register":"HoldingRegister","offset":2,"limit":1}}}],"protocol":{"protocolName":"modbus","configData":{"ip":"127.0.0.1","port":1502,"slaveID":1}}}"#,
        )
        .unwrap();
        let d = dev.property("temp").unwrap().desired.as_ref().unwrap();
        let ver = Versioned::from_twin_property(d);
        assert_eq!(
            (ver.value.as_str(), ver.version, ver.origin),
            ("30", 0, Origin::Cloud)
        );
        assert_eq!(Versioned::from_twin_property(&ver.to_twin_property()), ver);
        assert_eq!(
            mqtt::parse_device_topic("$hw/events/device/dev1/twin/update"),
            Some(("dev1", mqtt::DeviceTopic::TwinUpdate))
        );
        assert_eq!(
            mqtt::parse_device_topic("$hw/events/device/dev1/twin/update/delta"),
            None
        );
        let upd: mqtt::DeviceTwinUpdate = serde_json::from_str(
            r#"{"event_id":"e1","timestamp":5,"twin":{"temp":{"actual":{"value":"12","metadata":{"timestamp":5}},"metadata":{"type":"int"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            upd.twin["temp"].actual.as_ref().unwrap().value.as_deref(),
            Some("12")
        );
        assert!(next_reported_version(7, 3) == 8 && next_reported_version(7, 100) == 100);
    }
}
