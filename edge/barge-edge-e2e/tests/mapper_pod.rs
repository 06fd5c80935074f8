//! The mapper as a pod on the edge (issue 18): the hub deploys a Pod running the mapper image
//! (`scripts/mapper-image.sh`, `hostNetwork: true`, `args: [--node, N, ...]`) to a real
//! agent with a real mosquitto; the mapper serves a virtual device. `fleet get device -o
//! json` shows the values it reports (nothing is reported before the pod runs) and its
//! `online` state, and a desired value set from the cloud reaches the device (the mapper
//! writes it and reports it back).
//!
//! The image is made once per `target/` and mapper binary (cached as a `barge save` archive
//! under `target/e2e-cache/`), then loaded into the device's store.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use barge_edge_e2e::util::{bin_dir, poll};
use barge_edge_e2e::{Agent, Fleet, Mosquitto};
use barge_testutil::engine::BargeEnv;
use common::{Cloud, AGENT_ARGS};
use serde_json::Value;

const T: Duration = Duration::from_secs(40);
const IMAGE: &str = "barge-mapper:e2e";

/// The mapper image as a `barge save` archive, made once per mapper binary (its size and
/// mtime name the file) with scripts/mapper-image.sh in a throw-away store.
fn image_archive() -> PathBuf {
    let mapper = bin_dir().join("barge-mapper");
    assert!(
        mapper.exists(),
        "{} is missing: cargo build -p barge-mapper",
        mapper.display()
    );
    let meta = std::fs::metadata(&mapper).unwrap();
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cache = bin_dir().join("e2e-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let archive = cache.join(format!("barge-mapper-{}-{mtime}.tar", meta.len()));
    if archive.exists() {
        return archive;
    }
    let env = BargeEnv::new(bin_dir().join("barge").to_str().unwrap());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mapper-image.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(IMAGE)
        .arg(&mapper)
        .env("BARGE", &env.bin)
        .env("BARGE_ROOT", env.root())
        .env("BARGE_RUNROOT", env.runroot())
        .env("BARGE_CONFIG", env.path().join("etc"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mapper-image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Written under a temp name then renamed: a concurrent run never loads half a file.
    let tmp = cache.join(format!(
        ".{}.{}",
        std::process::id(),
        IMAGE.replace(':', "-")
    ));
    let o = env.run(&["save", "-o", tmp.to_str().unwrap(), IMAGE]);
    assert!(
        o.status.success(),
        "barge save: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::rename(&tmp, &archive).unwrap();
    archive
}

fn devices(node: &str) -> String {
    format!(
        "apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {{name: thermo}}
spec:
  protocol: virtual
  properties:
  - {{name: temp, type: INT, accessMode: ReadWrite, minimum: \"0\", maximum: \"100\"}}
  - {{name: hum, type: FLOAT, accessMode: ReadOnly, minimum: \"40\", maximum: \"60\"}}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {{name: vt1}}
spec:
  deviceModelRef: {{name: thermo}}
  nodeName: {node}
  protocol: {{protocolName: virtual}}
  properties:
  - name: temp
    collectCycle: 200
    visitors: {{protocolName: virtual, configData: {{generator: constant, initial: \"21\"}}}}
  - name: hum
    collectCycle: 200
    visitors: {{protocolName: virtual, configData: {{generator: sine, initial: \"50\", periodMs: 5000}}}}
"
    )
}

fn mapper_pod(node: &str, broker: &Mosquitto) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: mapper}}
spec:
  nodeName: {node}
  hostNetwork: true
  containers:
  - name: mapper
    image: {IMAGE}
    imagePullPolicy: Never
    args: [--node, {node}, --mqtt, \"{}\", --protocol, virtual]
",
        broker.url()
    )
}

/// (desired, reported) of `prop`, and the device's state, from `fleet get device vt1 -o json`.
fn twin(fleet: &Fleet, prop: &str) -> (Option<String>, Option<String>, Option<String>) {
    let v = fleet.json(&["get", "device", "vt1"]);
    let t = v["status"]["twins"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["propertyName"] == prop))
        .cloned()
        .unwrap_or(Value::Null);
    let s = |x: &Value| x.as_str().map(str::to_string);
    (
        s(&t["observedDesired"]["value"]),
        s(&t["reported"]["value"]),
        s(&v["status"]["state"]),
    )
}

#[test]
fn the_hub_deploys_the_mapper_as_a_pod_and_twins_flow_through_it() {
    let archive = image_archive();
    let cloud = Cloud::start();
    let broker = Mosquitto::start();
    let node = "edge-mp";
    let mut a = Agent::new(node);
    let o = a.barge(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "barge load: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let token = cloud.fleet.token(None);
    a.join(&cloud.hub.edge_url(), &token, &[]);
    let mut args: Vec<String> = AGENT_ARGS.iter().map(|s| s.to_string()).collect();
    let i = args.iter().position(|s| s == "none").unwrap();
    args[i] = broker.url();
    a.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    cloud.wait_ready(&mut a);

    // The device first: with no mapper yet, nothing reports.
    cloud.fleet.apply(&devices(node));
    assert_eq!(
        twin(&cloud.fleet, "temp").1,
        None,
        "reported before any mapper ran"
    );
    assert_eq!(
        twin(&cloud.fleet, "hum").1,
        None,
        "reported before any mapper ran"
    );
    cloud.fleet.apply(&mapper_pod(node, &broker));
    let running = a.wait_running(&["mapper"], T);
    assert!(
        running.is_some(),
        "the mapper pod never ran: {:#?}\nagent:\n{}",
        a.ps(),
        a.log()
    );
    let (_, id) = running.unwrap().remove(0);

    // Reported values and the online state come from the mapper in the pod.
    let up = poll(T, || {
        let (_, temp, state) = twin(&cloud.fleet, "temp");
        let (_, hum, _) = twin(&cloud.fleet, "hum");
        (temp.as_deref() == Some("21") && hum.is_some() && state.as_deref() == Some("online"))
            .then_some(hum)
    });
    let logs = |id: &str| {
        let o = a.barge(&["logs", id]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let hum = up.unwrap_or_else(|| {
        panic!(
            "no reports from the mapper pod: temp {:?}, hum {:?}\nmapper:\n{}\nagent:\n{}",
            twin(&cloud.fleet, "temp"),
            twin(&cloud.fleet, "hum"),
            logs(&id),
            a.log()
        )
    });
    let h: f64 = hum.unwrap().parse().unwrap();
    assert!(
        (40.0..=60.0).contains(&h),
        "hum {h} outside the model's range"
    );
    // The pod's status reaches the cloud too (statuses are batched for a second).
    let running = poll(T, || {
        cloud
            .fleet
            .pods()
            .iter()
            .any(|p| p.name == "mapper" && p.node == node && p.phase == "Running")
            .then_some(())
    });
    assert!(running.is_some(), "{:#?}", cloud.fleet.pods());

    // Cloud -> mapper -> device -> cloud: the desired value is written and reported back.
    cloud.fleet.ok(&["device", "set", "vt1", "temp=42"]);
    let done = poll(T, || {
        let (desired, reported, _) = twin(&cloud.fleet, "temp");
        (desired.as_deref() == Some("42") && reported.as_deref() == Some("42")).then_some(())
    });
    assert!(
        done.is_some(),
        "temp=42 never came back: {:?}\nmapper:\n{}\nagent:\n{}",
        twin(&cloud.fleet, "temp"),
        logs(&id),
        a.log()
    );
    // The write went through the mapper in the pod (its log says so).
    let l = logs(&id);
    assert!(
        l.contains("device vt1, property temp: wrote 42"),
        "mapper log: {l}"
    );
}
