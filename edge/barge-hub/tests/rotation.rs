//! CA rotation without re-joining: a new CA signs, the old one stays trusted (and keeps
//! signing the hub's server certificate) until retired; edges see the two-CA bundle and a
//! renew request in Welcome, renew in-session, and keep working after the old CA is retired.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_edge_proto::wire::{EdgeMsg, HubMsg};
use common::*;

fn hello() -> EdgeMsg {
    EdgeMsg::Hello {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        name: "n1".into(),
        revision: 0,
        inventory: vec![],
        info: info(),
    }
}

/// Hello; returns (renew, ca bundle) from Welcome and consumes the first Sync.
async fn welcome(e: &mut Edge) -> (bool, String) {
    e.send(&hello()).await;
    let w = match e.recv_msg().await {
        HubMsg::Welcome {
            renew,
            ca_bundle_pem,
            ..
        } => (renew, ca_bundle_pem),
        other => panic!("expected Welcome, got {other:?}"),
    };
    assert!(matches!(e.recv_msg().await, HubMsg::Sync { .. }));
    w
}

fn count_certs(pem: &str) -> usize {
    pem.matches("BEGIN CERTIFICATE").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_renew_in_session_then_retire_the_old_ca() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let ca1 = h.ca_pem();
    let mut n1 = NodeId::new("n1");
    let token = h.token(Duration::from_secs(600)).await;
    assert!(matches!(
        join(&h, &mut n1, &token, &[]).await,
        HubMsg::Joined { .. }
    ));

    let c = etcd.client().await;
    barge_hub::pki::rotate(&c, PREFIX, &h.started.hub.seal)
        .await
        .unwrap();
    let hubref = h.started.hub.clone();
    eventually("the hub reloads two CAs", || {
        let hubref = hubref.clone();
        async move { hubref.pki().cas.len() == 2 }
    })
    .await;
    // A second rotation while one is in progress is refused.
    assert!(barge_hub::pki::rotate(&c, PREFIX, &h.started.hub.seal)
        .await
        .is_err());

    // An edge that trusts only the old CA still connects; it is told to renew and given both.
    let mut e = Edge::connect(h.addr(), &ca1, Some(&n1)).await;
    let (renew, bundle) = welcome(&mut e).await;
    assert!(renew, "a certificate from the old CA must be renewed");
    assert_eq!(count_certs(&bundle), 2);
    assert!(bundle.contains(ca1.trim()));

    // Renew in the session.
    let mut n1b = NodeId::new("n1");
    e.send(&EdgeMsg::Renew {
        csr_pem: n1b.csr("node:n1"),
    })
    .await;
    loop {
        match e.recv_msg().await {
            HubMsg::Renewed { cert_pem, .. } => {
                n1b.cert_pem = Some(cert_pem);
                break;
            }
            HubMsg::Sync { .. } => continue,
            other => panic!("expected Renewed, got {other:?}"),
        }
    }
    drop(e);
    // The new certificate is current: no renew asked.
    let mut e = Edge::connect(h.addr(), &bundle, Some(&n1b)).await;
    let (renew, _) = welcome(&mut e).await;
    assert!(!renew);
    drop(e);

    // Retire the old CA: the hub now serves with the new one; new tokens pin it.
    barge_hub::pki::retire_old(&c, PREFIX).await.unwrap();
    eventually("the hub drops the old CA", || {
        let hubref = hubref.clone();
        async move { hubref.pki().cas.len() == 1 }
    })
    .await;
    let new_ca = h.ca_pem();
    assert_ne!(new_ca, ca1);
    assert!(bundle.contains(new_ca.trim()));
    let mut e = Edge::connect(h.addr(), &new_ca, Some(&n1b)).await;
    let (renew, b) = welcome(&mut e).await;
    assert!(!renew);
    assert_eq!(count_certs(&b), 1);
    let t =
        barge_edge_proto::token::JoinToken::parse(&h.token(Duration::from_secs(60)).await).unwrap();
    let der = x509_parser::pem::parse_x509_pem(new_ca.as_bytes())
        .unwrap()
        .1
        .contents;
    assert_eq!(t.ca_hash, barge_edge_proto::token::sha256_hex(&der));

    // The old certificate (old CA, now untrusted) is refused at the handshake.
    let mut e = Edge::connect(h.addr(), &new_ca, Some(&n1)).await;
    e.send(&hello()).await;
    let mut b = [0u8; 4];
    assert!(e.read_raw(&mut b).await.is_err());
}
