//! The fleet API's DeviceModels and Devices against a real etcd: CRUD, every validation
//! error (nothing stored after a refusal), desired versions bumped on apply and by the twin
//! endpoint, the 409s, and the delete cascade to `status/devices`.
#![allow(clippy::unwrap_used)]

mod api_support;

use api_support::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const P: &str = "/t/";
const G: &str = "/apis/devices.kubeedge.io/v1beta1";

fn model(name: &str) -> Value {
    json!({
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
        "metadata": {"name": name},
        "spec": {"protocol": "modbus", "properties": [
            {"name": "temp", "type": "INT", "accessMode": "ReadWrite", "minimum": "0", "maximum": "100", "unit": "C"},
            {"name": "mode", "type": "STRING"},
            {"name": "humidity", "type": "FLOAT", "accessMode": "ReadOnly"}
        ]}
    })
}

fn device(name: &str, node: &str, temp: &str) -> Value {
    json!({
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
        "metadata": {"name": name},
        "spec": {
            "deviceModelRef": {"name": "thermo"},
            "nodeName": node,
            "protocol": {"protocolName": "modbus", "configData": {"ip": "127.0.0.1", "port": 1502}},
            "properties": [
                {"name": "temp", "desired": {"value": temp, "metadata": {"version": "42", "origin": "edge"}},
                 "visitors": {"protocolName": "modbus", "configData": {"register": "HoldingRegister", "offset": 2}}},
                {"name": "humidity"}
            ]
        }
    })
}

fn desired<'a>(d: &'a Value, prop: &str) -> &'a Value {
    d["spec"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == prop)
        .map(|p| &p["desired"])
        .unwrap()
}

async fn count(kv: &mut etcd_client::Client, prefix: &str) -> usize {
    kv.get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .unwrap()
        .kvs()
        .len()
}

#[tokio::test]
async fn devices_crud_validation_versions_and_cascade() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, url, t) = hub_api(&etcd, P, dir.path()).await;
    let t = Some(t.as_str());
    let ns = format!("{url}{G}/namespaces/default");

    // A device before its model: 400 naming deviceModelRef, nothing stored.
    let (code, _, v) = call(
        Method::PUT,
        &format!("{ns}/devices/t1"),
        t,
        Some(device("t1", "edge-1", "30")),
    )
    .await;
    assert_status(code, &v, 400, "BadRequest");
    assert!(
        v["message"].as_str().unwrap().contains("deviceModelRef"),
        "{v}"
    );

    // Model validation: repeated property, unknown type, bad bound.
    let mut bad = model("thermo");
    bad["spec"]["properties"][1]["name"] = json!("temp");
    let (code, _, v) = call(Method::POST, &format!("{ns}/devicemodels"), t, Some(bad)).await;
    assert_status(code, &v, 400, "BadRequest");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("spec.properties[1]"),
        "{v}"
    );
    let mut bad = model("thermo");
    bad["spec"]["properties"][0]["type"] = json!("QUATERNION");
    let (code, _, v) = call(Method::POST, &format!("{ns}/devicemodels"), t, Some(bad)).await;
    assert_status(code, &v, 400, "BadRequest");
    let mut bad = model("thermo");
    bad["spec"]["properties"][0]["maximum"] = json!("lots");
    let (code, _, v) = call(Method::POST, &format!("{ns}/devicemodels"), t, Some(bad)).await;
    assert_status(code, &v, 400, "BadRequest");
    assert!(v["message"].as_str().unwrap().contains("maximum"), "{v}");
    assert_eq!(count(&mut kv, "/t/objects/").await, 0);

    let (code, h, v) = call(
        Method::POST,
        &format!("{ns}/devicemodels"),
        t,
        Some(model("thermo")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    assert_eq!(h["barge-result"], "created");
    let (code, _, v) = call(
        Method::POST,
        &format!("{ns}/devicemodels"),
        t,
        Some(model("thermo")),
    )
    .await;
    assert_status(code, &v, 409, "AlreadyExists");

    // Device validation errors, each naming its field; nothing stored.
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut d = device("t1", "edge-1", "30");
                d["spec"].as_object_mut().unwrap().remove("nodeName");
                d
            },
            "spec.nodeName",
        ),
        (device("t1", "edge-1", "300"), "maximum"),
        (device("t1", "edge-1", "warm"), "temp"),
        (
            {
                let mut d = device("t1", "edge-1", "30");
                d["spec"]["properties"][1]["desired"] = json!({"value": "50"});
                d
            },
            "ReadOnly",
        ),
        (
            {
                let mut d = device("t1", "edge-1", "30");
                d["spec"]["properties"][1]["name"] = json!("pressure");
                d
            },
            "pressure",
        ),
        (
            {
                let mut d = device("t1", "edge-1", "30");
                d["spec"]["properties"][1]["name"] = json!("temp");
                d
            },
            "repeats",
        ),
        (
            {
                let mut d = device("t1", "edge-1", "30");
                d["spec"]["properties"] = json!("nope");
                d
            },
            "spec",
        ),
        (
            {
                let mut d = device("t1", "edge-1", "30");
                d["spec"]["deviceModelRef"]["name"] = json!("other");
                d
            },
            "DeviceModel default/other not found",
        ),
    ];
    for (body, needle) in cases {
        let (code, _, v) = call(Method::PUT, &format!("{ns}/devices/t1"), t, Some(body)).await;
        assert_status(code, &v, 400, "BadRequest");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
    assert_eq!(count(&mut kv, "/t/objects/devices/").await, 0);

    // Create: the desired value is stamped version 1 from the cloud; client metadata ignored.
    let (code, h, v) = call(
        Method::PUT,
        &format!("{ns}/devices/t1"),
        t,
        Some(device("t1", "edge-1", "30")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    assert_eq!(h["barge-result"], "created");
    let d = desired(&v, "temp");
    assert_eq!(
        (
            d["value"].as_str(),
            d["metadata"]["version"].as_str(),
            d["metadata"]["origin"].as_str()
        ),
        (Some("30"), Some("1"), Some("cloud"))
    );
    let (raw, rev1) = etcd_get(&mut kv, "/t/objects/devices/default/t1")
        .await
        .unwrap();
    let stored: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(desired(&stored, "temp")["metadata"]["version"], "1");
    assert!(stored.get("status").is_none());

    // Same apply: unchanged, same revision, same version.
    let (_, h, _) = call(
        Method::PUT,
        &format!("{ns}/devices/t1"),
        t,
        Some(device("t1", "edge-1", "30")),
    )
    .await;
    assert_eq!(h["barge-result"], "unchanged");
    assert_eq!(
        etcd_get(&mut kv, "/t/objects/devices/default/t1")
            .await
            .unwrap()
            .1,
        rev1
    );
    // A new value: version 2.
    let (_, h, v) = call(
        Method::PUT,
        &format!("{ns}/devices/t1"),
        t,
        Some(device("t1", "edge-1", "35")),
    )
    .await;
    assert_eq!(h["barge-result"], "configured");
    assert_eq!(desired(&v, "temp")["metadata"]["version"], "2");

    // The twin endpoint: bad value / ReadOnly -> 400, unknown property or device -> 404,
    // nothing changed by any of them.
    let twin = format!("{ns}/devices/t1/twin");
    let rev2 = etcd_get(&mut kv, "/t/objects/devices/default/t1")
        .await
        .unwrap()
        .1;
    for (body, want, reason) in [
        (json!({"desired": {"temp": "101"}}), 400, "BadRequest"),
        (
            json!({"desired": {"temp": "40", "mode": {"x": 1}}}),
            400,
            "BadRequest",
        ),
        (
            json!({"desired": {"temp": "40", "humidity": "3"}}),
            400,
            "BadRequest",
        ),
        (
            json!({"desired": {"temp": "40", "pressure": "3"}}),
            404,
            "NotFound",
        ),
        (json!({"wanted": {}}), 400, "BadRequest"),
    ] {
        let (code, _, v) = call(Method::POST, &twin, t, Some(body)).await;
        assert_status(code, &v, want, reason);
    }
    let (code, _, v) = call(
        Method::POST,
        &format!("{ns}/devices/nope/twin"),
        t,
        Some(json!({"desired": {"temp": "1"}})),
    )
    .await;
    assert_status(code, &v, 404, "NotFound");
    assert_eq!(
        etcd_get(&mut kv, "/t/objects/devices/default/t1")
            .await
            .unwrap()
            .1,
        rev2
    );

    // Set two values in one call: temp 2 -> 3, mode (not listed by the device) new at 1.
    let (code, _, v) = call(
        Method::POST,
        &twin,
        t,
        Some(json!({"desired": {"temp": 40, "mode": "eco"}})),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(desired(&v, "temp")["value"], "40");
    assert_eq!(desired(&v, "temp")["metadata"]["version"], "3");
    assert_eq!(desired(&v, "mode")["metadata"]["version"], "1");
    let tw = v["status"]["twins"].as_array().unwrap();
    let temp = tw.iter().find(|x| x["propertyName"] == "temp").unwrap();
    assert_eq!(temp["observedDesired"]["value"], "40");
    assert!(temp.get("reported").is_none());
    // The same values again: nothing written.
    let rev3 = etcd_get(&mut kv, "/t/objects/devices/default/t1")
        .await
        .unwrap()
        .1;
    let (code, _, _) = call(
        Method::POST,
        &twin,
        t,
        Some(json!({"desired": {"temp": "40"}})),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        etcd_get(&mut kv, "/t/objects/devices/default/t1")
            .await
            .unwrap()
            .1,
        rev3
    );
    // Apply keeps the twin-set value's version when the value is the same.
    let mut again = device("t1", "edge-1", "40");
    again["spec"]["properties"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "mode", "desired": {"value": "eco"}}));
    let (_, _, v) = call(Method::PUT, &format!("{ns}/devices/t1"), t, Some(again)).await;
    assert_eq!(desired(&v, "temp")["metadata"]["version"], "3");
    assert_eq!(desired(&v, "mode")["metadata"]["version"], "1");

    // Same name on the same node in another namespace: 409; another node: fine.
    let other_ns = format!("{url}{G}/namespaces/prod");
    call(
        Method::POST,
        &format!("{other_ns}/devicemodels"),
        t,
        Some(model("thermo")),
    )
    .await;
    let (code, _, v) = call(
        Method::PUT,
        &format!("{other_ns}/devices/t1"),
        t,
        Some(device("t1", "edge-1", "30")),
    )
    .await;
    assert_status(code, &v, 409, "Conflict");
    assert!(v["message"].as_str().unwrap().contains("edge-1"), "{v}");
    assert!(etcd_get(&mut kv, "/t/objects/devices/prod/t1")
        .await
        .is_none());
    let (code, _, v) = call(
        Method::PUT,
        &format!("{other_ns}/devices/t1"),
        t,
        Some(device("t1", "edge-2", "30")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");

    // Lists: all namespaces and one; Devices carry status.
    let (_, _, v) = call(Method::GET, &format!("{url}{G}/devices"), t, None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert!(v["items"][0]["status"]["twins"].is_array(), "{v}");
    let (_, _, v) = call(Method::GET, &format!("{ns}/devicemodels"), t, None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    // A reported value in status/devices shows in GET.
    etcd_put(&mut kv, "/t/status/devices/default/t1", &json!({
        "properties": {"temp": {"reported": {"value": "28", "version": 1700000000000u64, "origin": "edge", "timestamp": 5}}},
        "state": "online", "lastOnline": "2026-12-02T10:00:00Z"
    })).await;
    let (_, _, v) = call(Method::GET, &format!("{ns}/devices/t1"), t, None).await;
    let temp = v["status"]["twins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["propertyName"] == "temp")
        .unwrap()
        .clone();
    assert_eq!(temp["reported"]["value"], "28");
    assert_eq!(temp["reported"]["metadata"]["version"], "1700000000000");
    assert_eq!(v["status"]["state"], "online");
    assert_eq!(v["status"]["lastOnlineTime"], "2026-12-02T10:00:00Z");

    // A model change that a device would not fit: 409. Deleting a used model: 409.
    let mut narrow = model("thermo");
    narrow["spec"]["properties"][0]["maximum"] = json!("20");
    let (code, _, v) = call(
        Method::PUT,
        &format!("{ns}/devicemodels/thermo"),
        t,
        Some(narrow),
    )
    .await;
    assert_status(code, &v, 409, "Conflict");
    assert!(v["message"].as_str().unwrap().contains("t1"), "{v}");
    let (code, _, v) = call(
        Method::DELETE,
        &format!("{ns}/devicemodels/thermo"),
        t,
        None,
    )
    .await;
    assert_status(code, &v, 409, "Conflict");
    assert!(etcd_get(&mut kv, "/t/objects/devicemodels/default/thermo")
        .await
        .is_some());

    // Deleting the device removes its twin record too; then the model can go.
    let (code, _, v) = call(Method::DELETE, &format!("{ns}/devices/t1"), t, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(etcd_get(&mut kv, "/t/objects/devices/default/t1")
        .await
        .is_none());
    assert!(etcd_get(&mut kv, "/t/status/devices/default/t1")
        .await
        .is_none());
    let (code, _, v) = call(Method::GET, &format!("{ns}/devices/t1"), t, None).await;
    assert_status(code, &v, 404, "NotFound");
    let (code, _, v) = call(
        Method::DELETE,
        &format!("{ns}/devicemodels/thermo"),
        t,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}{G}/namespaces/default/gadgets"),
        t,
        None,
    )
    .await;
    assert_status(code, &v, 404, "NotFound");
}
