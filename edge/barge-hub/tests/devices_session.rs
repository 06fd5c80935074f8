//! Devices through an edge session: KubeEdge manifests applied with the `barge-fleet`
//! binary, a joined in-test edge (hub-core's raw TLS client) receiving the model and device
//! with their desired versions in Sync, sending `Twin` reports (acked, merged, idempotent,
//! another node's device never stored), and desired values edited on both sides settled by
//! version with the conflict visible in `fleet get device -o json`.
//! Needs the binary built first: `cargo build -p barge-fleet` (or `BARGE_FLEET_BIN`).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use barge_edge_proto::device::{DesiredEdit, Origin, Versioned};
use barge_edge_proto::object::{Kind, ObjKey, Object};
use barge_edge_proto::wire::{Change, EdgeMsg, HubMsg, PropertyReport, TwinReport};
use common::*;
use serde_json::Value;

fn fleet_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BARGE_FLEET_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("barge-fleet");
    assert!(
        p.exists(),
        "{} is missing: cargo build -p barge-fleet first",
        p.display()
    );
    p
}

/// Run `barge-fleet ARGS`: exit code, stdout, stderr.
async fn fleet(conf: &Path, args: &[&str]) -> (i32, String, String) {
    let conf = conf.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(fleet_bin())
            .args(&args)
            .env("BARGE_FLEET_CONFIG", &conf)
            .env_remove("HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn fleet_ok(conf: &Path, args: &[&str]) -> String {
    let (code, out, err) = fleet(conf, args).await;
    assert_eq!(code, 0, "fleet {args:?}: {out}{err}");
    out
}

async fn device_json(conf: &Path, name: &str) -> Value {
    serde_json::from_str(&fleet_ok(conf, &["get", "device", name, "-o", "json"]).await).unwrap()
}

fn twin<'a>(d: &'a Value, prop: &str) -> &'a Value {
    d["status"]["twins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["propertyName"] == prop)
        .unwrap_or_else(|| panic!("no twin {prop} in {d}"))
}

// Devices first in the file: apply must create the models before them.
const MANIFEST: &str = r#"apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: t1
spec:
  deviceModelRef:
    name: thermo
  nodeName: edge-1
  protocol:
    protocolName: modbus
    configData: {ip: 127.0.0.1, port: 1502, slaveID: 1}
  properties:
    - name: temp
      collectCycle: 1000
      reportCycle: 1000
      desired:
        value: "30"
      visitors:
        protocolName: modbus
        configData: {register: HoldingRegister, offset: 2, limit: 1}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: t2
spec:
  deviceModelRef:
    name: thermo
  nodeName: edge-2
  properties:
    - name: temp
      desired:
        value: "20"
---
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: thermo
spec:
  protocol: modbus
  properties:
    - name: temp
      type: INT
      accessMode: ReadWrite
      minimum: "0"
      maximum: "100"
      unit: C
"#;

async fn joined(h: &TestHub, name: &str) -> NodeId {
    let mut n = NodeId::new(name);
    let token = h.token(Duration::from_secs(600)).await;
    let m = join(h, &mut n, &token, &[]).await;
    assert!(matches!(m, HubMsg::Joined { .. }), "{m:?}");
    n
}

fn key(name: &str) -> ObjKey {
    ObjKey {
        kind: Kind::Device,
        namespace: "default".into(),
        name: name.into(),
    }
}

fn reported(name: &str, prop: &str, value: &str, version: u64) -> TwinReport {
    TwinReport {
        key: key(name),
        properties: vec![PropertyReport {
            name: prop.into(),
            reported: Some(Versioned {
                value: value.into(),
                version,
                origin: Origin::Edge,
                timestamp: 1_700_000_000_000,
            }),
            desired: None,
        }],
        state: Some("online".into()),
    }
}

fn edit(name: &str, value: &str, base: u64, version: u64) -> TwinReport {
    TwinReport {
        key: key(name),
        properties: vec![PropertyReport {
            name: "temp".into(),
            reported: None,
            desired: Some(DesiredEdit {
                value: value.into(),
                base,
                version,
                timestamp: 1_700_000_000_000,
            }),
        }],
        state: None,
    }
}

/// Send a Twin message and wait for its TwinAck; returns the Device objects Synced
/// meanwhile (or until `want_syncs` of them arrived).
async fn twin_round(e: &mut Edge, seq: u64, devices: Vec<TwinReport>) -> Vec<Object> {
    e.send(&EdgeMsg::Twin { seq, devices }).await;
    let mut synced = Vec::new();
    loop {
        match e.recv_msg().await {
            HubMsg::TwinAck { seq: s } => {
                assert_eq!(s, seq);
                return synced;
            }
            HubMsg::Sync { changes, .. } => {
                for c in changes {
                    if let Change::Put { object } = c {
                        synced.push(*object);
                    }
                }
            }
            other => panic!("expected TwinAck {seq}, got {other:?}"),
        }
    }
}

/// The next Sync carrying a Put of Device `name` (bounded by the client's 20 s timeout).
async fn next_device_sync(e: &mut Edge, name: &str) -> Object {
    loop {
        if let HubMsg::Sync { changes, .. } = e.recv_msg().await {
            for c in changes {
                if let Change::Put { object } = c {
                    if object.kind == Kind::Device && object.metadata.name == name {
                        return *object;
                    }
                }
            }
        }
    }
}

fn desired_meta(o: &Object) -> (String, String, String) {
    let d = &o.spec["properties"][0]["desired"];
    (
        d["value"].as_str().unwrap_or("").into(),
        d["metadata"]["version"].as_str().unwrap_or("").into(),
        d["metadata"]["origin"].as_str().unwrap_or("").into(),
    )
}

#[tokio::test]
async fn twins_flow_through_an_edge_session() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let h = hub(&etcd, |_| {}).await;
    let conf = state_dir(&h).join("admin.conf");
    let n1 = joined(&h, "edge-1").await;
    let _n2 = joined(&h, "edge-2").await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("devices.yaml");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(MANIFEST.as_bytes())
        .unwrap();
    let out = fleet_ok(&conf, &["apply", "-f", file.to_str().unwrap()]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "devicemodel/thermo created",
            "device/t1 created",
            "device/t2 created"
        ],
        "{out}"
    );

    // The edge gets its device and the model (model first), not edge-2's device.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&EdgeMsg::Hello {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        name: "edge-1".into(),
        revision: 0,
        inventory: vec![],
        info: info(),
    })
    .await;
    assert!(matches!(e.recv_msg().await, HubMsg::Welcome { .. }));
    let HubMsg::Sync { changes, .. } = e.recv_msg().await else {
        panic!("expected the first Sync");
    };
    let puts: Vec<Object> = changes
        .into_iter()
        .filter_map(|c| match c {
            Change::Put { object } => Some(*object),
            _ => None,
        })
        .collect();
    let names: Vec<String> = puts.iter().map(|o| o.key().to_string()).collect();
    assert_eq!(
        names,
        ["devicemodels/default/thermo", "devices/default/t1"],
        "{names:?}"
    );
    assert_eq!(
        desired_meta(&puts[1]),
        ("30".into(), "1".into(), "cloud".into())
    );

    // A report: acked, stored, shown by the CLI.
    twin_round(&mut e, 1, vec![reported("t1", "temp", "28", 1_000)]).await;
    let d = device_json(&conf, "t1").await;
    assert_eq!(twin(&d, "temp")["reported"]["value"], "28", "{d}");
    assert_eq!(twin(&d, "temp")["reported"]["metadata"]["version"], "1000");
    assert_eq!(twin(&d, "temp")["observedDesired"]["value"], "30");
    assert_eq!(d["status"]["state"], "online");
    assert!(d["status"]["lastOnlineTime"].is_string(), "{d}");
    let status_key = "/t/status/devices/default/t1";
    let rev = kv.get(status_key, None).await.unwrap().kvs()[0].mod_revision();

    // The same report again (a resend after a reconnect), an older one, a value out of the
    // model's range, a property the model lacks: acked, nothing written.
    twin_round(&mut e, 2, vec![reported("t1", "temp", "28", 1_000)]).await;
    twin_round(&mut e, 3, vec![reported("t1", "temp", "27", 999)]).await;
    twin_round(&mut e, 4, vec![reported("t1", "temp", "999", 2_000)]).await;
    twin_round(&mut e, 5, vec![reported("t1", "pressure", "1", 2_000)]).await;
    // A value of the wrong type, a device that does not exist, a key that is not a Device:
    // acked, nothing written (no record made for them either).
    let obj_key = "/t/objects/devices/default/t1";
    let orev0 = kv.get(obj_key, None).await.unwrap().kvs()[0].mod_revision();
    twin_round(&mut e, 5, vec![reported("t1", "temp", "warm", 3_000)]).await;
    twin_round(&mut e, 5, vec![reported("t1", "temp", "12.5", 3_000)]).await;
    twin_round(&mut e, 5, vec![reported("ghost", "temp", "1", 3_000)]).await;
    let mut not_a_device = reported("t1", "temp", "2", 3_000);
    not_a_device.key.kind = Kind::Pod;
    twin_round(&mut e, 5, vec![not_a_device]).await;
    assert_eq!(
        kv.get(status_key, None).await.unwrap().kvs()[0].mod_revision(),
        rev
    );
    assert_eq!(
        kv.get(obj_key, None).await.unwrap().kvs()[0].mod_revision(),
        orev0
    );
    assert!(kv
        .get("/t/status/devices/default/ghost", None)
        .await
        .unwrap()
        .kvs()
        .is_empty());
    // Another node's device: acked but never stored.
    twin_round(&mut e, 6, vec![reported("t2", "temp", "21", 1_000)]).await;
    assert!(kv
        .get("/t/status/devices/default/t2", None)
        .await
        .unwrap()
        .kvs()
        .is_empty());

    // The cloud sets 40 (version 2): the edge is sent the new desired value.
    let out = fleet_ok(&conf, &["device", "set", "t1", "temp=40"]).await;
    assert!(out.contains("temp=40 (desired version 2)"), "{out}");
    let o = next_device_sync(&mut e, "t1").await;
    assert_eq!(desired_meta(&o), ("40".into(), "2".into(), "cloud".into()));

    // The edge had edited it once from version 1 while apart (version 2): a tie, the cloud
    // keeps 40 and the edge's 45 is recorded as lost.
    let synced = twin_round(&mut e, 7, vec![edit("t1", "45", 1, 2)]).await;
    assert!(synced.is_empty(), "{synced:?}");
    let d = device_json(&conf, "t1").await;
    let t = twin(&d, "temp");
    assert_eq!(t["observedDesired"]["value"], "40", "{d}");
    assert_eq!(t["conflicts"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(t["conflicts"][0]["kept"]["value"], "40");
    assert_eq!(t["conflicts"][0]["kept"]["origin"], "cloud");
    assert_eq!(t["conflicts"][0]["lost"]["value"], "45");
    // Resent: the conflict is not recorded twice.
    twin_round(&mut e, 8, vec![edit("t1", "45", 1, 2)]).await;
    let d = device_json(&conf, "t1").await;
    assert_eq!(twin(&d, "temp")["conflicts"].as_array().unwrap().len(), 1);

    // Edited three times from version 1 (version 4 > 2): the edge wins, the desired value
    // becomes 50 from the edge and Syncs back down; the cloud's 40 is recorded as lost.
    twin_round(&mut e, 9, vec![edit("t1", "50", 1, 4)]).await;
    let d = device_json(&conf, "t1").await;
    let t = twin(&d, "temp");
    assert_eq!(t["observedDesired"]["value"], "50", "{d}");
    assert_eq!(t["observedDesired"]["metadata"]["version"], "4");
    assert_eq!(t["observedDesired"]["metadata"]["origin"], "edge");
    let c = t["conflicts"].as_array().unwrap();
    assert_eq!(c.len(), 2, "{d}");
    assert_eq!(
        (
            c[1]["kept"]["value"].as_str(),
            c[1]["lost"]["value"].as_str()
        ),
        (Some("50"), Some("40"))
    );
    let o = next_device_sync(&mut e, "t1").await;
    assert_eq!(desired_meta(&o), ("50".into(), "4".into(), "edge".into()));
    // Resent: Same, nothing written.
    let orev = kv
        .get("/t/objects/devices/default/t1", None)
        .await
        .unwrap()
        .kvs()[0]
        .mod_revision();
    twin_round(&mut e, 10, vec![edit("t1", "50", 1, 4)]).await;
    assert_eq!(
        kv.get("/t/objects/devices/default/t1", None)
            .await
            .unwrap()
            .kvs()[0]
            .mod_revision(),
        orev
    );
    // An edge edit without a cloud change in between is accepted (ReadWrite, in range).
    twin_round(&mut e, 11, vec![edit("t1", "55", 4, 5)]).await;
    let d = device_json(&conf, "t1").await;
    assert_eq!(twin(&d, "temp")["observedDesired"]["value"], "55");
    assert_eq!(twin(&d, "temp")["conflicts"].as_array().unwrap().len(), 2);
    // An out-of-range edge edit is dropped.
    twin_round(&mut e, 12, vec![edit("t1", "500", 5, 6)]).await;
    let d = device_json(&conf, "t1").await;
    assert_eq!(twin(&d, "temp")["observedDesired"]["value"], "55");

    // The table and describe.
    let out = fleet_ok(&conf, &["get", "dev"]).await;
    assert!(out.contains("NAMESPACE") && out.contains("TWINS"), "{out}");
    let row = out.lines().find(|l| l.contains("t1")).unwrap();
    assert!(
        row.contains("edge-1") && row.contains("thermo") && row.contains("online"),
        "{out}"
    );
    assert!(row.contains("temp=55/28!"), "{out}");
    let out = fleet_ok(&conf, &["describe", "device", "t1"]).await;
    assert!(out.contains("conflict at"), "{out}");
    assert!(out.contains("\"55\" (version 5, edge"), "{out}");
    let out = fleet_ok(&conf, &["get", "dm"]).await;
    assert!(out.contains("thermo"), "{out}");
    // Bad values through the CLI are refused by the hub.
    let (code, _, err) = fleet(&conf, &["device", "set", "t1", "temp=hot"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("temp"), "{err}");

    // delete device: the object and its twin record go; the edge is told to drop it.
    let out = fleet_ok(&conf, &["delete", "device", "t1"]).await;
    assert!(out.contains("device/t1 deleted"), "{out}");
    assert!(kv.get(status_key, None).await.unwrap().kvs().is_empty());
    loop {
        if let HubMsg::Sync { changes, .. } = e.recv_msg().await {
            if changes.iter().any(
                |c| matches!(c, Change::Delete { key, .. } if key.kind == Kind::Device && key.name == "t1"),
            ) {
                break;
            }
        }
    }
}
