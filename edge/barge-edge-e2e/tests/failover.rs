//! Two hubs serve one fleet (one etcd, the same CA key file). An edge joined through the
//! first keeps running when it is killed: it reconnects to the second, and every update
//! applied through the second meanwhile reaches it, the last one winning.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_edge_e2e::util::poll;
use barge_edge_e2e::{Hub, HubOptions};
use common::{deployment, hub_options, started_once, version_in, wait_pods, Cloud};

#[test]
fn killing_a_hub_moves_its_edges_to_the_other_without_losing_updates() {
    let mut cloud = Cloud::start();
    let hub2 = Hub::start(
        &cloud.etcd,
        HubOptions {
            key_file: Some(cloud.hub.default_key_file()),
            ..hub_options()
        },
    );
    // The second hub cannot recover the admin token (only its hash is in etcd).
    assert_eq!(hub2.admin_conf().token, None, "{:?}", hub2.admin_conf());
    let fleet2 = cloud.fleet.with_server(&hub2.api_url());

    let mut a = cloud.device("edge-f", &[], None);
    cloud.wait_ready(&mut a);
    cloud
        .fleet
        .apply(&deployment("app", 1, &[("nodeName", "edge-f")], 1));
    let pod = "app-edge-f-0";
    let main = "app-edge-f-0-main";
    let v1 = poll(Duration::from_secs(120), || {
        (version_in(&a, main).as_deref() == Some("1")).then_some(())
    });
    assert!(v1.is_some(), "v1 never ran:\n{}", a.log());

    // Crash the hub the edge is on; update through the other one, several times in a row.
    cloud.hub.kill();
    for v in 2..=6 {
        fleet2.apply(&deployment("app", 1, &[("nodeName", "edge-f")], v));
    }
    let v6 = poll(Duration::from_secs(120), || {
        (version_in(&a, main).as_deref() == Some("6")).then_some(())
    });
    assert!(
        v6.is_some(),
        "the last update never reached the edge (runs {:?}):\nagent:\n{}\nhub2:\n{}",
        version_in(&a, main),
        a.log(),
        hub2.log()
    );
    // The session is on the second hub now: the node is Ready there, the pod Running with
    // the Deployment's last revision.
    let rv = fleet2.json(&["get", "deployment", "app"])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let ready = poll(Duration::from_secs(60), || {
        (fleet2.node_ready("edge-f").as_deref() == Some("True")).then_some(())
    });
    assert!(
        ready.is_some(),
        "edge-f not Ready on hub2: {:?}",
        fleet2.nodes()
    );
    let rows = wait_pods(
        &fleet2,
        Duration::from_secs(60),
        "app Running on hub2",
        |r| {
            r.iter()
                .any(|p| p.name == pod && p.phase == "Running" && p.node == "edge-f")
        },
    );
    assert_eq!(
        rows.iter().filter(|p| p.name == pod).count(),
        1,
        "{rows:#?}"
    );
    let _ = rv;
    // One container for the pod: the replaced versions are gone, nothing ran twice.
    started_once(&a, main, 6);
    assert!(a.running(), "the agent died:\n{}", a.log());

    // The first hub comes back; the fleet still answers through it, and exec and logs
    // through it reach the edge whose session the second hub holds (forwarded).
    cloud.hub.restart();
    let rows = cloud.fleet.pods();
    assert!(rows.iter().any(|p| p.name == pod), "{rows:#?}");
    let target = format!("edge-f/{pod}");
    let out = cloud
        .fleet
        .ok(&["exec", &target, "--", "sh", "-c", "echo v$VERSION"]);
    assert_eq!(out.trim(), "v6", "exec forwarded from hub1");
    let logs = cloud.fleet.ok(&["logs", &target]);
    assert!(
        logs.contains("started-6"),
        "logs forwarded from hub1: {logs:?}"
    );
}
