//! Devices in the CLI: the `get devices` table (desired/reported per twin), `describe
//! device` (twins with versions and conflicts), and `device set NAME PROP=VALUE...` (the
//! hub's twin endpoint).

use std::collections::BTreeMap;

use anyhow::Context as _;
use barge_edge_proto::device::{DeviceStatus, Twin, TwinProperty};
use barge_edge_proto::object::Kind;
use hyper::Method;
use serde_json::{json, Value};

use crate::client::Client;
use crate::resources::{display, item};

/// A conflict settled this recently marks the twin with `!` in the table.
const RECENT_CONFLICT_SECS: i64 = 600;

fn status_of(d: &Value) -> DeviceStatus {
    d.get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default()
}

fn recent(at: &str, now: i64) -> bool {
    barge_util::time::parse_rfc3339(at).is_some_and(|(t, _)| now - t <= RECENT_CONFLICT_SECS)
}

/// `temp=30/28,mode=eco/-`: desired/reported per twin, `!` after a twin whose last conflict
/// is recent.
pub fn twins_cell(d: &Value) -> String {
    let now = barge_util::time::now().0;
    let st = status_of(d);
    if st.twins.is_empty() {
        return "<none>".into();
    }
    st.twins
        .iter()
        .map(|t| {
            let v = |p: &Option<TwinProperty>| {
                p.as_ref()
                    .map(|p| p.value.clone())
                    .unwrap_or_else(|| "-".into())
            };
            let mark = if t.conflicts.last().is_some_and(|c| recent(&c.at, now)) {
                "!"
            } else {
                ""
            };
            format!(
                "{}={}/{}{mark}",
                t.property_name,
                v(&t.observed_desired),
                v(&t.reported)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The device's state column (`<unknown>` before the mapper said).
pub fn state_cell(d: &Value) -> String {
    status_of(d).state.unwrap_or_else(|| "<unknown>".into())
}

fn versioned(p: &TwinProperty) -> String {
    let m = |k: &str| p.metadata.get(k).cloned().unwrap_or_else(|| "?".into());
    let when = p
        .metadata
        .get("timestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|t| *t > 0)
        .map(|t| barge_util::time::rfc3339_secs(t / 1000))
        .unwrap_or_else(|| "?".into());
    format!(
        "{:?} (version {}, {}, {when})",
        p.value,
        m("version"),
        m("origin")
    )
}

fn print_twin(t: &Twin) {
    println!("  {}:", t.property_name);
    match &t.observed_desired {
        Some(p) => println!("    desired:   {}", versioned(p)),
        None => println!("    desired:   <none>"),
    }
    match &t.reported {
        Some(p) => println!("    reported:  {}", versioned(p)),
        None => println!("    reported:  <none>"),
    }
    for c in &t.conflicts {
        println!(
            "    conflict at {}: kept {:?} (version {}, {}), lost {:?} (version {}, {})",
            c.at,
            c.kept.value,
            c.kept.version,
            c.kept.origin.as_str(),
            c.lost.value,
            c.lost.version,
            c.lost.origin.as_str()
        );
    }
}

/// The device part of `describe device`: node, model, state, then each twin.
pub fn describe(d: &Value) {
    let st = status_of(d);
    let s = |p: &str| {
        d.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    println!("Node:              {}", s("/spec/nodeName"));
    println!("Model:             {}", s("/spec/deviceModelRef/name"));
    println!(
        "Protocol:          {}",
        d.pointer("/spec/protocol/protocolName")
            .and_then(Value::as_str)
            .unwrap_or("<none>")
    );
    println!(
        "State:             {}",
        st.state.as_deref().unwrap_or("<unknown>")
    );
    if let Some(t) = &st.last_online_time {
        println!("Last online:       {t}");
    }
    println!("Twins:");
    if st.twins.is_empty() {
        println!("  <none>");
    }
    for t in &st.twins {
        print_twin(t);
    }
}

/// `device set NAME PROP=VALUE...`: one call to the twin endpoint; prints each value with
/// its new version.
pub async fn set(
    c: &Client,
    name: &str,
    ns: Option<&str>,
    assignments: &[String],
) -> anyhow::Result<()> {
    let ns = ns.unwrap_or("default");
    let mut desired = BTreeMap::new();
    for a in assignments {
        let (k, v) = a
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("device set {name}: {a:?} is not PROPERTY=VALUE"))?;
        desired.insert(k.to_string(), v.to_string());
    }
    let path = format!("{}/twin", item(Kind::Device, ns, name));
    let ans = c
        .call(Method::POST, &path, Some(&json!({ "desired": desired })))
        .await
        .map_err(|e| anyhow::anyhow!("device set {name}: {e}"))?
        .json()
        .map_err(|e| anyhow::anyhow!("device set {name}: {e}"))?;
    let st = status_of(&ans);
    for k in desired.keys() {
        let v = st
            .twins
            .iter()
            .find(|t| &t.property_name == k)
            .and_then(|t| t.observed_desired.as_ref());
        match v {
            Some(p) => println!(
                "{} {k}={} (desired version {})",
                display(Kind::Device, name),
                p.value,
                p.metadata.get("version").map(String::as_str).unwrap_or("?")
            ),
            None => println!("{} {k} set", display(Kind::Device, name)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twins_cell_shows_desired_reported_and_recent_conflicts() {
        let now = barge_util::time::rfc3339_secs(barge_util::time::now().0);
        let d = json!({"status": {"twins": [
            {"propertyName": "temp", "observedDesired": {"value": "30"}, "reported": {"value": "28"}},
            {"propertyName": "mode", "observedDesired": {"value": "eco"}, "conflicts": [
                {"kept": {"value": "eco", "version": 3, "origin": "cloud", "timestamp": 1},
                 "lost": {"value": "max", "version": 3, "origin": "edge", "timestamp": 2},
                 "at": now}
            ]},
            {"propertyName": "hum", "reported": {"value": "40"}, "conflicts": [
                {"kept": {"value": "1", "version": 3, "origin": "cloud", "timestamp": 1},
                 "lost": {"value": "2", "version": 3, "origin": "edge", "timestamp": 2},
                 "at": "2020-01-01T00:00:00Z"}
            ]}
        ], "state": "online"}});
        assert_eq!(twins_cell(&d), "temp=30/28,mode=eco/-!,hum=-/40");
        assert_eq!(state_cell(&d), "online");
        assert_eq!(twins_cell(&json!({})), "<none>");
    }
}
