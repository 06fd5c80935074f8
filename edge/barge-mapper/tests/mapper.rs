//! barge-mapper end to end: the binary against a real mosquitto and a real pymodbus server,
//! with the test playing the edge agent over MQTT.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn modbus_registers_are_reported_deltas_written_and_outages_seen() {
    let broker = Mosquitto::start(free_port());
    let mut server = ModbusServer::start(free_port());
    let mut agent = Agent::start(
        broker.port,
        "edge-1",
        vec![modbus_device("pump", server.port)],
    )
    .await;
    let mapper = Mapper::start(&broker.url(), "edge-1", &["modbus"]);

    agent.wait_state("pump", "online", 20).await;
    // Scale, byte swap, register swap, input register, coil.
    for (prop, want) in [
        ("temperature", "23.5"),
        ("swapped", "4660"),
        ("counter", "65538"),
        ("setpoint", "10"),
        ("humidity", "42"),
        ("switch", "true"),
    ] {
        let got = agent.wait_actual("pump", prop, 10, |_| true).await;
        assert_eq!(got, want, "property {prop}");
    }
    // The model's type is in the twin metadata.
    agent
        .wait(10, "type metadata", |m| {
            (m.body["twin"]["temperature"]["metadata"]["type"] == "double").then_some(())
        })
        .await;
    // A register the server does not have: a clear error naming all of it, no report.
    wait_log(
        &mapper,
        "device pump, property missing, HoldingRegister at offset 100",
    )
    .await;

    // A delta for a ReadWrite property is written to the holding register and reported.
    agent.delta("pump", "setpoint", "555");
    agent
        .wait_actual("pump", "setpoint", 10, |v| v == "555")
        .await;
    assert_eq!(server.holding(4), 555);
    // Out of the model's range: refused, the register keeps its value.
    agent.delta("pump", "setpoint", "5000");
    agent.delta("pump", "temperature", "1");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(server.holding(4), 555);
    assert_eq!(server.holding(0), 235);
    assert!(
        mapper.log().contains("above the maximum"),
        "{}",
        mapper.log()
    );

    // The server goes away: offline; back: online and reporting again.
    server.proc.kill();
    agent.wait_state("pump", "offline", 15).await;
    let port = server.port;
    server = ModbusServer::start(port);
    agent.wait_state("pump", "online", 15).await;
    agent
        .wait_actual("pump", "temperature", 10, |v| v == "23.5")
        .await;
    drop(server);
    drop(mapper);
}

fn virtual_device(name: &str) -> barge_edge_proto::device::mqtt::MembershipDevice {
    device(
        name,
        json!({
            "nodeName": "edge-1",
            "protocol": {"protocolName": "virtual"},
            "properties": [
                {"name": "temp", "collectCycle": 50,
                 "visitors": {"protocolName": "virtual", "configData": {"generator": "randomWalk"}}},
                {"name": "level", "collectCycle": 50,
                 "visitors": {"protocolName": "virtual", "configData": {"generator": "sine", "periodMs": 1000}}},
                {"name": "on", "collectCycle": 50,
                 "visitors": {"protocolName": "virtual", "configData": {"initial": "true"}}}
            ]
        }),
        json!({
            "properties": [
                {"name": "temp", "type": "INT", "minimum": "10", "maximum": "20"},
                {"name": "level", "type": "DOUBLE", "minimum": "-1", "maximum": "1", "accessMode": "ReadOnly"},
                {"name": "on", "type": "BOOLEAN"}
            ]
        }),
    )
}

#[tokio::test]
async fn virtual_values_stay_in_range_and_deltas_stick() {
    let broker = Mosquitto::start(free_port());
    let mut agent = Agent::start(broker.port, "edge-1", vec![virtual_device("sim")]).await;
    let mapper = Mapper::start(&broker.url(), "edge-1", &["virtual"]);
    agent.wait_state("sim", "online", 20).await;
    let mut temps = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let t = agent.wait_actual("sim", "temp", 10, |_| true).await;
        let n: i64 = t
            .parse()
            .unwrap_or_else(|_| panic!("temp {t:?} is not an INT"));
        assert!((10..=20).contains(&n), "temp {n} out of 10..20");
        temps.insert(n);
    }
    assert!(temps.len() > 1, "the random walk never moved: {temps:?}");
    for _ in 0..10 {
        let l = agent.wait_actual("sim", "level", 10, |_| true).await;
        let x: f64 = l.parse().unwrap();
        assert!((-1.0..=1.0).contains(&x), "level {x} out of -1..1");
    }
    // A delta sticks: every later report carries it.
    agent.delta("sim", "temp", "13");
    wait_log(&mapper, "device sim, property temp: wrote 13").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    agent.drain();
    for _ in 0..20 {
        assert_eq!(agent.wait_actual("sim", "temp", 10, |_| true).await, "13");
    }
    // Bad input is refused in the log and changes nothing: a malformed delta, a delta for
    // an unknown property, a value of the wrong type.
    agent
        .client
        .try_publish(
            barge_edge_proto::device::mqtt::twin_update_delta("sim"),
            rumqttc::QoS::AtLeastOnce,
            false,
            b"{not json".to_vec(),
        )
        .unwrap();
    agent.delta("sim", "nosuch", "1");
    agent.delta("sim", "temp", "warm");
    wait_log(
        &mapper,
        "malformed payload on $hw/events/device/sim/twin/update/delta",
    )
    .await;
    wait_log(
        &mapper,
        "delta for property nosuch, which this mapper does not handle",
    )
    .await;
    wait_log(&mapper, "\"warm\" is not a valid integer").await;
    agent.drain();
    assert_eq!(agent.wait_actual("sim", "temp", 10, |_| true).await, "13");

    agent.delta("sim", "on", "false");
    wait_log(&mapper, "device sim, property on: wrote false").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    agent.drain();
    assert_eq!(agent.wait_actual("sim", "on", 10, |_| true).await, "false");
}

#[tokio::test]
async fn reporting_resumes_after_a_broker_restart() {
    let port = free_port();
    let mut broker = Mosquitto::start(port);
    let mut agent = Agent::start(port, "edge-1", vec![virtual_device("sim")]).await;
    let mapper = Mapper::start(&broker.url(), "edge-1", &["virtual"]);
    agent.wait_actual("sim", "temp", 20, |_| true).await;
    broker.proc.kill();
    drop(broker);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let restarted = std::time::Instant::now();
    broker = Mosquitto::start(port);
    // The mapper reconnects, asks membership again and reports on.
    agent
        .wait(30, "a report after the broker restart", |m| {
            (m.at > restarted && m.topic.ends_with("/sim/twin/update")).then_some(())
        })
        .await;
    assert!(mapper.log().contains("reconnecting"), "{}", mapper.log());
    drop(broker);
}

#[tokio::test]
async fn report_cycle_limits_reports_and_membership_updates_add_and_remove_devices() {
    let broker = Mosquitto::start(free_port());
    let mut agent = Agent::start(broker.port, "edge-1", vec![]).await;
    let mapper = Mapper::start(&broker.url(), "edge-1", &["virtual"]);
    wait_log(&mapper, "membership: 0 device(s) on node edge-1").await;

    // A device added later: read every 50 ms, reported at most every 500 ms.
    let mut dev = virtual_device("late");
    if let Some(spec) = dev.spec.as_mut() {
        for p in &mut spec.properties {
            p.report_cycle = Some(500);
        }
    }
    let added =
        json!({"event_id": "m1", "timestamp": 1, "added_devices": [dev], "removed_devices": []});
    agent.publish(
        &barge_edge_proto::device::mqtt::membership_updated("edge-1"),
        &added,
    );
    agent.wait_state("late", "online", 10).await;
    agent.wait_actual("late", "temp", 10, |_| true).await;
    let msgs = agent.collect(std::time::Duration::from_millis(2000)).await;
    let reports = msgs
        .iter()
        .filter(|m| m.topic.ends_with("/late/twin/update") && !m.body["twin"]["temp"].is_null())
        .count();
    // 2 s at one report per 500 ms: 4 (a 50 ms collect cycle alone would make 40).
    assert!((3..=5).contains(&reports), "{reports} temp reports in 2 s");

    // Removed: no more reports.
    let removed = json!({"event_id": "m2", "timestamp": 2, "added_devices": [], "removed_devices": [{"id": "late", "name": "late"}]});
    agent.publish(
        &barge_edge_proto::device::mqtt::membership_updated("edge-1"),
        &removed,
    );
    wait_log(&mapper, "device late: removed from node edge-1; stopped").await;
    agent.drain();
    let after = agent.collect(std::time::Duration::from_millis(1200)).await;
    assert!(
        after.iter().all(|m| !m.topic.contains("/late/")),
        "reports after removal: {after:?}"
    );
}

#[tokio::test]
async fn sigterm_stops_the_mapper_cleanly() {
    let broker = Mosquitto::start(free_port());
    let mut agent = Agent::start(broker.port, "edge-1", vec![virtual_device("sim")]).await;
    let mut mapper = Mapper::start(&broker.url(), "edge-1", &["virtual"]);
    agent.wait_actual("sim", "temp", 20, |_| true).await;
    let child = mapper.proc.0.as_mut().unwrap();
    let st = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the mapper did not stop on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}: {}", mapper.log());
    assert!(mapper.log().contains("stopping"), "{}", mapper.log());
}
