//! The fleet HTTP API against a real etcd, through a real HTTP client.
#![allow(clippy::unwrap_used)]

mod api_support;

use std::os::unix::fs::PermissionsExt;

use api_support::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const P: &str = "/t/";

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"nodeSelector": {"site": "a"}, "containers": [{"name": "c", "image": image}]}
            }
        }
    })
}

#[tokio::test]
async fn requests_without_the_admin_token_get_401_status() {
    let etcd = Etcd::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, url, token) = hub_api(&etcd, P, dir.path()).await;
    assert_eq!(token.len(), 64);
    let (code, _, v) = call(Method::GET, &format!("{url}/api/v1/nodes"), None, None).await;
    assert_status(code, &v, 401, "Unauthorized");
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/nodes"),
        Some("not-it"),
        None,
    )
    .await;
    assert_status(code, &v, 401, "Unauthorized");
    // Same length, one character off.
    let mut near = token.clone().into_bytes();
    near[10] = if near[10] == b'a' { b'b' } else { b'a' };
    let near = String::from_utf8(near).unwrap();
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/nodes"),
        Some(&near),
        None,
    )
    .await;
    assert_status(code, &v, 401, "Unauthorized");
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/nodes"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], "List");
    let (code, _, v) = call(Method::GET, &format!("{url}/healthz"), None, None).await;
    assert_eq!((code, v), (StatusCode::OK, json!("ok")));
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/nope/x/y/z"),
        Some(&token),
        None,
    )
    .await;
    assert_status(code, &v, 404, "NotFound");
}

#[tokio::test]
async fn objects_are_created_replaced_listed_and_deleted_in_etcd() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, url, t) = hub_api(&etcd, P, dir.path()).await;
    let t = Some(t.as_str());
    let item = format!("{url}/apis/apps/v1/namespaces/default/deployments/web");

    let (code, h, v) = call(Method::PUT, &item, t, Some(deployment(2, "busybox"))).await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    assert_eq!(h["barge-result"], "created");
    let uid = v["metadata"]["uid"].as_str().unwrap().to_string();
    let created = v["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(uid.len(), 36);
    assert_eq!(v["metadata"]["namespace"], "default");
    let (raw, rev) = etcd_get(&mut kv, "/t/objects/deployments/default/web")
        .await
        .unwrap();
    assert_eq!(v["metadata"]["resourceVersion"], rev.to_string());
    let stored: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(stored["spec"]["replicas"], 2);
    assert_eq!(stored["metadata"]["uid"], uid.as_str());
    assert!(stored.get("status").is_none());

    // Same object again: nothing written, same revision.
    let (code, h, v) = call(Method::PUT, &item, t, Some(deployment(2, "busybox"))).await;
    assert_eq!(
        (code, &h["barge-result"]),
        (StatusCode::OK, &"unchanged".parse().unwrap())
    );
    assert_eq!(v["metadata"]["resourceVersion"], rev.to_string());
    assert_eq!(
        etcd_get(&mut kv, "/t/objects/deployments/default/web")
            .await
            .unwrap()
            .1,
        rev
    );

    // Changed: replaced, uid and creationTimestamp kept, new revision.
    let (code, h, v) = call(Method::PUT, &item, t, Some(deployment(3, "busybox:1.36"))).await;
    assert_eq!(
        (code, &h["barge-result"]),
        (StatusCode::OK, &"configured".parse().unwrap())
    );
    let (_, rev2) = etcd_get(&mut kv, "/t/objects/deployments/default/web")
        .await
        .unwrap();
    assert!(rev2 > rev);
    assert_eq!(v["metadata"]["resourceVersion"], rev2.to_string());
    assert_eq!(v["metadata"]["uid"], uid.as_str());
    assert_eq!(v["metadata"]["creationTimestamp"], created.as_str());
    let (_, _, g) = call(Method::GET, &item, t, None).await;
    assert_eq!(g["spec"]["replicas"], 3);
    assert_eq!(g["metadata"]["resourceVersion"], rev2.to_string());

    // POST is create-only.
    let coll = format!("{url}/apis/apps/v1/namespaces/default/deployments");
    let (code, _, v) = call(Method::POST, &coll, t, Some(deployment(1, "x"))).await;
    assert_status(code, &v, 409, "AlreadyExists");
    let mut other = deployment(1, "x");
    other["metadata"]["name"] = json!("api");
    other["metadata"]["namespace"] = json!("prod");
    let (code, _, v) = call(
        Method::POST,
        &format!("{url}/apis/apps/v1/namespaces/prod/deployments"),
        t,
        Some(other),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");

    // Lists: one namespace, every namespace.
    let (_, _, l) = call(Method::GET, &coll, t, None).await;
    let names: Vec<_> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("web")]);
    assert_eq!(l["kind"], "List");
    let (_, _, l) = call(
        Method::GET,
        &format!("{url}/apis/apps/v1/deployments"),
        t,
        None,
    )
    .await;
    let names: Vec<_> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("web"), json!("api")]);

    // Delete: gone from etcd, then 404.
    let (code, _, v) = call(Method::DELETE, &item, t, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["metadata"]["name"], "web");
    assert!(etcd_get(&mut kv, "/t/objects/deployments/default/web")
        .await
        .is_none());
    let (code, _, v) = call(Method::GET, &item, t, None).await;
    assert_status(code, &v, 404, "NotFound");
    let (code, _, v) = call(Method::DELETE, &item, t, None).await;
    assert_status(code, &v, 404, "NotFound");
}

#[tokio::test]
async fn secrets_fold_string_data_and_bad_objects_are_refused() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, url, t) = hub_api(&etcd, P, dir.path()).await;
    let t = Some(t.as_str());
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
        "stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}});
    let (code, _, v) = call(
        Method::PUT,
        &format!("{url}/api/v1/namespaces/default/secrets/db"),
        t,
        Some(secret),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let (raw, _) = etcd_get(&mut kv, "/t/objects/secrets/default/db")
        .await
        .unwrap();
    let stored: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        stored["data"],
        json!({"password": "aHVudGVyMg==", "user": "YWRtaW4="})
    );
    assert!(stored.get("stringData").is_none());

    let dep = |f: &dyn Fn(&mut Value)| {
        let mut d = deployment(1, "busybox");
        f(&mut d);
        d
    };
    let bad: Vec<(&str, Value, &str)> = vec![
        (
            "deployments/web",
            dep(&|d| d["spec"]["replicas"] = json!(-1)),
            "replicas",
        ),
        (
            "deployments/web",
            dep(&|d| d["spec"]["selector"]["matchLabels"] = json!({"app": "db"})),
            "does not match",
        ),
        (
            "deployments/web",
            dep(&|d| d["spec"]["selector"] = json!({})),
            "matchLabels is required",
        ),
        (
            "deployments/web",
            dep(&|d| d["metadata"]["namespace"] = json!("prod")),
            "namespace",
        ),
        ("deployments/other", dep(&|_| {}), "URL"),
        (
            "deployments/Web",
            dep(&|d| d["metadata"]["name"] = json!("Web")),
            "DNS-1123",
        ),
        (
            "deployments/web",
            dep(&|d| d["spec"]["template"]["spec"]["containers"] = json!([])),
            "container",
        ),
        ("daemonsets/web", dep(&|_| {}), "kind"),
    ];
    for (path, body, needle) in bad {
        let (code, _, v) = call(
            Method::PUT,
            &format!("{url}/apis/apps/v1/namespaces/default/{path}"),
            t,
            Some(body),
        )
        .await;
        assert_status(code, &v, 400, "BadRequest");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{path}: {v}"
        );
    }
    let (code, _, v) = call(
        Method::PUT,
        &format!("{url}/api/v1/namespaces/default/secrets/s2"),
        t,
        Some(json!({"kind": "Secret", "metadata": {"name": "s2"}, "data": {"k": "not base64!"}})),
    )
    .await;
    assert_status(code, &v, 400, "BadRequest");
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/namespaces/default/services"),
        t,
        None,
    )
    .await;
    assert_status(code, &v, 404, "NotFound");
    let (code, _, v) = call(
        Method::PUT,
        &format!("{url}/api/v1/namespaces/default/configmaps/c"),
        t,
        Some(json!("not an object")),
    )
    .await;
    assert_status(code, &v, 400, "BadRequest");
    // Nothing half-written.
    let (items, _) = {
        let r = kv
            .get(
                "/t/objects/",
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .unwrap();
        (r.kvs().len(), ())
    };
    assert_eq!(items, 1, "only the secret is stored");
}

async fn put_node(kv: &mut etcd_client::Client, name: &str, labels: Value) {
    etcd_put(
        kv,
        &format!("/t/objects/nodes//{name}"),
        &json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "creationTimestamp": "2026-01-01T00:00:00Z"}}),
    )
    .await;
}

fn ready(v: &Value) -> String {
    let c = v["status"]["conditions"].as_array().unwrap();
    let r = c.iter().find(|c| c["type"] == "Ready").unwrap();
    r["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn nodes_show_readiness_and_can_be_labeled_drained_revoked_and_deleted() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, url, t) = hub_api(&etcd, P, dir.path()).await;
    let t = Some(t.as_str());
    put_node(&mut kv, "n1", json!({"site": "a"})).await;
    put_node(&mut kv, "n2", json!({})).await;
    let node = |n: &str| format!("{url}/api/v1/nodes/{n}");

    // Never connected.
    let (_, _, v) = call(Method::GET, &node("n1"), t, None).await;
    assert_eq!(ready(&v), "Unknown");
    // Heard from just now; long ago; with a live session.
    let now = barge_util::time::now().0;
    let rec = |secs: i64| {
        json!({"info": {"architecture": "x86_64", "os": "linux", "kernelVersion": "6.18",
        "agentVersion": "0.1.0", "cpus": 2, "memoryBytes": 1}, "usage": {"cpuMillis": 5, "memoryUsedBytes": 7,
        "pods": 1, "containersRunning": 1}, "lastSeen": barge_util::time::rfc3339_secs(secs), "ackedRevision": 12})
    };
    etcd_put(&mut kv, "/t/status/nodes/n1", &rec(now)).await;
    let (_, _, v) = call(Method::GET, &node("n1"), t, None).await;
    assert_eq!(ready(&v), "True", "{v}");
    assert_eq!(v["status"]["nodeInfo"]["kernelVersion"], "6.18");
    assert_eq!(v["status"]["usage"]["pods"], 1);
    assert_eq!(v["status"]["ackedRevision"], 12);
    etcd_put(&mut kv, "/t/status/nodes/n1", &rec(now - 600)).await;
    let (_, _, v) = call(Method::GET, &node("n1"), t, None).await;
    assert_eq!(ready(&v), "False", "{v}");
    etcd_put(
        &mut kv,
        "/t/conns/n1",
        &json!({"hub": "h1", "since": "2026-01-01T00:00:00Z"}),
    )
    .await;
    let (_, _, l) = call(Method::GET, &format!("{url}/api/v1/nodes"), t, None).await;
    let items = l["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(ready(&items[0]), "True");
    assert_eq!(ready(&items[1]), "Unknown");

    // Labels: set one, remove one; other fields refused.
    let (code, _, v) = call(
        Method::PATCH,
        &node("n1"),
        t,
        Some(json!({"metadata": {"labels": {"site": null, "gpu": "yes"}}})),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["metadata"]["labels"], json!({"gpu": "yes"}));
    let (raw, _) = etcd_get(&mut kv, "/t/objects/nodes//n1").await.unwrap();
    let stored: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(stored["metadata"]["labels"], json!({"gpu": "yes"}));
    assert!(
        stored.get("status").is_none(),
        "status is derived, never stored"
    );
    let (code, _, v) = call(
        Method::PATCH,
        &node("n1"),
        t,
        Some(json!({"metadata": {"name": "x"}})),
    )
    .await;
    assert_status(code, &v, 400, "BadRequest");
    let (code, _, v) = call(Method::PATCH, &node("nope"), t, Some(json!({}))).await;
    assert_status(code, &v, 404, "NotFound");

    // Drain: unschedulable + drained mark; uncordon clears both.
    let (code, _, v) = call(Method::POST, &format!("{}/drain", node("n1")), t, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (raw, _) = etcd_get(&mut kv, "/t/objects/nodes//n1").await.unwrap();
    let stored: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(stored["spec"]["unschedulable"], true);
    assert!(stored["metadata"]["annotations"]["barge.io/drained"].is_string());
    let (_, _, v) = call(
        Method::PATCH,
        &node("n1"),
        t,
        Some(json!({"spec": {"unschedulable": false}})),
    )
    .await;
    assert!(v["spec"].get("unschedulable").is_none(), "{v}");
    assert!(v["metadata"].get("annotations").is_none(), "{v}");

    // Revoke: revoked/<node>, shown NotReady.
    let (code, _, v) = call(Method::POST, &format!("{}/revoke", node("n1")), t, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(etcd_get(&mut kv, "/t/revoked/n1").await.is_some());
    let (_, _, v) = call(Method::GET, &node("n1"), t, None).await;
    assert_eq!(ready(&v), "False");
    let (code, _, v) = call(Method::POST, &format!("{}/revoke", node("ghost")), t, None).await;
    assert_status(code, &v, 404, "NotFound");
    assert!(etcd_get(&mut kv, "/t/revoked/ghost").await.is_none());

    // Delete: object, node status and its pods' statuses.
    etcd_put(
        &mut kv,
        "/t/status/pods/n1/default/p",
        &json!({"phase": "Running", "observedAt": ""}),
    )
    .await;
    etcd_put(
        &mut kv,
        "/t/status/pods/n2/default/q",
        &json!({"phase": "Running", "observedAt": ""}),
    )
    .await;
    let (code, _, v) = call(Method::DELETE, &node("n1"), t, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(etcd_get(&mut kv, "/t/objects/nodes//n1").await.is_none());
    assert!(etcd_get(&mut kv, "/t/status/nodes/n1").await.is_none());
    assert!(etcd_get(&mut kv, "/t/status/pods/n1/default/p")
        .await
        .is_none());
    assert!(etcd_get(&mut kv, "/t/status/pods/n2/default/q")
        .await
        .is_some());
    let (code, _, v) = call(Method::GET, &node("n1"), t, None).await;
    assert_status(code, &v, 404, "NotFound");
}

#[tokio::test]
async fn admin_conf_is_made_once_per_fleet() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let h1 = start_hub(&etcd, P, d1.path(), None).await;
    let f1 = d1.path().join("admin.conf");
    assert_eq!(
        std::fs::metadata(&f1).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let c1: Value = serde_json::from_slice(&std::fs::read(&f1).unwrap()).unwrap();
    let token = c1["token"].as_str().unwrap().to_string();
    assert_eq!(c1["server"], h1.api_url.as_str());
    assert!(c1["ca"].is_null());
    let (hash, _) = etcd_get(&mut kv, "/t/pki/admin-token").await.unwrap();
    assert_eq!(
        String::from_utf8(hash).unwrap(),
        barge_edge_proto::token::sha256_hex(token.as_bytes())
    );
    // Again (a restart): the same token is kept.
    barge_hub::admin::ensure(&h1).await.unwrap();
    let again: Value = serde_json::from_slice(&std::fs::read(&f1).unwrap()).unwrap();
    assert_eq!(again["token"], token.as_str());
    // A second hub of the fleet with a fresh state dir: no token to give...
    let h2 = start_hub(&etcd, P, d2.path(), Some(&d1.path().join("hub.key"))).await;
    let f2 = d2.path().join("admin.conf");
    let c2: Value = serde_json::from_slice(&std::fs::read(&f2).unwrap()).unwrap();
    assert!(c2["token"].is_null(), "{c2}");
    assert_eq!(c2["server"], h2.api_url.as_str());
    assert_eq!(
        std::fs::metadata(&f2).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // ...and its API takes the first hub's token (the hash is shared through etcd).
    let (code, _, v) = call(
        Method::GET,
        &format!("{}/api/v1/nodes", h2.api_url),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn logs_and_exec_of_an_unconnected_node_fail_with_status() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, url, t) = hub_api(&etcd, P, dir.path()).await;
    let t = Some(t.as_str());
    put_node(&mut kv, "n1", json!({})).await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}});
    let (code, _, v) = call(
        Method::PUT,
        &format!("{url}/api/v1/namespaces/default/pods/p"),
        t,
        Some(pod),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    // Not upgraded: 400.
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/nodes/n1/pods/default/p/exec?command=true"),
        t,
        None,
    )
    .await;
    assert_status(code, &v, 400, "BadRequest");
    // A pod that is not on that node: 404.
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/nodes/n1/pods/default/other/log"),
        t,
        None,
    )
    .await;
    assert_status(code, &v, 404, "NotFound");
    // No session anywhere: 503.
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/nodes/n1/pods/default/p/log?tailLines=5"),
        t,
        None,
    )
    .await;
    assert_status(code, &v, 503, "ServiceUnavailable");
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/nodes/n1/pods/default/p/log?tailLines=x"),
        t,
        None,
    )
    .await;
    assert_status(code, &v, 400, "BadRequest");
}

/// Poll `f` until it returns Some (bounded: 20 s), for what the controller does on its own.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn by_name(list: &Value) -> std::collections::BTreeMap<String, Value> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn pods_list_every_nodes_expanded_view_with_reported_status() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, url, t) = hub_api(&etcd, P, dir.path()).await;
    let t = Some(t.as_str());
    // n1 (site=a) has a session; n2 (site=b) was last heard from long ago.
    put_node(&mut kv, "n1", json!({"site": "a"})).await;
    put_node(&mut kv, "n2", json!({"site": "b"})).await;
    etcd_put(
        &mut kv,
        "/t/conns/n1",
        &json!({"hub": "h", "since": "2026-01-01T00:00:00Z"}),
    )
    .await;
    let old = barge_util::time::rfc3339_secs(barge_util::time::now().0 - 3600);
    etcd_put(&mut kv, "/t/status/nodes/n2", &json!({"info": {"architecture": "", "os": "", "kernelVersion": "",
        "agentVersion": "", "cpus": 1, "memoryBytes": 1}, "usage": {"cpuMillis": 0, "memoryUsedBytes": 0,
        "pods": 0, "containersRunning": 0}, "lastSeen": old, "ackedRevision": 0})).await;

    let put = |path: String, body: Value| async move {
        let (code, _, v) = call(Method::PUT, &path, t, Some(body)).await;
        assert!(code.is_success(), "{v}");
    };
    put(
        format!("{url}/apis/apps/v1/namespaces/default/deployments/web"),
        deployment(2, "busybox"),
    )
    .await;
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}},
        "spec": {"nodeSelector": {"site": "b"}, "containers": [{"name": "c", "image": "busybox"}]}}}});
    put(
        format!("{url}/apis/apps/v1/namespaces/default/daemonsets/agent"),
        ds,
    )
    .await;
    let pod = |name: &str, node: Option<&str>| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        p
    };
    put(
        format!("{url}/api/v1/namespaces/default/pods/bare"),
        pod("bare", None),
    )
    .await;
    put(
        format!("{url}/api/v1/namespaces/default/pods/pinned"),
        pod("pinned", Some("n2")),
    )
    .await;
    etcd_put(&mut kv, "/t/status/pods/n1/default/web-n1-0", &json!({"phase": "Running", "observedRevision": 1,
        "containerStatuses": [{"name": "c", "image": "busybox", "state": "running", "ready": true, "restartCount": 2}],
        "observedAt": "2026-01-01T00:00:00Z"})).await;

    // The controller places web's two replicas on n1 (the only site=a node).
    let pods = eventually("web's replicas in /api/v1/pods", || async {
        let (_, _, l) = call(Method::GET, &format!("{url}/api/v1/pods"), t, None).await;
        let m = by_name(&l);
        m.contains_key("web-n1-1").then_some(m)
    })
    .await;
    let names: Vec<&str> = pods.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["agent-n2", "bare", "pinned", "web-n1-0", "web-n1-1"]
    );
    let phase = |n: &str| pods[n]["status"]["phase"].as_str().unwrap().to_string();
    let node = |n: &str| pods[n]["spec"]["nodeName"].as_str().map(str::to_string);
    assert_eq!(
        (phase("web-n1-0"), node("web-n1-0")),
        ("Running".into(), Some("n1".into()))
    );
    assert_eq!(
        pods["web-n1-0"]["status"]["containerStatuses"][0]["restartCount"],
        2
    );
    assert_eq!(
        pods["web-n1-0"]["metadata"]["labels"]["barge.io/owner"],
        "Deployment/web"
    );
    assert_eq!(
        (phase("web-n1-1"), node("web-n1-1")),
        ("Pending".into(), Some("n1".into()))
    );
    // n2 is NotReady: its pods are Unknown.
    assert_eq!(
        (phase("agent-n2"), node("agent-n2")),
        ("Unknown".into(), Some("n2".into()))
    );
    assert_eq!(
        (phase("pinned"), node("pinned")),
        ("Unknown".into(), Some("n2".into()))
    );
    assert_eq!((phase("bare"), node("bare")), ("Pending".into(), None));

    // One pod, and one namespace.
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/namespaces/default/pods/web-n1-0"),
        t,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["status"]["phase"], "Running");
    let (_, _, l) = call(
        Method::GET,
        &format!("{url}/api/v1/namespaces/other/pods"),
        t,
        None,
    )
    .await;
    assert_eq!(l["items"], json!([]));
    let (code, _, v) = call(
        Method::GET,
        &format!("{url}/api/v1/namespaces/default/pods/web-n1-9"),
        t,
        None,
    )
    .await;
    assert_status(code, &v, 404, "NotFound");

    // The listing comes from the hub's cache, yet a pod written just now is in it at once.
    put(
        format!("{url}/api/v1/namespaces/default/pods/fresh"),
        pod("fresh", Some("n1")),
    )
    .await;
    let (_, _, l) = call(Method::GET, &format!("{url}/api/v1/pods"), t, None).await;
    assert_eq!(by_name(&l)["fresh"]["spec"]["nodeName"], "n1", "{l}");

    // Deleting the Deployment deletes its placement with it (not left behind in etcd),
    // and the controller does not write it back.
    assert!(!kv
        .get("/t/placements/default/web", None)
        .await
        .unwrap()
        .kvs()
        .is_empty());
    let (code, _, v) = call(
        Method::DELETE,
        &format!("{url}/apis/apps/v1/namespaces/default/deployments/web"),
        t,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let placement = |kv: &mut etcd_client::Client| {
        let mut kv = kv.clone();
        async move {
            kv.get("/t/placements/default/web", None)
                .await
                .unwrap()
                .kvs()
                .len()
        }
    };
    assert_eq!(
        placement(&mut kv).await,
        0,
        "placement left after the delete"
    );
    let (_, _, l) = call(Method::GET, &format!("{url}/api/v1/pods"), t, None).await;
    assert!(!by_name(&l).keys().any(|n| n.starts_with("web-")), "{l}");
    // The controller reconciles on every cache change (the delete is one): after its round,
    // still gone.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        placement(&mut kv).await,
        0,
        "the controller wrote the placement back"
    );
}

#[tokio::test]
async fn tokens_are_made_with_the_asked_lifetime() {
    let etcd = Etcd::start().await;
    let mut kv = etcd.client().await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, url, t) = hub_api(&etcd, P, dir.path()).await;
    let t = Some(t.as_str());
    let (code, _, v) = call(
        Method::POST,
        &format!("{url}/api/v1/tokens"),
        t,
        Some(json!({"ttlSeconds": 120})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let tok = barge_edge_proto::token::JoinToken::parse(v["token"].as_str().unwrap()).unwrap();
    let (raw, _) = etcd_get(&mut kv, &format!("/t/tokens/{}", tok.id))
        .await
        .unwrap();
    let rec: barge_edge_proto::keys::TokenRecord = serde_json::from_slice(&raw).unwrap();
    assert_eq!(rec.secret_sha256, tok.secret_hash());
    let exp = barge_util::time::parse_rfc3339(&rec.expires).unwrap().0;
    let created = barge_util::time::parse_rfc3339(&rec.created).unwrap().0;
    assert_eq!(exp - created, 120);
    for bad in [
        json!({"ttlSeconds": 0}),
        json!({"ttlSeconds": "1h"}),
        json!({"ttl": 5}),
    ] {
        let (code, _, v) = call(Method::POST, &format!("{url}/api/v1/tokens"), t, Some(bad)).await;
        assert_status(code, &v, 400, "BadRequest");
    }
    let (code, _, v) = call(
        Method::POST,
        &format!("{url}/api/v1/tokens"),
        None,
        Some(json!({})),
    )
    .await;
    assert_status(code, &v, 401, "Unauthorized");
}
