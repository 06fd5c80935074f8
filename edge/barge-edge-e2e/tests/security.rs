//! What the hub refuses, with a clear error to the edge and a line in its log: forged,
//! expired and used join tokens; a certificate the hub did not issue; a certificate used
//! under another node's name; status for another node's pod; a revoked node. The real
//! agent's CLI for tokens (what an operator sees), a hand-made edge ([`RawEdge`]) for what
//! the agent never sends.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_edge_e2e::raw::{self, RawEdge};
use barge_edge_e2e::Agent;
use barge_edge_proto::object::{Kind, ObjKey, PodPhase, PodStatus};
use barge_edge_proto::token::JoinToken;
use barge_edge_proto::wire::{codes, EdgeMsg, HubMsg, PodReport};
use common::{pod, wait_pods, Cloud};

/// `barge edge join` fails; its stderr (lowercase).
fn join_fails(a: &Agent, url: &str, token: &str) -> String {
    let o = a.try_join(url, token, &[]);
    let err = String::from_utf8_lossy(&o.stderr).to_ascii_lowercase();
    assert!(
        !o.status.success(),
        "join with {token:?} succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

#[test]
fn forged_expired_and_used_tokens_are_refused_and_logged() {
    let cloud = Cloud::start();
    let url = cloud.hub.edge_url();
    let real = JoinToken::parse(&cloud.fleet.token(None)).unwrap();

    // Forged: the right CA hash and id, another secret.
    let forged = JoinToken {
        secret: "zzzzzzzzzzzzzzzzzzzzzzzz".into(),
        ..real.clone()
    }
    .render();
    let a = Agent::new("forger");
    let err = join_fails(&a, &url, &forged);
    assert!(
        err.contains("token"),
        "the error does not say the token is bad: {err}"
    );
    assert!(
        cloud
            .hub
            .wait_log("\"forger\" refused", Duration::from_secs(10)),
        "the hub did not log the forged join:\n{}",
        cloud.hub.log()
    );
    // The same answer on the wire: badToken.
    let r = RawEdge::join(cloud.hub.listen, &forged, "forger2").unwrap_err();
    assert!(r.contains(codes::BAD_TOKEN), "{r}");
    // An unknown id.
    let unknown = JoinToken {
        id: "zzzzzz".into(),
        ..real.clone()
    }
    .render();
    let r = RawEdge::join(cloud.hub.listen, &unknown, "forger3").unwrap_err();
    assert!(r.contains(codes::BAD_TOKEN), "{r}");
    // A token pinning another CA: the agent refuses the hub before sending it.
    let other_ca = JoinToken {
        ca_hash: "0".repeat(64),
        ..real.clone()
    }
    .render();
    let err = join_fails(&a, &url, &other_ca);
    assert!(
        err.contains("ca") || err.contains("certificate") || err.contains("pin"),
        "the error does not say the hub's CA does not match: {err}"
    );

    // The real token still works once (the forgeries did not burn it)...
    let id = RawEdge::join(cloud.hub.listen, &real.render(), "honest").unwrap();
    assert!(id.cert_pem.contains("BEGIN CERTIFICATE"));
    // ...and only once.
    let r = RawEdge::join(cloud.hub.listen, &real.render(), "honest-again").unwrap_err();
    assert!(
        r.contains(codes::BAD_TOKEN),
        "a used token worked again: {r}"
    );

    // Expired.
    let short = cloud.fleet.token(Some("1s"));
    std::thread::sleep(Duration::from_millis(2500));
    let late = Agent::new("late");
    let err = join_fails(&late, &url, &short);
    assert!(
        err.contains("expired") || err.contains("token"),
        "the error does not say the token expired: {err}"
    );
    assert!(
        cloud
            .hub
            .wait_log("\"late\" refused", Duration::from_secs(10)),
        "the hub did not log the expired join:\n{}",
        cloud.hub.log()
    );
    // No node was made by any refused join.
    let nodes: Vec<String> = cloud
        .fleet
        .nodes()
        .iter()
        .map(|n| {
            n["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        nodes,
        vec!["honest".to_string()],
        "nodes after the refusals"
    );
}

/// Whether a Hello with `id` as `name` was refused: an `Error` answer with `code`, or the
/// TLS layer closing on it. The answer, for the message.
fn refused(r: Result<(RawEdge, HubMsg), String>, code: &str) -> String {
    match r {
        Ok((_, HubMsg::Error { code: c, message })) => {
            assert_eq!(c, code, "refused with another code: {message}");
            message
        }
        Ok((_, other)) => panic!("the hub accepted it: {other:?}"),
        // A certificate the hub's verifier rejects ends the handshake instead.
        Err(e) => e,
    }
}

#[test]
fn foreign_and_misused_certificates_are_refused_and_logged() {
    let cloud = Cloud::start();
    let id = RawEdge::join(cloud.hub.listen, &cloud.fleet.token(None), "node-1").unwrap();

    // The genuine certificate works.
    let (mut c, m) = RawEdge::hello(cloud.hub.listen, &id, "node-1").unwrap();
    assert!(matches!(m, HubMsg::Welcome { .. }), "{m:?}");
    c.send(&EdgeMsg::Ping).unwrap();
    drop(c);

    // Self-signed, same name: not issued by the fleet's CA.
    let fake = raw::self_signed("node-1");
    let msg = refused(
        RawEdge::hello(cloud.hub.listen, &fake, "node-1"),
        codes::BAD_CERTIFICATE,
    );
    assert!(!msg.is_empty());
    assert!(
        cloud.hub.wait_log("certificate", Duration::from_secs(10)),
        "the hub did not log the foreign certificate:\n{}",
        cloud.hub.log()
    );

    // No certificate at all.
    let r = RawEdge::connect(cloud.hub.listen, None).and_then(|mut c| {
        c.send(&EdgeMsg::Hello {
            protocol: barge_edge_proto::PROTOCOL_VERSION,
            name: "node-1".into(),
            revision: 0,
            inventory: vec![],
            info: raw::node_info(),
        })?;
        let m = c.recv()?;
        Ok((c, m))
    });
    refused(r, codes::BAD_CERTIFICATE);

    // A real certificate under another node's name.
    let _other = RawEdge::join(cloud.hub.listen, &cloud.fleet.token(None), "node-2").unwrap();
    let msg = refused(
        RawEdge::hello(cloud.hub.listen, &id, "node-2"),
        codes::NAME_CONFLICT,
    );
    assert!(msg.contains("node-2") || msg.contains("node-1"), "{msg}");
    assert!(
        cloud
            .hub
            .wait_log("hello as \"node-2\" refused", Duration::from_secs(10)),
        "the hub did not log the name mismatch:\n{}",
        cloud.hub.log()
    );

    // Revoked: refused on its next connection.
    cloud.fleet.ok(&["node", "revoke", "node-1"]);
    refused(
        RawEdge::hello(cloud.hub.listen, &id, "node-1"),
        codes::REVOKED,
    );
    assert!(
        cloud.hub.wait_log(
            "hello as \"node-1\" refused: revoked",
            Duration::from_secs(10)
        ),
        "the hub did not log the revoked node:\n{}",
        cloud.hub.log()
    );
}

#[test]
fn a_node_cannot_see_or_report_another_nodes_pod() {
    let cloud = Cloud::start();
    let mine = RawEdge::join(cloud.hub.listen, &cloud.fleet.token(None), "mine").unwrap();
    let _theirs = RawEdge::join(cloud.hub.listen, &cloud.fleet.token(None), "theirs").unwrap();
    cloud.fleet.apply(&pod("own", "mine"));
    cloud.fleet.apply(&pod("secret-of-theirs", "theirs"));

    let (mut c, m) = RawEdge::hello(cloud.hub.listen, &mine, "mine").unwrap();
    assert!(matches!(m, HubMsg::Welcome { .. }), "{m:?}");
    // The first Sync is the node's whole view: its own pod, never the other's.
    let sync = c.recv_skip_pings().unwrap();
    let HubMsg::Sync {
        revision, changes, ..
    } = sync
    else {
        panic!("expected a Sync, got {sync:?}");
    };
    let text = serde_json::to_string(&changes).unwrap();
    assert!(
        text.contains("\"own\""),
        "own pod missing from the view: {text}"
    );
    assert!(
        !text.contains("secret-of-theirs"),
        "another node's pod was sent: {text}"
    );
    c.send(&EdgeMsg::Ack { revision }).unwrap();

    // Reporting status for the other node's pod: refused, the session ends, logged.
    let status = PodStatus {
        phase: PodPhase::Running,
        observed_revision: 0,
        container_statuses: vec![],
        pod_id: None,
        pod_ip: None,
        start_time: None,
        message: None,
        observed_at: "2026-01-01T00:00:00Z".into(),
    };
    c.send(&EdgeMsg::PodStatus {
        pods: vec![PodReport {
            key: ObjKey {
                kind: Kind::Pod,
                namespace: "default".into(),
                name: "secret-of-theirs".into(),
            },
            status,
        }],
        gone: vec![],
        seq: None,
    })
    .unwrap();
    let answer = loop {
        match c.recv_skip_pings() {
            Ok(HubMsg::Sync { .. } | HubMsg::Welcome { .. }) => continue,
            other => break other,
        }
    };
    match answer {
        Ok(HubMsg::Error { code, message }) => {
            assert_eq!(code, codes::FORBIDDEN, "{message}");
            assert!(message.contains("secret-of-theirs"), "{message}");
        }
        Ok(other) => panic!("the hub answered {other:?}"),
        Err(e) => panic!("the hub closed without saying why: {e}"),
    }
    assert!(
        cloud.hub.wait_log("not its own", Duration::from_secs(10)),
        "the hub did not log the foreign report:\n{}",
        cloud.hub.log()
    );
    // The other node's pod status is untouched.
    let rows = wait_pods(
        &cloud.fleet,
        Duration::from_secs(10),
        "2 pods listed",
        |r| r.len() == 2,
    );
    let theirs = rows.iter().find(|r| r.name == "secret-of-theirs").unwrap();
    assert_ne!(theirs.phase, "Running", "{theirs:?}");
}
