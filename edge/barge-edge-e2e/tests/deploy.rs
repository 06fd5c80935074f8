//! Join two devices, apply a Deployment with a nodeSelector: its pods run on the matching
//! device only (`fleet get pods -o json`: spec.nodeName, status.phase Running; the device's
//! own `barge ps` shows them), none on the other; logs and exec through the tunnel.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_edge_e2e::util::poll;
use common::{deployment, named, pod, version_in, wait_pods, Cloud};

#[test]
fn deployment_with_node_selector_runs_on_the_matching_device_only() {
    let cloud = Cloud::start();
    let mut a = cloud.device("edge-a", &[("zone", "north")], None);
    let mut b = cloud.device("edge-b", &[("zone", "south")], None);
    cloud.wait_ready(&mut a);
    cloud.wait_ready(&mut b);

    cloud
        .fleet
        .apply(&deployment("web", 2, &[("zone", "north")], 1));
    let rows = wait_pods(
        &cloud.fleet,
        Duration::from_secs(120),
        "2 web pods Running",
        |r| {
            let w = named(r, "web-");
            w.len() == 2 && w.iter().all(|p| p.phase == "Running")
        },
    );
    let web = named(&rows, "web-");
    assert!(
        web.iter().all(|p| p.node == "edge-a"),
        "web pods not all on edge-a: {web:#?}"
    );
    let names: Vec<&str> = web.iter().map(|p| p.name.as_str()).collect();
    for want in ["web-edge-a-0", "web-edge-a-1"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }

    // The device runs them, under their fleet names; the other device runs nothing.
    let running = a
        .wait_running(&["web-edge-a-0", "web-edge-a-1"], Duration::from_secs(30))
        .unwrap_or_else(|| panic!("edge-a runs {:?}", a.running_containers()));
    assert_eq!(running.len(), 2);
    // The operator's view on the device: `barge --root R ps` (flags, no environment).
    let o = std::process::Command::new(barge_edge_e2e::util::barge_bin())
        .arg("--root")
        .arg(a.root())
        .arg("--runroot")
        .arg(a.runroot())
        .arg("ps")
        .env_remove("BARGE_ROOT")
        .env_remove("BARGE_RUNROOT")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("web-edge-a-0-main") && table.contains("web-edge-a-1-main"),
        "barge --root R ps:\n{table}"
    );
    let pods = a.pods();
    assert!(
        pods.contains("web-edge-a-0") && pods.contains("web-edge-a-1"),
        "barge pod ls on edge-a: {pods:?}"
    );
    assert_eq!(
        version_in(&a, "web-edge-a-0-main").as_deref(),
        Some("1"),
        "{:#?}",
        a.ps()
    );
    assert!(
        b.running_containers().is_empty(),
        "edge-b runs {:?}",
        b.running_containers()
    );
    assert!(b.pods().is_empty(), "edge-b has pods {:?}", b.pods());

    // Relabel edge-b into the zone and scale to 3: the new replica may go to either node,
    // but every web pod runs where fleet says it does.
    cloud.fleet.ok(&["node", "label", "edge-b", "zone=north"]);
    cloud
        .fleet
        .apply(&deployment("web", 3, &[("zone", "north")], 1));
    let rows = wait_pods(
        &cloud.fleet,
        Duration::from_secs(120),
        "3 web pods Running",
        |r| {
            let w = named(r, "web-");
            w.len() == 3 && w.iter().all(|p| p.phase == "Running")
        },
    );
    for p in named(&rows, "web-") {
        let dev = if p.node == "edge-a" { &a } else { &b };
        assert!(
            dev.wait_running(&[p.name.as_str()], Duration::from_secs(30))
                .is_some(),
            "{} not running on {}",
            p.name,
            p.node
        );
    }

    // Deleting the Deployment removes its pods from the devices.
    cloud.fleet.ok(&["delete", "deployment", "web"]);
    wait_pods(
        &cloud.fleet,
        Duration::from_secs(60),
        "web pods gone",
        |r| named(r, "web-").is_empty(),
    );
    let gone = poll(Duration::from_secs(60), || {
        (a.running_containers().is_empty() && b.running_containers().is_empty()).then_some(())
    });
    assert!(
        gone.is_some(),
        "pods left after delete: a {:?} b {:?}",
        a.running_containers(),
        b.running_containers()
    );
}

#[test]
fn logs_and_exec_go_through_the_tunnel() {
    let cloud = Cloud::start();
    let mut a = cloud.device("edge-l", &[], None);
    cloud.wait_ready(&mut a);
    cloud.fleet.apply(&pod("talker", "edge-l"));
    wait_pods(
        &cloud.fleet,
        Duration::from_secs(120),
        "talker Running",
        |r| {
            r.iter()
                .any(|p| p.name == "talker" && p.phase == "Running" && p.node == "edge-l")
        },
    );

    // Logs: what the container printed on the device.
    let mut last = String::new();
    let logs = poll(Duration::from_secs(30), || {
        let o = cloud.fleet.run(&["logs", "edge-l/talker"]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        last = format!("{o:?}");
        (o.status.success() && out.contains("hello-from-talker")).then_some(out)
    });
    assert!(
        logs.is_some(),
        "fleet logs never showed the greeting: {last}\nagent:\n{}\nhub:\n{}",
        a.log(),
        cloud.hub.log()
    );

    // Exec: output, the exit code, and that it runs inside the pod's container.
    let out = cloud.fleet.ok(&[
        "exec",
        "edge-l/talker",
        "--",
        "sh",
        "-c",
        "echo $((6*7)); cat /etc/hostname",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("42"), "{out}");
    let hostname = lines.next().unwrap_or_default().to_string();
    assert!(!hostname.is_empty(), "{out}");
    let local = a.barge(&["exec", &a.running_containers()[0].1, "cat", "/etc/hostname"]);
    assert_eq!(String::from_utf8_lossy(&local.stdout).trim(), hostname);

    let o = cloud.fleet.run(&[
        "exec",
        "edge-l/talker",
        "--",
        "sh",
        "-c",
        "echo err >&2; exit 3",
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "exit code through the tunnel: {o:?}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("err"), "{o:?}");

    // A file written through the tunnel is there on the device.
    cloud.fleet.ok(&[
        "exec",
        "edge-l/talker",
        "--",
        "sh",
        "-c",
        "echo tunnel-was-here > /tmp/mark",
    ]);
    let (_, id) = a.running_containers()[0].clone();
    let local = a.barge(&["exec", &id, "cat", "/tmp/mark"]);
    assert_eq!(
        String::from_utf8_lossy(&local.stdout).trim(),
        "tunnel-was-here"
    );

    // Another node's name for the pod: refused.
    let o = cloud.fleet.run(&["exec", "edge-nope/talker", "--", "true"]);
    assert!(!o.status.success(), "exec on an unknown node succeeded");
    drop(a);
}
