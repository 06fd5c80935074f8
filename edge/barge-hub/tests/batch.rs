//! The hub's batched writer against a real etcd: a wave of small writes lands in far fewer
//! transactions than writes (each transaction is one etcd revision), nothing is lost, a
//! key written by many callers at once ends with one of their values, and one caller's
//! write larger than a transaction goes through whole.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use barge_hub::store::batch::{Batcher, Write, OPS_PER_TXN};
use common::*;
use etcd_client::GetOptions;

async fn revision(c: &mut etcd_client::Client) -> i64 {
    c.get("/", None).await.unwrap().header().unwrap().revision()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_of_writes_goes_in_few_transactions_and_none_is_lost() {
    let etcd = Etcd::start().await;
    let mut c = etcd.client().await;
    let batcher = Arc::new(Batcher::start(c.clone()));
    let before = revision(&mut c).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let b = batcher.clone();
        tasks.spawn(async move {
            b.write(
                "wave",
                vec![Write::put(format!("/w/{i:04}"), i.to_string().into_bytes())],
            )
            .await
        });
    }
    for i in 0..50 {
        let b = batcher.clone();
        tasks.spawn(async move {
            b.write(
                "dup",
                vec![Write::put("/dup".into(), i.to_string().into_bytes())],
            )
            .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let after = revision(&mut c).await;

    let got = c
        .get("/w/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 1000);
    for kv in got.kvs() {
        let i: u32 = std::str::from_utf8(&kv.key()[3..])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(kv.value(), i.to_string().as_bytes());
    }
    let dup = c.get("/dup", None).await.unwrap();
    let v: u32 = std::str::from_utf8(dup.kvs()[0].value())
        .unwrap()
        .parse()
        .unwrap();
    assert!(v < 50);
    // One revision per transaction: 1050 writes one by one would take 1050.
    let txns = after - before;
    assert!(
        txns >= (1000 / OPS_PER_TXN) as i64 && txns <= 200,
        "{txns} transactions for 1050 writes"
    );

    // A write larger than a transaction, with a key given twice (the last wins), and a
    // delete.
    let mut big: Vec<Write> = (0..250)
        .map(|i| Write::put(format!("/big/{i:03}"), b"x".to_vec()))
        .collect();
    big.push(Write::put("/big/000".into(), b"last".to_vec()));
    big.push(Write::delete("/w/0000".into()));
    batcher.write("big", big).await.unwrap();
    let got = c
        .get("/big/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 250);
    assert_eq!(got.kvs()[0].value(), b"last");
    assert!(c.get("/w/0000", None).await.unwrap().kvs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_a_dead_etcd_fails_with_an_error_naming_it() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let batcher = Batcher::start(c);
    drop(etcd);
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        batcher.write("status/pods", vec![Write::put("/k".into(), b"v".to_vec())]),
    )
    .await
    .expect("an answer, not a hang")
    .unwrap_err();
    assert!(err.to_string().contains("status/pods"), "{err}");
}
