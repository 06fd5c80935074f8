//! The agent's DeviceTwin and EventBus against a real mosquitto and a fake hub over real TLS:
//! a Device synced from the hub shows up as a delta and in membership; a mapper's report is
//! answered on `twin/update/result` and travels up as `EdgeMsg::Twin`; bad input (malformed
//! JSON, unknown device or property, out-of-range or wrong-type values, a read-only property
//! set) is refused on the result topic and stores nothing; the broker killed and restarted
//! does not stop reports; an agent restarted with unacked reports sends them again, and a
//! `TwinAck` empties the outbox in SQLite.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use barge_edge_e2e::{Mosquitto, MqttClient};
use barge_edge_proto::object::Object;
use barge_edge_proto::wire::{Change, EdgeMsg, HubMsg, TwinReport};
use common::{agent_log, edge_cmd, Agent, Ca, FakeHub};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(15);

fn put(v: Value) -> Change {
    Change::Put {
        object: Box::new(serde_json::from_value::<Object>(v).unwrap()),
    }
}

fn model() -> Change {
    put(
        json!({"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
        "metadata": {"name": "thermo", "namespace": "default", "resourceVersion": "2"},
        "spec": {"properties": [
            {"name": "temp", "type": "INT", "accessMode": "ReadWrite", "minimum": "0", "maximum": "100"},
            {"name": "hum", "type": "FLOAT", "accessMode": "ReadOnly"}]}}),
    )
}

fn device(desired: &str, version: u64, rev: i64) -> Change {
    put(
        json!({"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
        "metadata": {"name": "t1", "namespace": "default", "resourceVersion": rev.to_string()},
        "spec": {"deviceModelRef": {"name": "thermo"}, "nodeName": "n1",
            "properties": [
                {"name": "temp", "desired": {"value": desired,
                    "metadata": {"version": version.to_string(), "origin": "cloud", "timestamp": "1"}}},
                {"name": "hum"}]}}),
    )
}

/// The reported value of `prop` in a Twin message, if any.
fn reported(devices: &[TwinReport], prop: &str) -> Option<String> {
    devices
        .iter()
        .flat_map(|d| d.properties.iter())
        .find(|p| p.name == prop)
        .and_then(|p| p.reported.as_ref())
        .map(|r| r.value.clone())
}

fn outbox_len(dir: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("root/edge/cache.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.query_row("SELECT count(*) FROM twin_outbox", [], |r| r.get(0))
        .unwrap()
}

fn twin_get(app: &MqttClient, id: &str) -> Value {
    app.drain();
    app.publish(
        &format!("$hw/events/device/{id}/twin/get"),
        r#"{"event_id":"get"}"#,
    );
    app.wait(T, |m| m.topic.ends_with("/twin/get/result"))
        .expect("no twin/get/result")
        .json
}

#[test]
fn twins_over_mqtt_reach_the_hub_through_bad_input_broker_and_agent_restarts() {
    let dir = tempfile::Builder::new()
        .prefix("bgd")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path();
    let mut broker = Mosquitto::start();
    let ca = Arc::new(Ca::new("fleet CA"));
    let hub = FakeHub::start_with(ca.clone(), "127.0.0.1:0");
    let out = edge_cmd(
        d,
        &[
            "join",
            &format!("https://{}", hub.addr),
            "--token",
            &ca.token(),
            "--name",
            "n1",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = broker.url();
    let mut agent = Agent::start_args(d, &["--mqtt", &url]);
    hub.wait(T, |m| matches!(m, EdgeMsg::Hello { .. }))
        .unwrap_or_else(|| panic!("no Hello: {}", agent_log(d)));
    let app = MqttClient::connect(
        &broker,
        "test-mapper",
        &["$hw/events/device/#", "$hw/events/node/n1/#"],
    );
    // The agent is subscribed once it answers a membership request.
    let subscribed = (0..100).any(|_| {
        app.publish("$hw/events/node/n1/membership/get", "{}");
        app.wait(Duration::from_millis(200), |m| {
            m.topic == "$hw/events/node/n1/membership/get/result"
        })
        .is_some()
    });
    assert!(subscribed, "the agent never answered: {}", agent_log(d));

    // The hub sends a device: membership/updated and a delta with the desired value.
    hub.send(HubMsg::Sync {
        revision: 3,
        full: false,
        changes: vec![model(), device("30", 1, 3)],
    });
    let m = app
        .wait(T, |m| m.topic.ends_with("/membership/updated"))
        .unwrap_or_else(|| panic!("no membership/updated: {}", agent_log(d)));
    assert_eq!(m.json["added_devices"][0]["id"], "t1");
    assert_eq!(m.json["added_devices"][0]["namespace"], "default");
    assert_eq!(
        m.json["added_devices"][0]["model"]["properties"][0]["name"],
        "temp"
    );
    let delta = app
        .wait(T, |m| m.topic == "$hw/events/device/t1/twin/update/delta")
        .unwrap_or_else(|| panic!("no delta: {}", agent_log(d)));
    assert_eq!(delta.json["delta"]["temp"], "30", "{}", delta.json);

    // The mapper reports: answered, and the report goes up to the hub.
    app.publish(
        "$hw/events/device/t1/twin/update",
        r#"{"event_id":"r1","twin":{"temp":{"actual":{"value":"30"}}}}"#,
    );
    let r = app
        .wait(T, |m| m.topic == "$hw/events/device/t1/twin/update/result")
        .unwrap();
    assert_eq!(r.json["event_id"], "r1", "{}", r.json);
    assert_eq!(
        r.json["twin"]["temp"]["actual"]["value"], "30",
        "{}",
        r.json
    );
    let up = hub
        .wait(T, |m| matches!(m, EdgeMsg::Twin { devices, .. } if reported(devices, "temp").as_deref() == Some("30")))
        .unwrap_or_else(|| panic!("no Twin to the hub: {}", agent_log(d)));
    let EdgeMsg::Twin { devices, .. } = up else {
        unreachable!()
    };
    assert_eq!(devices[0].key.name, "t1");
    assert_eq!(devices[0].key.namespace, "default");

    // Bad input: refused on the result topic with the right code, nothing stored.
    let before = twin_get(&app, "t1");
    let outbox_before = outbox_len(d);
    for (id, body, code) in [
        ("t1", "{not json", 400),
        (
            "ghost",
            r#"{"twin":{"temp":{"actual":{"value":"1"}}}}"#,
            404,
        ),
        (
            "t1",
            r#"{"twin":{"pressure":{"actual":{"value":"1"}}}}"#,
            404,
        ),
        ("t1", r#"{"twin":{"temp":{"actual":{"value":"101"}}}}"#, 400),
        (
            "t1",
            r#"{"twin":{"temp":{"actual":{"value":"warm"}}}}"#,
            400,
        ),
        ("t1", r#"{"twin":{"hum":{"expected":{"value":"3"}}}}"#, 400),
        (
            "t1",
            r#"{"twin":{"temp":{"actual":{"value":"7"}},"hum":{"actual":{"value":"dry"}}}}"#,
            400,
        ),
    ] {
        app.drain();
        app.publish(&format!("$hw/events/device/{id}/twin/update"), body);
        let r = app
            .wait(T, |m| {
                m.topic == format!("$hw/events/device/{id}/twin/update/result")
            })
            .unwrap_or_else(|| panic!("no result for {id} {body}"));
        assert_eq!(r.json["code"], code, "{id} {body}: {}", r.json);
        assert!(
            r.json["reason"].as_str().is_some_and(|s| !s.is_empty()),
            "{}",
            r.json
        );
    }
    let after = twin_get(&app, "t1");
    assert_eq!(
        before["twin"], after["twin"],
        "a refused update changed the twin"
    );
    assert_eq!(outbox_len(d), outbox_before);

    // The broker dies and comes back: the agent reconnects, resubscribes, reports arrive.
    broker.kill();
    std::thread::sleep(Duration::from_millis(300));
    broker.restart();
    let end = Instant::now() + T;
    let mut got = None;
    while got.is_none() && Instant::now() < end {
        app.publish(
            "$hw/events/device/t1/twin/update",
            r#"{"twin":{"temp":{"actual":{"value":"31"}}}}"#,
        );
        got = hub.wait(Duration::from_millis(500), |m| {
            matches!(m, EdgeMsg::Twin { devices, .. } if reported(devices, "temp").as_deref() == Some("31"))
        });
    }
    assert!(
        got.is_some(),
        "no report after the broker restart: {}",
        agent_log(d)
    );
    assert!(outbox_len(d) >= 1, "nothing acked yet: the outbox holds it");

    // The agent dies with unacked reports: the next agent sends them again; an ack empties it.
    agent.kill();
    let mut agent = Agent::start_args(d, &["--mqtt", &url]);
    // What the first agent sent is behind us once the new one says Hello.
    hub.wait(T, |m| matches!(m, EdgeMsg::Hello { .. }))
        .unwrap_or_else(|| panic!("no second Hello: {}", agent_log(d)));
    let again = hub
        .wait(T, |m| {
            matches!(m, EdgeMsg::Twin { devices, .. } if reported(devices, "temp").as_deref() == Some("31"))
        })
        .unwrap_or_else(|| panic!("the outbox was not sent again: {}", agent_log(d)));
    let EdgeMsg::Twin { seq, .. } = again else {
        unreachable!()
    };
    hub.send(HubMsg::TwinAck { seq });
    let end = Instant::now() + T;
    while outbox_len(d) > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(outbox_len(d), 0, "acked reports stayed: {}", agent_log(d));
    agent.kill();
}
