//! `barge-edge sim`: hollow agents join and hold real sessions (TLS, Hello, Sync/Ack, status)
//! with a fake hub; a synced Pod is reported Running by the hollow node; a removed pod's
//! `gone` report is sent again on every new connection until the hub acks it.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use barge_edge_proto::object::{Object, PodPhase};
use barge_edge_proto::wire::{Change, EdgeMsg, HubMsg};
use common::{edge_cmd, Agent, FakeHub};

#[test]
fn hollow_agents_join_sync_and_report() {
    let hub = FakeHub::start();
    let dir = tempfile::tempdir().unwrap();
    let child = edge_cmd(
        dir.path(),
        &[
            "sim",
            "--count",
            "3",
            "--hub",
            &format!("https://{}", hub.addr),
            "--token",
            &hub.ca.token(),
            "--backoff-base-ms",
            "100",
        ],
    )
    .stdin(Stdio::null())
    .spawn()
    .unwrap();
    let _sim = Agent(child);
    let mut joined = BTreeSet::new();
    let mut hello = BTreeSet::new();
    hub.wait(Duration::from_secs(30), |m| {
        match m {
            EdgeMsg::Join { name, .. } => {
                joined.insert(name.clone());
            }
            EdgeMsg::Hello { name, .. } => {
                hello.insert(name.clone());
            }
            _ => {}
        }
        hello.len() == 3
    });
    let want: BTreeSet<String> = ["sim-0", "sim-1", "sim-2"].map(String::from).into();
    assert_eq!(joined, want);
    assert_eq!(hello, want);
    for n in &want {
        assert!(dir
            .path()
            .join("root/edge-sim")
            .join(n)
            .join("edge/node.crt")
            .exists());
    }
    // The fake hub talks to the last session that said Hello.
    let pod: Object = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "resourceVersion": "3"},
        "spec": {"containers": [{"name": "c", "image": "bb"}]}
    }))
    .unwrap();
    hub.send(HubMsg::Sync {
        revision: 3,
        full: false,
        changes: vec![Change::Put {
            object: Box::new(pod),
        }],
    });
    assert!(hub
        .wait(Duration::from_secs(20), |m| matches!(
            m,
            EdgeMsg::Ack { revision: 3 }
        ))
        .is_some());
    assert!(hub
        .wait(Duration::from_secs(20), |m| matches!(m,
            EdgeMsg::PodStatus { pods, .. }
                if pods.iter().any(|p| p.key.name == "p"
                    && p.status.phase == PodPhase::Running
                    && p.status.observed_revision == 3)))
        .is_some());

    // The pod is removed: its `gone` report comes with a seq.
    hub.send(HubMsg::Sync {
        revision: 4,
        full: false,
        changes: vec![Change::Delete {
            key: barge_edge_proto::object::ObjKey {
                kind: barge_edge_proto::object::Kind::Pod,
                namespace: "default".into(),
                name: "p".into(),
            },
            revision: 4,
        }],
    });
    let gone_p = |m: &EdgeMsg| -> Option<u64> {
        match m {
            EdgeMsg::PodStatus { gone, seq, .. } if gone.iter().any(|k| k.name == "p") => {
                Some(seq.expect("a PodStatus with a seq"))
            }
            _ => None,
        }
    };
    assert!(hub
        .wait(Duration::from_secs(20), |m| gone_p(m).is_some())
        .is_some());
    // The link drops before the hub acked it: the next connection sends it again.
    let drop_link = || {
        hub.send(HubMsg::Error {
            code: barge_edge_proto::wire::codes::UNAVAILABLE.into(),
            message: "test: link dropped".into(),
        })
    };
    drop_link();
    let again = hub
        .wait(Duration::from_secs(20), |m| gone_p(m).is_some())
        .expect("the unacked gone report sent again after reconnecting");
    let seq = gone_p(&again).unwrap();
    // Acked (read before the Error that follows it on the same stream): not sent on the
    // connection after.
    hub.send(HubMsg::StatusAck { seq });
    drop_link();
    assert!(hub
        .wait(Duration::from_secs(20), |m| matches!(
            m,
            EdgeMsg::Hello { .. }
        ))
        .is_some());
    assert!(
        hub.wait(Duration::from_secs(4), |m| gone_p(m).is_some())
            .is_none(),
        "an acked gone report was sent again"
    );
}
