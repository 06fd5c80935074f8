//! Edge sessions against a real etcd and an in-process hub: hello + sync of a Pod written
//! straight into etcd, a node sees only its own objects, live syncs, acks and statuses,
//! forbidden status reports, revoked nodes refused (on hello and while connected), a
//! certificate for another name, Deployments placed by the controller, renewal with an
//! expired certificate.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use barge_edge_proto::object::{Kind, ObjKey, PodPhase, PodStatus};
use barge_edge_proto::wire::{codes, Change, EdgeMsg, Held, HubMsg, PodReport};
use common::*;
use serde_json::json;

async fn joined(h: &TestHub, name: &str, labels: &[(&str, &str)]) -> NodeId {
    let mut n = NodeId::new(name);
    let token = h.token(Duration::from_secs(600)).await;
    let m = join(h, &mut n, &token, labels).await;
    assert!(matches!(m, HubMsg::Joined { .. }), "{m:?}");
    n
}

fn hello(name: &str, inventory: Vec<Held>) -> EdgeMsg {
    EdgeMsg::Hello {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        name: name.into(),
        revision: 0,
        inventory,
        info: info(),
    }
}

/// Connect, say hello, expect Welcome; returns the edge and the first Sync's changes.
async fn session(h: &TestHub, n: &NodeId, inventory: Vec<Held>) -> (Edge, i64, Vec<Change>) {
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(n)).await;
    e.send(&hello(&n.name, inventory)).await;
    match e.recv_msg().await {
        HubMsg::Welcome { hub, renew, .. } => {
            assert_eq!(hub, h.started.hub.id);
            assert!(!renew);
        }
        other => panic!("expected Welcome, got {other:?}"),
    }
    match e.recv_msg().await {
        HubMsg::Sync {
            revision, changes, ..
        } => (e, revision, changes),
        other => panic!("expected the first Sync, got {other:?}"),
    }
}

fn keys_of(changes: &[Change]) -> BTreeSet<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::Put { object } => format!("put {}", object.key()),
            Change::Delete { key, .. } => format!("delete {key}"),
        })
        .collect()
}

fn pod(name: &str, node: &str, image: &str) -> serde_json::Value {
    json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"namespace":"default"},
        "spec":{"nodeName":node,"containers":[{"name":"c","image":image,
        "env":[{"name":"S","valueFrom":{"secretKeyRef":{"name":"creds","key":"k"}}}]}]}})
}

fn pod_key(name: &str) -> ObjKey {
    ObjKey {
        kind: Kind::Pod,
        namespace: "default".into(),
        name: name.into(),
    }
}

fn running(rev: i64) -> PodStatus {
    PodStatus {
        phase: PodPhase::Running,
        observed_revision: rev,
        container_statuses: vec![],
        pod_id: Some("abc".into()),
        pod_ip: None,
        start_time: None,
        message: None,
        observed_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_syncs_own_objects_only_then_live_changes_acks_and_status() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let n1 = joined(&h, "n1", &[]).await;
    let _n2 = joined(&h, "n2", &[]).await;
    let rev_web = put_object(&etcd, "pods", "default", "web", pod("web", "n1", "nginx:1")).await;
    put_object(
        &etcd,
        "pods",
        "default",
        "other",
        pod("other", "n2", "nginx:1"),
    )
    .await;
    put_object(
        &etcd,
        "secrets",
        "default",
        "creds",
        json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"creds"},"data":{"k":"dg=="}}),
    )
    .await;
    put_object(
        &etcd,
        "configmaps",
        "default",
        "unused",
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"unused"},"data":{"a":"b"}}),
    )
    .await;
    let last = put_object(&etcd, "secrets", "kube", "creds",
        json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"creds","namespace":"kube"},"data":{"k":"dg=="}})).await;
    h.started.hub.cache.wait_for(last).await;

    // The edge says it holds a stale object; the first Sync deletes it and sends its own.
    let stale = Held {
        key: pod_key("gone"),
        revision: 3,
    };
    let (mut e, rev, changes) = session(&h, &n1, vec![stale]).await;
    assert!(rev >= last);
    let expect: BTreeSet<String> = [
        "put pods/default/web",
        "put secrets/default/creds",
        "delete pods/default/gone",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(keys_of(&changes), expect);
    // Data before the pod that uses it.
    let order: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Put { object } => Some(object.kind),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![Kind::Secret, Kind::Pod]);
    let web = changes
        .iter()
        .find_map(|c| match c {
            Change::Put { object } if object.kind == Kind::Pod => Some(object.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(web.revision(), rev_web);
    e.send(&EdgeMsg::Ack { revision: rev }).await;

    // A live change to its pod arrives as a Sync; another node's change does not.
    put_object(
        &etcd,
        "pods",
        "default",
        "other",
        pod("other", "n2", "nginx:2"),
    )
    .await;
    let rev2 = put_object(&etcd, "pods", "default", "web", pod("web", "n1", "nginx:2")).await;
    match e.recv_msg().await {
        HubMsg::Sync {
            revision, changes, ..
        } => {
            assert!(revision >= rev2);
            assert_eq!(
                keys_of(&changes),
                ["put pods/default/web".to_string()].into()
            );
            match &changes[0] {
                Change::Put { object } => {
                    assert_eq!(object.revision(), rev2);
                    assert_eq!(object.spec["containers"][0]["image"], "nginx:2");
                }
                other => panic!("{other:?}"),
            }
            e.send(&EdgeMsg::Ack { revision }).await;
        }
        other => panic!("expected a Sync, got {other:?}"),
    }

    // Status of its own pod lands in etcd; the ack is recorded.
    e.send(&EdgeMsg::PodStatus {
        pods: vec![PodReport {
            key: pod_key("web"),
            status: running(rev2),
        }],
        gone: vec![],
        seq: None,
    })
    .await;
    let mut c = etcd.client().await;
    eventually("pod status in etcd", || {
        let mut c = c.clone();
        async move {
            let r = c
                .get(format!("{PREFIX}status/pods/n1/default/web"), None)
                .await
                .unwrap();
            r.kvs().first().is_some_and(|kv| {
                let st: PodStatus = serde_json::from_slice(kv.value()).unwrap();
                st.phase == PodPhase::Running && st.observed_revision == rev2
            })
        }
    })
    .await;
    eventually("acked revision recorded", || {
        let mut c = c.clone();
        async move {
            let r = c
                .get(format!("{PREFIX}status/nodes/n1"), None)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(r.kvs()[0].value()).unwrap();
            v["ackedRevision"].as_i64().unwrap_or(0) >= rev2
        }
    })
    .await;
    let conn = c.get(format!("{PREFIX}conns/n1"), None).await.unwrap();
    let conn: serde_json::Value = serde_json::from_slice(conn.kvs()[0].value()).unwrap();
    assert_eq!(conn["hub"], h.started.hub.id.as_str());

    // Deleting the pod sends a Delete.
    c.delete(format!("{PREFIX}objects/pods/default/web"), None)
        .await
        .unwrap();
    match e.recv_msg().await {
        HubMsg::Sync { changes, .. } => {
            let got = keys_of(&changes);
            assert!(got.contains("delete pods/default/web"), "{got:?}");
            assert!(got.contains("delete secrets/default/creds"), "{got:?}");
        }
        other => panic!("expected a Sync, got {other:?}"),
    }

    // Reporting status for another node's pod: refused, session closed.
    e.send(&EdgeMsg::PodStatus {
        pods: vec![PodReport {
            key: pod_key("other"),
            status: running(1),
        }],
        gone: vec![],
        seq: None,
    })
    .await;
    match e.recv_msg().await {
        HubMsg::Error { code, message } => {
            assert_eq!(code, codes::FORBIDDEN);
            assert!(message.contains("pods/default/other"), "{message}");
        }
        other => panic!("expected Error, got {other:?}"),
    }
    assert!(e.recv().await.is_none(), "hub must close after the error");
    let st = c
        .get(format!("{PREFIX}status/pods/n1/default/other"), None)
        .await
        .unwrap();
    assert!(st.kvs().is_empty());
    // conns/n1 is gone with the session.
    eventually("conns/n1 removed", || {
        let mut c = c.clone();
        async move {
            c.get(format!("{PREFIX}conns/n1"), None)
                .await
                .unwrap()
                .kvs()
                .is_empty()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_node_is_refused_and_dropped_while_connected() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let n1 = joined(&h, "n1", &[]).await;
    let (mut e, _, changes) = session(&h, &n1, vec![]).await;
    assert!(changes.is_empty());

    let mut c = etcd.client().await;
    c.put(
        format!("{PREFIX}revoked/n1"),
        r#"{"at":"2026-01-01T00:00:00Z"}"#,
        None,
    )
    .await
    .unwrap();
    match e.recv_msg().await {
        HubMsg::Error { code, .. } => assert_eq!(code, codes::REVOKED),
        other => panic!("expected Error revoked, got {other:?}"),
    }
    assert!(e.recv().await.is_none());

    // Next connection: refused at hello.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&hello("n1", vec![])).await;
    match e.recv().await {
        Some(HubMsg::Error { code, message }) => {
            assert_eq!(code, codes::REVOKED);
            assert!(message.contains("n1"), "{message}");
        }
        other => panic!("expected Error revoked, got {other:?}"),
    }
    // Renew is refused too.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&EdgeMsg::Renew {
        csr_pem: n1.csr("node:n1"),
    })
    .await;
    match e.recv().await {
        Some(HubMsg::Error { code, .. }) => assert_eq!(code, codes::REVOKED),
        other => panic!("expected Error revoked, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_without_or_with_another_nodes_certificate_is_refused() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let n1 = joined(&h, "n1", &[]).await;
    let _n2 = joined(&h, "n2", &[]).await;
    // n1's certificate, claiming to be n2.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&hello("n2", vec![])).await;
    match e.recv().await {
        Some(HubMsg::Error { code, .. }) => assert_eq!(code, codes::NAME_CONFLICT),
        other => panic!("expected nameConflict, got {other:?}"),
    }
    // No certificate at all.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), None).await;
    e.send(&hello("n1", vec![])).await;
    match e.recv().await {
        Some(HubMsg::Error { code, .. }) => assert_eq!(code, codes::BAD_CERTIFICATE),
        other => panic!("expected badCertificate, got {other:?}"),
    }
    // A certificate from another CA: the TLS handshake itself fails.
    let etcd2 = Etcd::start().await;
    let other = hub(&etcd2, |_| {}).await;
    let stranger = joined(&other, "n1", &[]).await;
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&stranger)).await;
    e.send(&hello("n1", vec![])).await;
    // TLS 1.3: the client learns of the rejected certificate on its first read.
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        let mut b = [0u8; 4];
        e_read(&mut e, &mut b).await
    })
    .await
    .unwrap();
    assert!(got.is_err(), "a foreign certificate must be refused");
}

async fn e_read(e: &mut Edge, b: &mut [u8; 4]) -> std::io::Result<()> {
    e.read_raw(b).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_is_placed_on_matching_nodes_and_synced() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let a = joined(&h, "a", &[("zone", "x")]).await;
    let b = joined(&h, "b", &[("zone", "y")]).await;
    let (mut ea, _, first) = session(&h, &a, vec![]).await;
    assert!(first.is_empty());
    let (mut eb, _, _) = session(&h, &b, vec![]).await;
    let rev = put_object(
        &etcd,
        "deployments",
        "default",
        "web",
        json!({
        "apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
        "spec":{"replicas":2,"template":{"metadata":{"labels":{"app":"web"}},
        "spec":{"nodeSelector":{"zone":"x"},"containers":[{"name":"c","image":"nginx"}]}}}}),
    )
    .await;
    match ea.recv_msg().await {
        HubMsg::Sync { changes, .. } => {
            assert_eq!(
                keys_of(&changes),
                ["put pods/default/web-a-0", "put pods/default/web-a-1"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            );
            for c in &changes {
                if let Change::Put { object } = c {
                    assert_eq!(object.revision(), rev);
                    assert_eq!(object.metadata.labels["barge.io/owner"], "Deployment/web");
                }
            }
        }
        other => panic!("expected a Sync, got {other:?}"),
    }
    // b gets nothing: a Ping (or nothing) within a short wait, never a Sync.
    let none = tokio::time::timeout(Duration::from_secs(2), eb.recv_msg()).await;
    assert!(none.is_err(), "node b must not receive anything: {none:?}");
    let mut c = etcd.client().await;
    let p = c
        .get(format!("{PREFIX}placements/default/web"), None)
        .await
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(p.kvs()[0].value()).unwrap();
    assert_eq!(p["nodes"], json!({"a": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_renews_within_grace_without_a_token() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |c| {
        c.cert_ttl_secs = 1;
        c.renew_grace_secs = 3600;
    })
    .await;
    let n1 = joined(&h, "n1", &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Expired: hello refused with a clear error.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&hello("n1", vec![])).await;
    match e.recv().await {
        Some(HubMsg::Error { code, message }) => {
            assert_eq!(code, codes::BAD_CERTIFICATE);
            assert!(message.contains("expired"), "{message}");
        }
        other => panic!("expected badCertificate, got {other:?}"),
    }
    // Renew with the expired certificate and a new key.
    let mut fresh = NodeId::new("n1");
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&EdgeMsg::Renew {
        csr_pem: fresh.csr("node:n1"),
    })
    .await;
    match e.recv().await {
        Some(HubMsg::Renewed { cert_pem, .. }) => fresh.cert_pem = Some(cert_pem),
        other => panic!("expected Renewed, got {other:?}"),
    }
    // The renewed certificate starts a session right away.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&fresh)).await;
    e.send(&hello("n1", vec![])).await;
    match e.recv().await {
        Some(HubMsg::Welcome { .. }) => {}
        other => panic!("expected Welcome with the renewed certificate, got {other:?}"),
    }
    // Renewing for another node's name is refused.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&EdgeMsg::Renew {
        csr_pem: fresh.csr("node:n2"),
    })
    .await;
    assert!(matches!(e.recv().await, Some(HubMsg::Error { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expired_past_grace_fails_the_handshake() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |c| {
        c.cert_ttl_secs = 1;
        c.renew_grace_secs = 0;
    })
    .await;
    let n1 = joined(&h, "n1", &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&EdgeMsg::Renew {
        csr_pem: n1.csr("node:n1"),
    })
    .await;
    let mut b = [0u8; 4];
    assert!(e_read(&mut e, &mut b).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_delete_through_the_api_cuts_its_session_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let n1 = joined(&h, "n1", &[]).await;
    let (mut e, _, _) = session(&h, &n1, vec![]).await;

    let conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_dir(&h).join("admin.conf")).unwrap()).unwrap();
    let token = conf["token"].as_str().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(h.started.api_addr)
        .await
        .unwrap();
    tcp.write_all(
        format!(
            "DELETE /api/v1/nodes/n1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut resp = Vec::new();
    tcp.read_to_end(&mut resp).await.unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    // The live session is ended with REVOKED (the heartbeat is 10 s: this is the delete).
    let t0 = std::time::Instant::now();
    match e.recv_msg().await {
        HubMsg::Error { code, .. } => assert_eq!(code, codes::REVOKED),
        other => panic!("expected Error revoked, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let mut c = etcd.client().await;
    let r = c.get(format!("{PREFIX}revoked/n1"), None).await.unwrap();
    assert_eq!(r.kvs().len(), 1);
    // Its certificate is refused on the next connection.
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(&n1)).await;
    e.send(&hello("n1", vec![])).await;
    match e.recv().await {
        Some(HubMsg::Error { code, .. }) => assert_eq!(code, codes::REVOKED),
        other => panic!("expected Error revoked, got {other:?}"),
    }
}
