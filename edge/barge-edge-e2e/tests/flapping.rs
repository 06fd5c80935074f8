//! A link flapping for a minute (3 s up, 3 s down) while 50 updates are applied to one
//! Deployment: at the end the device runs exactly the last version, once, and a Deployment
//! that never changed was never restarted (same container id, restart count 0).
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use barge_edge_e2e::util::poll;
use barge_edge_e2e::Fault;
use common::{deployment, started_once, version_in, wait_pods, Cloud};

#[test]
fn a_flapping_link_with_50_updates_ends_exact_without_needless_restarts() {
    let (cloud, proxy) = Cloud::behind_proxy();
    let mut a = cloud.device_via("edge-x", &proxy);
    cloud.wait_ready(&mut a);
    let node = [("nodeName", "edge-x")];
    cloud.fleet.apply(&deployment("stable", 1, &node, 1));
    cloud.fleet.apply(&deployment("churn", 1, &node, 0));
    let running = a
        .wait_running(
            &["stable-edge-x-0-main", "churn-edge-x-0-main"],
            Duration::from_secs(120),
        )
        .unwrap_or_else(|| panic!("pods never ran:\n{}", a.log()));
    let stable_id = running[0].1.clone();
    assert_eq!(a.inspect(&stable_id, "{{.RestartCount}}"), "0");

    proxy.set(Fault::Flap(Duration::from_secs(3)));
    let start = Instant::now();
    for v in 1..=50u32 {
        cloud.fleet.apply(&deployment("churn", 1, &node, v));
        // Spread the updates over the minute of flapping.
        let due = start + Duration::from_millis(1200) * v;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    proxy.set(Fault::Pass);
    assert!(
        proxy.dropped() >= 2,
        "the link never went down ({} drops)",
        proxy.dropped()
    );
    assert!(
        proxy.accepted() >= 3,
        "the agent never reconnected ({} connections)",
        proxy.accepted()
    );

    // Exact final state: version 50, one container, reported Running at the last revision.
    let v50 = poll(Duration::from_secs(120), || {
        (version_in(&a, "churn-edge-x-0-main").as_deref() == Some("50")).then_some(())
    });
    assert!(
        v50.is_some(),
        "the device runs version {:?}:\n{}",
        version_in(&a, "churn-edge-x-0-main"),
        a.log()
    );
    let rv = cloud.fleet.json(&["get", "deployment", "churn"])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    wait_pods(
        &cloud.fleet,
        Duration::from_secs(60),
        "churn Running at the last revision",
        |r| {
            r.iter().any(|p| {
                p.name == "churn-edge-x-0" && p.phase == "Running" && p.resource_version == rv
            })
        },
    );
    started_once(&a, "churn-edge-x-0-main", 50);

    // The Deployment nobody touched: the same container, never restarted.
    let stable_now = a
        .running_containers()
        .into_iter()
        .find(|(n, _)| n == "stable-edge-x-0-main")
        .map(|(_, id)| id);
    assert_eq!(
        stable_now.as_deref(),
        Some(stable_id.as_str()),
        "stable was replaced"
    );
    assert_eq!(a.inspect(&stable_id, "{{.RestartCount}}"), "0");
    started_once(&a, "stable-edge-x-0-main", 1);
    assert!(a.running(), "the agent died:\n{}", a.log());
}
