//! `barge-edge sim`: hollow agents join and hold real sessions (TLS, Hello, Sync/Ack, status)
//! with a fake hub; a synced Pod is reported Running by the hollow node.
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
}
