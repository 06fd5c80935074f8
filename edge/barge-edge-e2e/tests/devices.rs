//! Device twins end to end: real etcd, hub, agent and fleet CLI, a real mosquitto, and a test
//! MQTT client playing the mapper and an app.
//! - Round trip: `fleet device set` -> the delta on MQTT -> `actual` published -> `fleet get
//!   device -o json` shows it reported; bad input (malformed, unknown device or property,
//!   out of range, wrong type, bad state) refused on the result topic with nothing stored:
//!   the Device's etcd keys and the agent's SQLite twin tables unchanged; the broker killed
//!   and restarted, reports still arrive.
//! - Link cut (FaultProxy blackhole) with edits on both sides and the agent restarted while
//!   offline: the cloud sets one value, an app on the edge another (twice: its version is
//!   higher), the mapper reports; when the link returns both sides hold the edge's value, the
//!   cloud's is in the twin's conflicts, and the last reported value arrived.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_edge_e2e::util::poll;
use barge_edge_e2e::{Agent, Fault, FaultProxy, Fleet, Mosquitto, MqttClient};
use common::{Cloud, AGENT_ARGS};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn manifests(node: &str) -> String {
    format!(
        "apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: thermo
spec:
  properties:
  - name: temp
    type: INT
    accessMode: ReadWrite
    minimum: \"0\"
    maximum: \"100\"
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: t1
spec:
  deviceModelRef:
    name: thermo
  nodeName: {node}
  properties:
  - name: temp
    desired:
      value: \"20\"
"
    )
}

/// The agent's flags: the test's defaults plus the broker.
fn agent_args(broker: &Mosquitto) -> Vec<String> {
    let mut a: Vec<String> = AGENT_ARGS
        .iter()
        .map(|s| s.to_string())
        .filter(|s| s != "none")
        .collect();
    if let Some(i) = a.iter().position(|s| s == "--mqtt") {
        a.remove(i);
    }
    a.push("--mqtt".into());
    a.push(broker.url());
    a
}

fn run(agent: &mut Agent, broker: &Mosquitto) {
    let args = agent_args(broker);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    agent.run(&a);
}

/// (desired, reported, conflicts) of `temp` in `fleet get device t1 -o json`.
fn twin(fleet: &Fleet) -> (Option<String>, Option<String>, Vec<Value>) {
    let v = fleet.json(&["get", "device", "t1"]);
    let t = v["status"]["twins"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["propertyName"] == "temp"))
        .cloned()
        .unwrap_or(Value::Null);
    let s = |x: &Value| x["value"].as_str().map(str::to_string);
    (
        s(&t["observedDesired"]),
        s(&t["reported"]),
        t["conflicts"].as_array().cloned().unwrap_or_default(),
    )
}

/// Every row of the agent's twin tables (its SQLite cache), as text.
fn agent_twin_tables(agent: &Agent) -> Vec<String> {
    let db = rusqlite::Connection::open(agent.root().join("edge/cache.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut out = Vec::new();
    for t in ["twin_props", "twin_state", "twin_outbox"] {
        let mut st = db
            .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2, 3"))
            .unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let mut row = vec![t.to_string()];
                for i in 0..n {
                    row.push(format!("{:?}", r.get_ref(i)?));
                }
                Ok(row.join("|"))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

/// The Device's keys in etcd (its object and its twin record) with their values.
fn device_in_etcd(cloud: &Cloud) -> Vec<(String, Option<String>)> {
    let keys: Vec<String> = cloud
        .etcd
        .keys("")
        .into_iter()
        .filter(|k| k.ends_with("devices/default/t1"))
        .collect();
    assert!(keys.len() >= 2, "object and twin record expected: {keys:?}");
    keys.into_iter()
        .map(|k| {
            let v = cloud.etcd.get(&k);
            (k, v)
        })
        .collect()
}

fn report(app: &MqttClient, value: &str) {
    app.publish(
        "$hw/events/device/t1/twin/update",
        format!(r#"{{"twin":{{"temp":{{"actual":{{"value":"{value}"}}}}}}}}"#),
    );
}

fn wait_reported(cloud: &Cloud, agent: &Agent, value: &str) {
    let got = poll(T, || {
        (twin(&cloud.fleet).1.as_deref() == Some(value)).then_some(())
    });
    assert!(
        got.is_some(),
        "reported {value} never reached the cloud: {:?}\nagent:\n{}\nhub:\n{}",
        twin(&cloud.fleet),
        agent.log(),
        cloud.hub.log()
    );
}

/// A fleet, a broker and a joined agent with the device applied, its delta seen by `app`.
fn setup(name: &str) -> (Cloud, FaultProxy, Mosquitto, Agent, MqttClient) {
    let (cloud, proxy) = Cloud::behind_proxy();
    let broker = Mosquitto::start();
    let app = MqttClient::connect(&broker, "test-app", &["$hw/events/device/#"]);
    let mut a = Agent::new(name);
    let token = cloud.fleet.token(None);
    a.join(&format!("https://{}", proxy.addr()), &token, &[]);
    run(&mut a, &broker);
    cloud.wait_ready(&mut a);
    cloud.fleet.apply(&manifests(name));
    let d = app.wait(T, |m| {
        m.topic == "$hw/events/device/t1/twin/update/delta" && m.json["delta"]["temp"] == "20"
    });
    assert!(d.is_some(), "no delta for the applied device:\n{}", a.log());
    (cloud, proxy, broker, a, app)
}

#[test]
fn twin_round_trip_bad_input_and_a_broker_restart() {
    let (cloud, _proxy, mut broker, a, app) = setup("edge-dv");

    // Cloud -> edge: the new desired value arrives as a delta.
    cloud.fleet.ok(&["device", "set", "t1", "temp=25"]);
    let d = app.wait(T, |m| {
        m.topic == "$hw/events/device/t1/twin/update/delta" && m.json["delta"]["temp"] == "25"
    });
    assert!(d.is_some(), "no delta for temp=25:\n{}", a.log());
    // Edge -> cloud: the mapper reports it.
    report(&app, "25");
    wait_reported(&cloud, &a, "25");

    // Bad input: refused on the result topic; the Device's JSON, its etcd keys and the
    // agent's twin tables do not change. (Once the report of 25 is acked: an empty outbox.)
    let settled = poll(T, || {
        agent_twin_tables(&a)
            .iter()
            .all(|r| !r.starts_with("twin_outbox"))
            .then_some(())
    });
    assert!(settled.is_some(), "the report of 25 was never acked");
    let before = cloud.fleet.json(&["get", "device", "t1"]);
    let etcd_before = device_in_etcd(&cloud);
    let sqlite_before = agent_twin_tables(&a);
    for (topic, body, code) in [
        ("t1/state/update", r#"{"state":"melting"}"#, 400),
        ("t1/state/update", "{", 400),
        ("nope/state/update", r#"{"state":"online"}"#, 404),
    ] {
        app.drain();
        app.publish(&format!("$hw/events/device/{topic}"), body);
        let r = app
            .wait(T, |m| {
                m.topic == format!("$hw/events/device/{topic}/result")
            })
            .unwrap_or_else(|| panic!("no result for {topic} {body}:\n{}", a.log()));
        assert_eq!(r.json["code"], code, "{topic} {body}: {}", r.json);
    }
    for (id, body, code) in [
        ("t1", "{oops", 400),
        ("t1", "", 400),
        ("t1", r#"{"twin":{}}"#, 400),
        ("t1", r#"{"twin":{"temp":{"actual":{"value":25}}}}"#, 400),
        ("t1", r#"{"twin":{"temp":{"actual":{}}}}"#, 400),
        ("t1", r#"{"twin":{"temp":{"actual":{"value":"-5"}}}}"#, 400),
        (
            "t1",
            r#"{"twin":{"temp":{"expected":{"value":"101"}}}}"#,
            400,
        ),
        ("nope", r#"{"twin":{"temp":{"actual":{"value":"1"}}}}"#, 404),
        ("t1", r#"{"twin":{"volts":{"actual":{"value":"1"}}}}"#, 404),
        (
            "t1",
            r#"{"twin":{"temp":{"actual":{"value":"1000"}}}}"#,
            400,
        ),
        (
            "t1",
            r#"{"twin":{"temp":{"expected":{"value":"hot"}}}}"#,
            400,
        ),
    ] {
        app.drain();
        app.publish(&format!("$hw/events/device/{id}/twin/update"), body);
        let r = app
            .wait(T, |m| {
                m.topic == format!("$hw/events/device/{id}/twin/update/result")
            })
            .unwrap_or_else(|| panic!("no result for {body}:\n{}", a.log()));
        assert_eq!(r.json["code"], code, "{body}: {}", r.json);
    }
    // Give a wrongly accepted report time to reach the hub before comparing.
    std::thread::sleep(Duration::from_secs(2));
    let after = cloud.fleet.json(&["get", "device", "t1"]);
    assert_eq!(
        before["status"], after["status"],
        "refused input changed the device"
    );
    assert_eq!(
        before["spec"], after["spec"],
        "refused input changed the device"
    );
    assert_eq!(
        device_in_etcd(&cloud),
        etcd_before,
        "refused input changed etcd"
    );
    assert_eq!(
        agent_twin_tables(&a),
        sqlite_before,
        "refused input changed the agent's SQLite"
    );

    // The broker dies and comes back: reports made after it are delivered.
    broker.kill();
    std::thread::sleep(Duration::from_millis(500));
    broker.restart();
    let ok = poll(T, || {
        report(&app, "26");
        std::thread::sleep(Duration::from_millis(300));
        (twin(&cloud.fleet).1.as_deref() == Some("26")).then_some(())
    });
    assert!(
        ok.is_some(),
        "no report after the broker restart: {:?}\n{}",
        twin(&cloud.fleet),
        a.log()
    );
}

#[test]
fn edits_on_both_sides_while_apart_converge_and_the_outbox_survives_a_restart() {
    let (cloud, proxy, broker, mut a, app) = setup("edge-dc");
    report(&app, "20");
    wait_reported(&cloud, &a, "20");

    // The link is cut.
    proxy.set(Fault::Blackhole);
    let gone = poll(T, || {
        (cloud.fleet.node_ready("edge-dc").as_deref() != Some("True")).then_some(())
    });
    assert!(gone.is_some(), "edge-dc still Ready behind a blackhole");

    // The cloud sets 30 (version 2); an app on the edge sets 35 then 36 (base 1, version 3);
    // the mapper reports 21 then 22.
    cloud.fleet.ok(&["device", "set", "t1", "temp=30"]);
    for v in ["35", "36"] {
        app.drain();
        app.publish(
            "$hw/events/device/t1/twin/update",
            format!(r#"{{"twin":{{"temp":{{"expected":{{"value":"{v}"}}}}}}}}"#),
        );
        let r = app
            .wait(T, |m| m.topic == "$hw/events/device/t1/twin/update/result")
            .unwrap();
        assert_eq!(r.json["twin"]["temp"]["expected"]["value"], v, "{}", r.json);
    }
    report(&app, "21");
    report(&app, "22");
    // The edge's twin holds it while offline.
    app.drain();
    app.publish("$hw/events/device/t1/twin/get", "{}");
    let g = app
        .wait(T, |m| m.topic == "$hw/events/device/t1/twin/get/result")
        .unwrap();
    assert_eq!(
        g.json["twin"]["temp"]["expected"]["value"], "36",
        "{}",
        g.json
    );
    let offline = poll(T, || {
        app.drain();
        app.publish("$hw/events/device/t1/twin/get", "{}");
        let g = app.wait(T, |m| m.topic == "$hw/events/device/t1/twin/get/result")?;
        (g.json["twin"]["temp"]["actual"]["value"] == "22").then_some(())
    });
    assert!(offline.is_some(), "the reports were not stored");

    // The agent restarts while offline: its outbox is on disk.
    a.kill();
    run(&mut a, &broker);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        twin(&cloud.fleet).1.as_deref(),
        Some("20"),
        "nothing crossed yet"
    );

    // The link returns: the edge's edit (version 3) beats the cloud's (version 2).
    proxy.set(Fault::Pass);
    let converged = poll(T, || {
        let (desired, reported, conflicts) = twin(&cloud.fleet);
        (desired.as_deref() == Some("36")
            && reported.as_deref() == Some("22")
            && !conflicts.is_empty())
        .then_some(conflicts)
    });
    let conflicts = converged.unwrap_or_else(|| {
        panic!(
            "no convergence: {:?}\nagent:\n{}\nhub:\n{}",
            twin(&cloud.fleet),
            a.log(),
            cloud.hub.log()
        )
    });
    let c = conflicts.last().unwrap();
    assert_eq!(c["kept"]["value"], "36", "{c}");
    assert_eq!(c["lost"]["value"], "30", "{c}");
    // The edge ends on the same value: no pending edit, the hub's desired 36 in force.
    let edge = poll(T, || {
        app.drain();
        app.publish("$hw/events/device/t1/twin/get", "{}");
        let g = app.wait(T, |m| m.topic == "$hw/events/device/t1/twin/get/result")?;
        let t = &g.json["twin"]["temp"];
        (t["expected"]["value"] == "36" && t["expected_version"]["edge"] == 3).then_some(())
    });
    assert!(
        edge.is_some(),
        "the edge did not settle on 36:\n{}",
        a.log()
    );
}
