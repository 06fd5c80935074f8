//! The agent's session with hubs, against fake hubs over real TLS (no containers): Sync
//! batches are in SQLite when acked; after the hub goes away the agent backs off and, when
//! a hub is back on the address, says Hello with the revision and inventory it holds;
//! heartbeats carry node status; `Welcome.renew` gets a new key and certificate; a new CA
//! bundle in Welcome replaces `ca.pem`, and the renewed certificate works on the next
//! connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use barge_edge_proto::object::{Kind, Object};
use barge_edge_proto::wire::{Change, EdgeMsg, HubMsg};
use common::{agent_log, edge_cmd, Agent, Ca, FakeHub, HubOpts};
use serde_json::json;

fn config_map(name: &str, rev: i64) -> Object {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rev.to_string()},
        "data": {"k": "v"}
    }))
    .unwrap()
}

#[test]
fn reconnects_with_its_revision_renews_and_takes_a_new_ca() {
    let dir = tempfile::Builder::new()
        .prefix("bge")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path();
    let ca = Arc::new(Ca::new("fleet CA"));
    let hub = FakeHub::start_with(ca.clone(), "127.0.0.1:0");
    let addr = hub.addr.clone();
    let out = edge_cmd(
        d,
        &[
            "join",
            &format!("https://{addr}"),
            "--token",
            &ca.token(),
            "--name",
            "n2",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _agent = Agent::start(d);
    let hello = hub
        .wait(Duration::from_secs(20), |m| {
            matches!(m, EdgeMsg::Hello { .. })
        })
        .unwrap_or_else(|| panic!("no Hello: {}", agent_log(d)));
    let EdgeMsg::Hello {
        name,
        revision,
        inventory,
        ..
    } = hello
    else {
        unreachable!()
    };
    assert_eq!((name.as_str(), revision, inventory.len()), ("n2", 0, 0));

    hub.send(HubMsg::Sync {
        revision: 7,
        full: false,
        changes: vec![
            Change::Put {
                object: Box::new(config_map("a", 6)),
            },
            Change::Put {
                object: Box::new(config_map("b", 7)),
            },
        ],
    });
    assert!(
        hub.wait(Duration::from_secs(20), |m| matches!(
            m,
            EdgeMsg::Ack { revision: 7 }
        ))
        .is_some(),
        "no Ack: {}",
        agent_log(d)
    );
    // Acked means committed: another reader of the cache sees the batch.
    let db = rusqlite::Connection::open(d.join("root/edge/cache.db")).unwrap();
    let (n, rev): (i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM objects), (SELECT revision FROM meta)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, rev), (2, 7));
    drop(db);
    // A heartbeat with node status.
    let ns = hub.wait(Duration::from_secs(10), |m| {
        matches!(m, EdgeMsg::NodeStatus { .. })
    });
    assert!(ns.is_some(), "no NodeStatus: {}", agent_log(d));

    // The hub goes away; later one comes back on the same address, asking for a renewal and
    // with a second CA in its bundle.
    drop(hub);
    std::thread::sleep(Duration::from_millis(800));
    let new_ca = Ca::new("next fleet CA");
    let hub = FakeHub::start_opts(
        ca.clone(),
        &addr,
        HubOpts {
            renew: true,
            extra_ca: new_ca.pem.clone(),
        },
    );
    let hello = hub
        .wait(Duration::from_secs(30), |m| {
            matches!(m, EdgeMsg::Hello { .. })
        })
        .unwrap_or_else(|| panic!("no Hello after the hub came back: {}", agent_log(d)));
    let EdgeMsg::Hello {
        revision,
        inventory,
        ..
    } = hello
    else {
        unreachable!()
    };
    assert_eq!(revision, 7);
    let mut inv: Vec<(Kind, String, i64)> = inventory
        .into_iter()
        .map(|h| (h.key.kind, h.key.name, h.revision))
        .collect();
    inv.sort();
    assert_eq!(
        inv,
        vec![
            (Kind::ConfigMap, "a".to_string(), 6),
            (Kind::ConfigMap, "b".to_string(), 7)
        ]
    );
    let log = agent_log(d);
    assert!(log.contains("no hub reachable; next try in"), "{log}");

    let edge = d.join("root/edge");
    let old_cert = std::fs::read_to_string(edge.join("node.crt")).unwrap();
    let old_key = std::fs::read_to_string(edge.join("node.key")).unwrap();
    let renew = hub.wait(Duration::from_secs(10), |m| {
        matches!(m, EdgeMsg::Renew { .. })
    });
    assert!(renew.is_some(), "no Renew: {}", agent_log(d));
    assert!(
        barge_testutil::engine::wait_until(Duration::from_secs(10), || {
            agent_log(d).contains("certificate renewed")
        }),
        "{}",
        agent_log(d)
    );
    let new_cert = std::fs::read_to_string(edge.join("node.crt")).unwrap();
    let new_key = std::fs::read_to_string(edge.join("node.key")).unwrap();
    assert_ne!(old_cert, new_cert);
    assert_ne!(old_key, new_key);
    let mode = std::fs::metadata(edge.join("node.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let bundle = std::fs::read_to_string(edge.join("ca.pem")).unwrap();
    assert!(bundle.contains(ca.pem.trim()) && bundle.contains(new_ca.pem.trim()));

    // The renewed certificate and the new bundle work on the next connection.
    drop(hub);
    std::thread::sleep(Duration::from_millis(800));
    let hub = FakeHub::start_with(ca.clone(), &addr);
    assert!(
        hub.wait(Duration::from_secs(30), |m| matches!(
            m,
            EdgeMsg::Hello { revision: 7, .. }
        ))
        .is_some(),
        "no Hello with the renewed certificate: {}",
        agent_log(d)
    );
}
