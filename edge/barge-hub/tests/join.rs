//! Join against a real etcd and an in-process hub: good, forged, expired and reused tokens,
//! a CSR for another name, the CA sealed at rest.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_edge_proto::keys::CaRecord;
use barge_edge_proto::token::JoinToken;
use barge_edge_proto::wire::{codes, HubMsg};
use common::*;

fn error_code(m: &HubMsg) -> &str {
    match m {
        HubMsg::Error { code, .. } => code,
        other => panic!("expected an Error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_good_forged_expired_and_reused_tokens() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let mut etc = etcd.client().await;

    // Good token: a certificate for node:n1, the CA bundle, this hub's endpoint.
    let token = h.token(Duration::from_secs(600)).await;
    let parsed = JoinToken::parse(&token).unwrap();
    assert_eq!(parsed.ca_hash, h.started.hub.pki().ca_hash());
    let mut n1 = NodeId::new("n1");
    match join(&h, &mut n1, &token, &[("zone", "x")]).await {
        HubMsg::Joined {
            cert_pem,
            ca_bundle_pem,
            hubs,
        } => {
            let der = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
                .unwrap()
                .1;
            let peer = barge_hub::pki::PeerCert::parse(&der.contents).unwrap();
            assert_eq!(peer.common_name, "node:n1");
            assert_eq!(ca_bundle_pem, ca_from_etcd(&etcd).await);
            assert_eq!(hubs, vec![h.addr().to_string()]);
        }
        other => panic!("join refused: {other:?}"),
    }
    // The node exists with its labels; the token is gone; the node record has the cert expiry.
    let node = etc
        .get(format!("{PREFIX}objects/nodes//n1"), None)
        .await
        .unwrap();
    let node: serde_json::Value = serde_json::from_slice(node.kvs()[0].value()).unwrap();
    assert_eq!(node["metadata"]["labels"]["zone"], "x");
    let tok = etc
        .get(format!("{PREFIX}tokens/{}", parsed.id), None)
        .await
        .unwrap();
    assert!(tok.kvs().is_empty(), "token must be consumed");
    let rec = etc
        .get(format!("{PREFIX}status/nodes/n1"), None)
        .await
        .unwrap();
    let rec: serde_json::Value = serde_json::from_slice(rec.kvs()[0].value()).unwrap();
    assert!(rec["certNotAfter"].is_string(), "{rec}");

    // Reused token.
    let mut n2 = NodeId::new("n2");
    let m = join(&h, &mut n2, &token, &[]).await;
    assert_eq!(error_code(&m), codes::BAD_TOKEN, "{m:?}");

    // Forged: a real id with a made-up secret.
    let good = JoinToken::parse(&h.token(Duration::from_secs(600)).await).unwrap();
    let forged = JoinToken {
        secret: "x".repeat(32),
        ..good.clone()
    };
    let m = join(&h, &mut n2, &forged.render(), &[]).await;
    assert_eq!(error_code(&m), codes::BAD_TOKEN, "{m:?}");
    // Forged CA pin.
    let wrong_pin = JoinToken {
        ca_hash: "0".repeat(64),
        ..good.clone()
    };
    let m = join(&h, &mut n2, &wrong_pin.render(), &[]).await;
    assert_eq!(error_code(&m), codes::BAD_TOKEN, "{m:?}");
    // Malformed.
    let m = join(&h, &mut n2, "K10nope", &[]).await;
    assert_eq!(error_code(&m), codes::BAD_TOKEN, "{m:?}");
    // The real one still works after the failed attempts with its id.
    assert!(matches!(
        join(&h, &mut n2, &good.render(), &[]).await,
        HubMsg::Joined { .. }
    ));

    // Expired.
    let expired = h.token(Duration::from_secs(0)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut n3 = NodeId::new("n3");
    let m = join(&h, &mut n3, &expired, &[]).await;
    assert_eq!(error_code(&m), codes::BAD_TOKEN, "{m:?}");
    if let HubMsg::Error { message, .. } = &m {
        assert!(message.contains("expired"), "{message}");
    }
    let n3_node = etc
        .get(format!("{PREFIX}objects/nodes//n3"), None)
        .await
        .unwrap();
    assert!(
        n3_node.kvs().is_empty(),
        "no node may be created by a refused join"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csr_for_another_name_is_refused_and_keeps_the_token() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let token = h.token(Duration::from_secs(600)).await;
    let node = NodeId::new("a1");
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), None).await;
    e.send(&barge_edge_proto::wire::EdgeMsg::Join {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        token: token.clone(),
        name: "a1".into(),
        labels: Default::default(),
        csr_pem: node.csr("node:someone-else"),
        info: info(),
    })
    .await;
    let m = e.recv().await.unwrap();
    assert_eq!(error_code(&m), codes::PROTOCOL, "{m:?}");
    // The token was not consumed: a proper join with it succeeds.
    let mut node = NodeId::new("a1");
    assert!(matches!(
        join(&h, &mut node, &token, &[]).await,
        HubMsg::Joined { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_is_sealed_at_rest_and_shared_by_a_second_hub() {
    let etcd = Etcd::start().await;
    let h1 = hub(&etcd, |_| {}).await;
    let key_file = state_dir(&h1).join("hub.key");
    let meta = std::fs::metadata(&key_file).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let mut c = etcd.client().await;
    let r = c.get(format!("{PREFIX}pki/ca"), None).await.unwrap();
    let raw = String::from_utf8(r.kvs()[0].value().to_vec()).unwrap();
    assert!(
        !raw.contains("PRIVATE KEY"),
        "CA key stored in clear: {raw}"
    );
    let rec: CaRecord = serde_json::from_str(&raw).unwrap();
    assert_eq!(rec.cas.len(), 1);

    // A second hub with the same key file loads the same CA...
    let h2 = hub(&etcd, |c| c.key_file = Some(key_file.clone())).await;
    assert_eq!(h2.ca_pem(), h1.ca_pem());
    // ...and one with another key file cannot open it (clear error).
    let state = tempfile::tempdir().unwrap();
    let cfg = config(&etcd, state.path());
    let err = barge_hub::run::start(cfg)
        .await
        .err()
        .expect("wrong key file must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("key file"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_fails_startup_naming_the_endpoint() {
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_barge-hub"))
        .arg(format!("--etcd=http://127.0.0.1:{port}"))
        .arg("--listen=127.0.0.1:0")
        .arg("--api=127.0.0.1:0")
        .arg(format!("--state-dir={}", state.path().display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("etcd at http://127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_join_is_logged_by_the_hub_binary_with_the_peer_address() {
    let etcd = Etcd::start().await;
    let hubp = HubProcess::start(&etcd).await;
    let ca = ca_from_etcd(&etcd).await;
    let forged = JoinToken {
        ca_hash: barge_edge_proto::token::sha256_hex(
            &x509_parser::pem::parse_x509_pem(ca.as_bytes())
                .unwrap()
                .1
                .contents,
        ),
        id: "abc123".into(),
        secret: "s".repeat(24),
    };
    let node = NodeId::new("intruder");
    let mut e = Edge::connect(hubp.edge, &ca, None).await;
    let me = e.local_addr();
    e.send(&barge_edge_proto::wire::EdgeMsg::Join {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        token: forged.render(),
        name: "intruder".into(),
        labels: Default::default(),
        csr_pem: node.csr("node:intruder"),
        info: info(),
    })
    .await;
    let m = e.recv().await.unwrap();
    assert_eq!(error_code(&m), codes::BAD_TOKEN, "{m:?}");
    let log = hubp.wait_log("refused").await;
    let line = log
        .lines()
        .find(|l| l.contains("refused"))
        .unwrap()
        .to_string();
    assert!(line.contains(&me.to_string()), "{line}");
    assert!(
        line.contains("intruder") && line.contains("badToken"),
        "{line}"
    );
}

/// A reusable token (`fleet token create --reusable`) joins several nodes and stays in etcd
/// until it expires; then it is refused like any expired token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusable_token_joins_many_nodes_until_it_expires() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let mut etc = etcd.client().await;
    let token = barge_hub::tokens::create(&h.started.hub, Duration::from_secs(3), true)
        .await
        .unwrap();
    let id = JoinToken::parse(&token).unwrap().id;
    for name in ["r1", "r2", "r3"] {
        let mut n = NodeId::new(name);
        let m = join(&h, &mut n, &token, &[]).await;
        assert!(matches!(m, HubMsg::Joined { .. }), "{name}: {m:?}");
        let node = etc
            .get(format!("{PREFIX}objects/nodes//{name}"), None)
            .await
            .unwrap();
        assert_eq!(node.kvs().len(), 1, "{name} stored");
    }
    let tok = etc.get(format!("{PREFIX}tokens/{id}"), None).await.unwrap();
    assert_eq!(tok.kvs().len(), 1, "a reusable token stays");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut late = NodeId::new("r4");
    let m = join(&h, &mut late, &token, &[]).await;
    assert_eq!(error_code(&m), codes::BAD_TOKEN, "{m:?}");
}
