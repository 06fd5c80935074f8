//! The cloud side of devices (KubeEdge's DeviceController), without I/O: checking
//! `DeviceModel` and `Device` specs, stamping desired values with their versions, merging
//! what edges report into a [`DeviceTwinRecord`], and assembling a Device's `status` for the
//! fleet API. The API ([`crate::api::devices`]) and the edge sessions
//! (the session's twin merge) do the etcd reads and transactions around these.

use std::collections::BTreeMap;

use barge_edge_proto::device::{
    Conflict, DeviceModelSpec, DeviceSpec, DeviceStatus, Origin, TwinProperty, Versioned,
    MAX_CONFLICTS,
};
use barge_edge_proto::keys::DeviceTwinRecord;
use barge_edge_proto::object::Object;
use serde_json::Value;

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    let (s, n) = barge_util::time::now();
    s * 1000 + i64::from(n / 1_000_000)
}

/// A `DeviceModel`'s spec, checked: it parses, property names are present and unique, and
/// the bounds of numeric properties are numbers. Errors name the field.
pub fn check_model(spec: &Value) -> Result<DeviceModelSpec, String> {
    let m: DeviceModelSpec =
        serde_json::from_value(spec.clone()).map_err(|e| format!("spec: {e}"))?;
    let mut seen = BTreeMap::new();
    for (i, p) in m.properties.iter().enumerate() {
        if p.name.is_empty() {
            return Err(format!("spec.properties[{i}].name is required"));
        }
        if let Some(j) = seen.insert(p.name.as_str(), i) {
            return Err(format!(
                "spec.properties[{i}].name {:?} repeats spec.properties[{j}]",
                p.name
            ));
        }
        for (field, v) in [("minimum", &p.minimum), ("maximum", &p.maximum)] {
            if let Some(v) = v {
                if v.trim().parse::<f64>().is_err() {
                    return Err(format!(
                        "spec.properties[{i}] ({}).{field} {v:?} is not a number",
                        p.name
                    ));
                }
            }
        }
    }
    Ok(m)
}

/// A `Device`'s spec, checked on its own: it parses, `nodeName` and `deviceModelRef.name`
/// are set, property names are unique. The model checks are [`check_against_model`].
pub fn check_device(spec: &Value) -> Result<DeviceSpec, String> {
    let d: DeviceSpec = serde_json::from_value(spec.clone()).map_err(|e| format!("spec: {e}"))?;
    match d.node_name.as_deref() {
        None | Some("") => return Err("spec.nodeName is required".into()),
        Some(n) => {
            crate::api::validate::dns1123_subdomain(n).map_err(|e| format!("spec.nodeName: {e}"))?
        }
    }
    if d.device_model_ref
        .as_ref()
        .is_none_or(|r| r.name.is_empty())
    {
        return Err("spec.deviceModelRef.name is required".into());
    }
    let mut seen = BTreeMap::new();
    for (i, p) in d.properties.iter().enumerate() {
        if p.name.is_empty() {
            return Err(format!("spec.properties[{i}].name is required"));
        }
        if let Some(j) = seen.insert(p.name.as_str(), i) {
            return Err(format!(
                "spec.properties[{i}].name {:?} repeats spec.properties[{j}]",
                p.name
            ));
        }
    }
    Ok(d)
}

/// Every property of `device` is in `model`, and every desired value passes the model's
/// [`barge_edge_proto::device::ModelProperty::check_desired`].
pub fn check_against_model(
    device: &DeviceSpec,
    model_name: &str,
    model: &DeviceModelSpec,
) -> Result<(), String> {
    for (i, p) in device.properties.iter().enumerate() {
        let Some(mp) = model.property(&p.name) else {
            return Err(format!(
                "spec.properties[{i}].name {:?} is not a property of DeviceModel {model_name}",
                p.name
            ));
        };
        if let Some(d) = &p.desired {
            mp.check_desired(&d.value)
                .map_err(|e| format!("spec.properties[{i}] ({}).desired.value: {e}", p.name))?;
        }
    }
    Ok(())
}

/// The desired values of a device spec by property, as versioned values.
pub fn desired_of(spec: &DeviceSpec) -> BTreeMap<String, Versioned> {
    spec.properties
        .iter()
        .filter_map(|p| {
            p.desired
                .as_ref()
                .map(|d| (p.name.clone(), Versioned::from_twin_property(d)))
        })
        .collect()
}

/// Stamp the desired values of `spec` (JSON, as it will be stored) against the stored
/// `old` ones: a value that is new or changed gets version old+1, origin cloud, timestamp
/// `now`; an unchanged one keeps its stored metadata. Metadata sent by the client is
/// ignored either way.
pub fn stamp_desired(spec: &mut Value, old: &BTreeMap<String, Versioned>, now: i64) {
    let Some(props) = spec.get_mut("properties").and_then(Value::as_array_mut) else {
        return;
    };
    for p in props {
        let Some(name) = p.get("name").and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        let Some(value) = p
            .get("desired")
            .and_then(|d| d.get("value"))
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let stamped = match old.get(&name) {
            Some(o) if o.value == value => o.clone(),
            o => Versioned {
                value,
                version: o.map(|o| o.version).unwrap_or(0) + 1,
                origin: Origin::Cloud,
                timestamp: now,
            },
        };
        p["desired"] = twin_json(&stamped.to_twin_property());
    }
}

fn twin_json(t: &TwinProperty) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Set one property's desired value in a device spec (JSON), adding the property to
/// `spec.properties` when the device does not list it yet.
pub fn set_desired(spec: &mut Value, prop: &str, v: &Versioned) {
    let desired = twin_json(&v.to_twin_property());
    if !spec.is_object() {
        *spec = Value::Object(Default::default());
    }
    if !spec.get("properties").is_some_and(Value::is_array) {
        spec["properties"] = Value::Array(Vec::new());
    }
    let Some(props) = spec.get_mut("properties").and_then(Value::as_array_mut) else {
        return;
    };
    match props
        .iter_mut()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(prop))
    {
        Some(p) => p["desired"] = desired,
        None => props.push(serde_json::json!({ "name": prop, "desired": desired })),
    }
}

/// Keep `reported` for `prop` when its version is higher than the stored one; whether the
/// record changed.
pub fn merge_reported(rec: &mut DeviceTwinRecord, prop: &str, reported: &Versioned) -> bool {
    let p = rec.properties.entry(prop.to_string()).or_default();
    if p.reported
        .as_ref()
        .is_some_and(|r| r.version >= reported.version)
    {
        return false;
    }
    p.reported = Some(reported.clone());
    true
}

/// Append a conflict for `prop` (at most [`MAX_CONFLICTS`], oldest dropped) unless the same
/// pair of values is already recorded (a resent report); whether the record changed.
pub fn add_conflict(
    rec: &mut DeviceTwinRecord,
    prop: &str,
    kept: &Versioned,
    lost: &Versioned,
) -> bool {
    let p = rec.properties.entry(prop.to_string()).or_default();
    if p.conflicts
        .iter()
        .any(|c| &c.kept == kept && &c.lost == lost)
    {
        return false;
    }
    p.conflicts.push(Conflict {
        kept: kept.clone(),
        lost: lost.clone(),
        at: barge_util::time::rfc3339_secs(barge_util::time::now().0),
    });
    let n = p.conflicts.len();
    if n > MAX_CONFLICTS {
        p.conflicts.drain(..n - MAX_CONFLICTS);
    }
    true
}

/// Record the device's state; `online` also sets the last-online time, unless the device
/// was already online less than a minute ago (a resent report changes nothing). Whether
/// the record changed.
pub fn set_state(rec: &mut DeviceTwinRecord, state: &str, now_secs: i64) -> bool {
    let mut changed = false;
    if rec.state.as_deref() != Some(state) {
        rec.state = Some(state.to_string());
        changed = true;
    }
    if state == "online" {
        let recent = rec
            .last_online
            .as_deref()
            .and_then(barge_util::time::parse_rfc3339)
            .is_some_and(|(t, _)| now_secs - t < 60);
        if changed || !recent {
            rec.last_online = Some(barge_util::time::rfc3339_secs(now_secs));
            changed = true;
        }
    }
    changed
}

/// A Device's `status` (KubeEdge's shape): one twin per property the device lists (then
/// any other property something was reported for), with its desired value
/// (`observedDesired`), reported value and conflicts; the device's state.
pub fn status(spec: &DeviceSpec, rec: Option<&DeviceTwinRecord>) -> DeviceStatus {
    let empty = DeviceTwinRecord::default();
    let rec = rec.unwrap_or(&empty);
    let mut names: Vec<&str> = spec.properties.iter().map(|p| p.name.as_str()).collect();
    for k in rec.properties.keys() {
        if !names.contains(&k.as_str()) {
            names.push(k);
        }
    }
    let twins = names
        .into_iter()
        .map(|n| {
            let r = rec.properties.get(n);
            barge_edge_proto::device::Twin {
                property_name: n.to_string(),
                reported: r
                    .and_then(|r| r.reported.as_ref())
                    .map(Versioned::to_twin_property),
                observed_desired: spec.property(n).and_then(|p| p.desired.clone()),
                conflicts: r.map(|r| r.conflicts.clone()).unwrap_or_default(),
            }
        })
        .collect();
    DeviceStatus {
        twins,
        state: rec.state.clone(),
        last_online_time: rec.last_online.clone(),
    }
}

/// Put the assembled status into a Device object (for the API's answers).
pub fn with_status(obj: &mut Object, rec: Option<&DeviceTwinRecord>) {
    let Ok(spec) = serde_json::from_value::<DeviceSpec>(obj.spec.clone()) else {
        return;
    };
    obj.status = serde_json::to_value(status(&spec, rec)).unwrap_or(Value::Null);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(value: &str, version: u64, origin: Origin) -> Versioned {
        Versioned {
            value: value.into(),
            version,
            origin,
            timestamp: 1,
        }
    }

    #[test]
    fn desired_values_are_stamped_once_per_change() {
        let mut spec = json!({"properties": [
            {"name": "temp", "desired": {"value": "30", "metadata": {"version": "99"}}},
            {"name": "mode", "desired": {"value": "auto"}},
            {"name": "ro"}
        ]});
        let old: BTreeMap<String, Versioned> = [
            ("temp".to_string(), v("20", 4, Origin::Edge)),
            ("mode".to_string(), v("auto", 2, Origin::Cloud)),
        ]
        .into();
        stamp_desired(&mut spec, &old, 77);
        let temp: TwinProperty =
            serde_json::from_value(spec["properties"][0]["desired"].clone()).unwrap();
        let t = Versioned::from_twin_property(&temp);
        assert_eq!(
            (t.value.as_str(), t.version, t.origin, t.timestamp),
            ("30", 5, Origin::Cloud, 77)
        );
        let mode: TwinProperty =
            serde_json::from_value(spec["properties"][1]["desired"].clone()).unwrap();
        assert_eq!(
            Versioned::from_twin_property(&mode),
            v("auto", 2, Origin::Cloud)
        );
        assert!(spec["properties"][2].get("desired").is_none());
        set_desired(&mut spec, "new", &v("1", 1, Origin::Edge));
        assert_eq!(spec["properties"][3]["name"], "new");
        assert_eq!(
            spec["properties"][3]["desired"]["metadata"]["origin"],
            "edge"
        );
    }

    #[test]
    fn reports_merge_by_version_and_conflicts_are_not_repeated() {
        let mut rec = DeviceTwinRecord::default();
        assert!(merge_reported(&mut rec, "temp", &v("12", 5, Origin::Edge)));
        assert!(!merge_reported(&mut rec, "temp", &v("12", 5, Origin::Edge)));
        assert!(!merge_reported(&mut rec, "temp", &v("11", 4, Origin::Edge)));
        assert!(merge_reported(&mut rec, "temp", &v("13", 6, Origin::Edge)));
        let (a, b) = (v("1", 3, Origin::Cloud), v("2", 3, Origin::Edge));
        assert!(add_conflict(&mut rec, "temp", &a, &b));
        assert!(!add_conflict(&mut rec, "temp", &a, &b));
        for i in 0..20 {
            add_conflict(&mut rec, "temp", &a, &v(&i.to_string(), 3, Origin::Edge));
        }
        let c = &rec.properties["temp"].conflicts;
        assert_eq!(c.len(), MAX_CONFLICTS);
        assert_eq!(c.last().unwrap().lost.value, "19");
        assert!(set_state(&mut rec, "online", 1000));
        assert!(!set_state(&mut rec, "online", 1030));
        assert!(set_state(&mut rec, "online", 1100));
        assert!(set_state(&mut rec, "offline", 1100));
    }

    #[test]
    fn devices_are_checked_against_their_model() {
        let model = check_model(&json!({"properties": [
            {"name": "temp", "type": "INT", "minimum": "0", "maximum": "100"},
            {"name": "ro", "type": "INT", "accessMode": "ReadOnly"}
        ]}))
        .unwrap();
        assert!(check_model(
            &json!({"properties": [{"name": "a", "type": "INT"}, {"name": "a", "type": "INT"}]})
        )
        .unwrap_err()
        .contains("repeats"));
        assert!(check_model(&json!({"properties": [{"name": "a", "type": "WHAT"}]})).is_err());
        let dev = |props: Value| json!({"deviceModelRef": {"name": "m"}, "nodeName": "n1", "properties": props});
        let d = check_device(&dev(json!([{"name": "temp", "desired": {"value": "30"}}]))).unwrap();
        assert!(check_against_model(&d, "m", &model).is_ok());
        let d = check_device(&dev(json!([{"name": "temp", "desired": {"value": "300"}}]))).unwrap();
        assert!(check_against_model(&d, "m", &model)
            .unwrap_err()
            .contains("maximum"));
        let d = check_device(&dev(json!([{"name": "ro", "desired": {"value": "3"}}]))).unwrap();
        assert!(check_against_model(&d, "m", &model)
            .unwrap_err()
            .contains("ReadOnly"));
        let d = check_device(&dev(json!([{"name": "nope"}]))).unwrap();
        assert!(check_against_model(&d, "m", &model)
            .unwrap_err()
            .contains("nope"));
        assert!(check_device(&json!({"deviceModelRef": {"name": "m"}}))
            .unwrap_err()
            .contains("nodeName"));
        assert!(check_device(&json!({"nodeName": "n"}))
            .unwrap_err()
            .contains("deviceModelRef"));
    }
}
