//! Two `barge-hub` processes on one etcd: a node's hub dies (SIGKILL), the node reconnects
//! to the other with its inventory and gets exactly what changed meanwhile (no relist, no
//! lost update).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use barge_edge_proto::wire::{Change, EdgeMsg, Held, HubMsg};
use common::*;
use serde_json::json;

fn pod(name: &str, image: &str) -> serde_json::Value {
    json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name},
        "spec":{"nodeName":"n1","containers":[{"name":"c","image":image}]}})
}

async fn hello(e: &mut Edge, inventory: Vec<Held>) -> (String, Vec<Change>) {
    e.send(&EdgeMsg::Hello {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        name: "n1".into(),
        revision: 0,
        inventory,
        info: info(),
    })
    .await;
    let hub = match e.recv_msg().await {
        HubMsg::Welcome { hub, hubs, .. } => {
            assert!(!hubs.is_empty());
            hub
        }
        other => panic!("expected Welcome, got {other:?}"),
    };
    match e.recv_msg().await {
        HubMsg::Sync { changes, .. } => (hub, changes),
        other => panic!("expected Sync, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_moves_to_the_surviving_hub_and_gets_only_what_changed() {
    let etcd = Etcd::start().await;
    let mut a = HubProcess::start(&etcd).await;
    let key = a.state.path().join("hub.key");
    let b = HubProcess::start_with(&etcd, Some(&key)).await;
    let ca = ca_from_etcd(&etcd).await;

    let mut node = NodeId::new("n1");
    let token = put_token(&etcd, &ca).await;
    let mut e = Edge::connect(a.edge, &ca, None).await;
    e.send(&EdgeMsg::Join {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        token,
        name: "n1".into(),
        labels: Default::default(),
        csr_pem: node.csr("node:n1"),
        info: info(),
    })
    .await;
    match e.recv().await.unwrap() {
        HubMsg::Joined { cert_pem, hubs, .. } => {
            assert_eq!(hubs.len(), 2, "{hubs:?}");
            node.cert_pem = Some(cert_pem);
        }
        other => panic!("join refused: {other:?}"),
    }
    let rev1 = put_object(&etcd, "pods", "default", "web", pod("web", "nginx:1")).await;

    let mut e = Edge::connect(a.edge, &ca, Some(&node)).await;
    let (hub_a, changes) = hello(&mut e, vec![]).await;
    assert_eq!(changes.len(), 1);
    let held: Vec<Held> = changes
        .iter()
        .map(|c| match c {
            Change::Put { object } => Held {
                key: object.key(),
                revision: object.revision(),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(held[0].revision, rev1);

    // Hub A dies; meanwhile the pod changes, another appears, and one more is bound elsewhere.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let rev2 = put_object(&etcd, "pods", "default", "web", pod("web", "nginx:2")).await;
    let rev3 = put_object(&etcd, "pods", "default", "extra", pod("extra", "busybox")).await;

    let mut e = Edge::connect(b.edge, &ca, Some(&node)).await;
    let (hub_b, changes) = hello(&mut e, held).await;
    assert_ne!(hub_a, hub_b);
    let got: BTreeSet<(String, i64)> = changes
        .iter()
        .map(|c| match c {
            Change::Put { object } => (object.metadata.name.clone(), object.revision()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [("web".to_string(), rev2), ("extra".to_string(), rev3)].into()
    );

    // The same inventory again (as if the edge reconnected once more): nothing to send.
    let now_held = vec![
        Held {
            key: changes_key(&changes, "web"),
            revision: rev2,
        },
        Held {
            key: changes_key(&changes, "extra"),
            revision: rev3,
        },
    ];
    drop(e);
    let mut e = Edge::connect(b.edge, &ca, Some(&node)).await;
    let (_, changes) = hello(&mut e, now_held).await;
    assert!(changes.is_empty(), "{changes:?}");
}

fn changes_key(changes: &[Change], name: &str) -> barge_edge_proto::object::ObjKey {
    changes
        .iter()
        .find_map(|c| match c {
            Change::Put { object } if object.metadata.name == name => Some(object.key()),
            _ => None,
        })
        .unwrap()
}
