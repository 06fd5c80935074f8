//! Offline autonomy: with the hub unreachable (a blackhole: connections hang), the device
//! reboots (agent, shims and containers killed, mounts gone, run root wiped) and `barge edge
//! run` brings every cached pod back from SQLite. A change made in the cloud meanwhile is
//! applied when the link returns, once.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_edge_e2e::util::poll;
use barge_edge_e2e::Fault;
use common::{deployment, started_once, version_in, wait_pods, Cloud, AGENT_ARGS};

const PODS: [&str; 3] = [
    "keep-edge-o-0-main",
    "keep-edge-o-1-main",
    "keep-edge-o-2-main",
];

#[test]
fn an_offline_reboot_restores_every_pod_from_the_cache() {
    let (cloud, proxy) = Cloud::behind_proxy();
    let mut a = cloud.device_via("edge-o", &proxy);
    cloud.wait_ready(&mut a);
    let node = [("nodeName", "edge-o")];
    cloud.fleet.apply(&deployment("keep", 3, &node, 1));
    a.wait_running(&PODS, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("pods never ran:\n{}", a.log()));

    // The hub becomes unreachable: past its grace the node is shown not Ready and its pods
    // Unknown, still placed on it (edge semantics: nothing is moved).
    proxy.set(Fault::Blackhole);
    let not_ready = poll(Duration::from_secs(60), || {
        (cloud.fleet.node_ready("edge-o").as_deref() != Some("True")).then_some(())
    });
    assert!(
        not_ready.is_some(),
        "edge-o still Ready: {:?}",
        cloud.fleet.nodes()
    );
    wait_pods(
        &cloud.fleet,
        Duration::from_secs(30),
        "keep pods Unknown on edge-o",
        |r| {
            let k: Vec<_> = r.iter().filter(|p| p.name.starts_with("keep-")).collect();
            k.len() == 3 && k.iter().all(|p| p.phase == "Unknown" && p.node == "edge-o")
        },
    );
    // Then the device loses power.
    a.power_off();
    assert!(
        a.running_containers().is_empty(),
        "still running after power off: {:?}",
        a.running_containers()
    );

    // Meanwhile in the cloud: a new version.
    cloud.fleet.apply(&deployment("keep", 3, &node, 2));

    // Boot: the agent alone, the hub still unreachable.
    let accepted = proxy.accepted();
    a.run(AGENT_ARGS);
    let back = a.wait_running(&PODS, Duration::from_secs(60));
    assert!(
        back.is_some(),
        "pods not restored offline: {:?}\n{}",
        a.running_containers(),
        a.log()
    );
    assert_eq!(proxy.fault(), Fault::Blackhole);
    // It did try the hub (and got nowhere): what it runs is the cached version.
    assert!(proxy.accepted() > accepted, "the agent never tried the hub");
    for p in PODS {
        assert_eq!(version_in(&a, p).as_deref(), Some("1"), "{p}");
    }
    let restored: Vec<String> = back.unwrap().into_iter().map(|(_, id)| id).collect();

    // The link returns: the cloud's change is applied, once per pod.
    proxy.set(Fault::Pass);
    let v2 = poll(Duration::from_secs(120), || {
        PODS.iter()
            .all(|p| version_in(&a, p).as_deref() == Some("2"))
            .then_some(())
    });
    assert!(v2.is_some(), "version 2 never arrived:\n{}", a.log());
    cloud.wait_ready(&mut a);
    wait_pods(
        &cloud.fleet,
        Duration::from_secs(60),
        "3 keep pods Running",
        |r| {
            r.iter()
                .filter(|p| p.name.starts_with("keep-") && p.phase == "Running")
                .count()
                == 3
        },
    );
    for p in PODS {
        started_once(&a, p, 2);
    }
    let now: Vec<String> = a
        .running_containers()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    for id in &restored {
        assert!(!now.contains(id), "{id} kept running version 1");
    }
    assert!(a.running(), "the agent died:\n{}", a.log());
}

#[test]
fn the_agent_restarts_pods_while_the_hub_is_down_for_good() {
    // The hub process itself gone (not just the link): the agent restart path is the same.
    let (mut cloud, proxy) = Cloud::behind_proxy();
    let mut a = cloud.device_via("edge-d", &proxy);
    cloud.wait_ready(&mut a);
    cloud
        .fleet
        .apply(&deployment("solo", 1, &[("nodeName", "edge-d")], 7));
    a.wait_running(&["solo-edge-d-0-main"], Duration::from_secs(120))
        .unwrap_or_else(|| panic!("pod never ran:\n{}", a.log()));
    cloud.hub.kill();
    a.power_off();
    a.run(AGENT_ARGS);
    let back = poll(Duration::from_secs(60), || {
        (version_in(&a, "solo-edge-d-0-main").as_deref() == Some("7")).then_some(())
    });
    assert!(
        back.is_some(),
        "not restored with the hub down:\n{}",
        a.log()
    );
}
