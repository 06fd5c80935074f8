//! The fleet dashboard in headless Chromium against real etcd, a real hub, a real agent
//! (edge-a, behind a FaultProxy, running a pod) and a hand-made edge (edge-b, holding a
//! device): log in through the form, see both edges and the pod, follow the pod's log, edit
//! a device's desired value (and see an out-of-range one refused with the API's message),
//! then cut edge-a's link and watch it turn Offline without a reload (Server-Sent Events).
//! Screenshots go to `target/test-artifacts/dashboard/`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barge_edge_e2e::raw::RawEdge;
use barge_edge_e2e::util::poll;
use barge_edge_e2e::{Browser, Fault};
use barge_edge_proto::wire::{EdgeMsg, HubMsg};
use common::{pod, wait_pods, Cloud};

const DEVICE: &str = "apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: thermostat
spec:
  properties:
  - name: target
    type: INT
    minimum: \"0\"
    maximum: \"100\"
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: thermo-1
spec:
  deviceModelRef:
    name: thermostat
  nodeName: edge-b
  properties:
  - name: target
    desired:
      value: \"20\"
";

fn artifacts() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A hand-made edge that says Hello and answers the hub's pings until stopped.
fn hollow_edge(addr: std::net::SocketAddr, token: &str, name: &str) -> Arc<AtomicBool> {
    let id = RawEdge::join(addr, token, name).unwrap();
    let (mut c, m) = RawEdge::hello(addr, &id, name).unwrap();
    assert!(matches!(m, HubMsg::Welcome { .. }), "{m:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match c.recv() {
                Ok(HubMsg::Ping) => {
                    if c.send(&EdgeMsg::Pong).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) if e.contains("no message") => {}
                Err(_) => break,
            }
        }
    });
    stop
}

#[test]
fn the_dashboard_shows_the_fleet_live_and_edits_a_desired_value() {
    // Chromium is driven to the plain-HTTP API (the https API and client certificates are
    // covered by barge-hub's api_tls test and tls_fleet.rs).
    let (cloud, proxy) = Cloud::behind_proxy_with(barge_edge_e2e::HubOptions {
        insecure_http: true,
        ..common::hub_options()
    });
    let mut a = cloud.device_via("edge-a", &proxy);
    cloud.wait_ready(&mut a);
    let token = cloud.fleet.token(None);
    let stop_b = hollow_edge(cloud.hub.listen, &token, "edge-b");
    let b_ready = poll(Duration::from_secs(20), || {
        (cloud.fleet.node_ready("edge-b").as_deref() == Some("True")).then_some(())
    });
    assert!(
        b_ready.is_some(),
        "edge-b not Ready: {:?}",
        cloud.fleet.nodes()
    );
    cloud.fleet.apply(&pod("web", "edge-a"));
    cloud.fleet.apply(DEVICE);
    wait_pods(&cloud.fleet, Duration::from_secs(60), "web Running", |r| {
        r.iter().any(|p| p.name == "web" && p.phase == "Running")
    });

    let url = cloud.hub.api_url();
    let shots = artifacts();
    let mut br = Browser::start();

    // Not logged in: the page sends us to the form; a wrong token shows an error, no cookie.
    let at = br.open(&format!("{url}/"));
    assert!(at.ends_with("/ui/login"), "{at}");
    br.cmd(serde_json::json!({"op": "type", "css": "#token", "text": "wrong"}));
    br.cmd(serde_json::json!({"op": "click", "css": "#login-btn"}));
    // The click returns before the form's POST is answered: wait for the answer's page.
    let long = Duration::from_secs(20);
    let err = br.wait_text("#login-error", "wrong token", long);
    assert!(err.is_ok(), "{err:?}");
    assert_eq!(
        br.cmd(serde_json::json!({"op": "cookies"})),
        serde_json::json!([])
    );

    // The admin token: the fleet page with both edges Online, the pod, the device.
    let admin = cloud.hub.admin_conf().token.unwrap();
    br.cmd(serde_json::json!({"op": "type", "css": "#token", "text": admin}));
    br.cmd(serde_json::json!({"op": "click", "css": "#login-btn"}));
    for n in ["edge-a", "edge-b"] {
        br.wait_text(&format!("tr[data-node='{n}'] .status"), "Online", long)
            .unwrap();
    }
    let cookies = br.cmd(serde_json::json!({"op": "cookies"}));
    assert_eq!(cookies[0]["name"], "barge_session", "{cookies}");
    assert_eq!(cookies[0]["httpOnly"], true, "{cookies}");
    assert_eq!(cookies[0]["sameSite"], "Strict", "{cookies}");
    assert_eq!(
        br.js("return document.cookie"),
        "",
        "the session cookie is readable by scripts"
    );
    br.wait_text(
        "table.pods[data-node='edge-a'] tr[data-pod='default/web']",
        "Running",
        long,
    )
    .unwrap();
    br.wait_text("tr[data-device='default/thermo-1']", "edge-b", long)
        .unwrap();
    br.wait_text("#live", "live", long).unwrap();
    br.screenshot(&shots.join("1-fleet.png"));

    // The pod's log, followed through the tunnel.
    let at = br.open(&format!("{url}/ui/nodes/edge-a/pods/default/web/log"));
    assert!(at.ends_with("/log"), "{at}");
    br.wait_text("#log", "hello-from-web", long).unwrap();
    br.screenshot(&shots.join("2-log.png"));

    // Edit the desired value: it reaches the Device (fleet get device), and the page shows it.
    br.open(&format!("{url}/"));
    br.wait_text("#live", "live", long).unwrap();
    br.cmd(serde_json::json!({"op": "click", "css": "button.edit[data-name='thermo-1'][data-prop='target']"}));
    br.cmd(serde_json::json!({"op": "type", "css": "#ed-value", "text": "42"}));
    br.cmd(serde_json::json!({"op": "click", "css": "#ed-save"}));
    br.wait_text("#ed-msg", "saved", long).unwrap();
    let desired = poll(Duration::from_secs(10), || {
        let d = cloud.fleet.json(&["get", "device", "thermo-1"]);
        let twins = d["status"]["twins"].as_array().cloned().unwrap_or_default();
        twins
            .iter()
            .find(|t| t["propertyName"] == "target")
            .and_then(|t| t["observedDesired"]["value"].as_str().map(str::to_string))
            .filter(|v| v == "42")
    });
    assert!(
        desired.is_some(),
        "desired value not 42: {}",
        cloud.fleet.json(&["get", "device", "thermo-1"])
    );
    br.wait_text("tr[data-device='default/thermo-1'] td.desired", "42", long)
        .unwrap();
    // Out of range: the API's 400 message on the page, nothing stored.
    br.cmd(serde_json::json!({"op": "click", "css": "button.edit[data-name='thermo-1'][data-prop='target']"}));
    br.cmd(serde_json::json!({"op": "type", "css": "#ed-value", "text": "500"}));
    br.cmd(serde_json::json!({"op": "click", "css": "#ed-save"}));
    let msg = br.wait_text("#ed-msg", "400", long).unwrap();
    assert!(msg.contains("target"), "{msg}");
    br.screenshot(&shots.join("3-refused-edit.png"));
    let d = cloud.fleet.json(&["get", "device", "thermo-1"]);
    assert!(
        d.to_string().contains("\"42\"") && !d.to_string().contains("\"500\""),
        "{d}"
    );

    // Cut edge-a: Offline on the open page (no reload) within its grace period.
    br.js("window.__noReload = 1; return 1");
    let updates_before = br.js("return Number(document.body.dataset.updates || 0)");
    proxy.set(Fault::Blackhole);
    let cut = Instant::now();
    // Missed pings (3 x 1 s) + grace (6 s) + the hub's 1 s refresh: well within 30 s.
    br.wait_text(
        "tr[data-node='edge-a'] .status",
        "Offline",
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("edge-a never Offline on the page: {e}\n{}", cloud.hub.log()));
    let took = cut.elapsed();
    assert_eq!(
        br.js("return window.__noReload"),
        1,
        "the page was reloaded"
    );
    let updates_after = br.js("return Number(document.body.dataset.updates || 0)");
    assert!(
        updates_after.as_i64() > updates_before.as_i64(),
        "no SSE update"
    );
    assert_eq!(
        br.text("tr[data-node='edge-b'] .status").as_deref(),
        Some("Online")
    );
    br.wait_text(
        "table.pods[data-node='edge-a'] tr[data-pod='default/web']",
        "Unknown",
        long,
    )
    .unwrap();
    br.screenshot(&shots.join("4-edge-a-offline.png"));
    eprintln!("edge-a Offline on the page {took:?} after the cut");
    stop_b.store(true, Ordering::Relaxed);
}
