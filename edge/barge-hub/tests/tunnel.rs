//! Tunnels: exec/logs streams on a local session (stream ids, Data both ways, StreamEnd,
//! Cancel when the caller drops the stream), and forwarded from another hub through the
//! session-holding hub's fleet API.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_edge_proto::wire::{b64, unb64, EdgeMsg, HubMsg};
use barge_hub::tunnel::{TunnelOutput, TunnelRequest};
use common::*;
use serde_json::json;

async fn joined(h: &TestHub, name: &str) -> NodeId {
    let mut n = NodeId::new(name);
    let token = h.token(Duration::from_secs(600)).await;
    assert!(matches!(
        join(h, &mut n, &token, &[]).await,
        HubMsg::Joined { .. }
    ));
    n
}

async fn connect(h: &TestHub, n: &NodeId) -> Edge {
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(n)).await;
    e.send(&EdgeMsg::Hello {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        name: n.name.clone(),
        revision: 0,
        inventory: vec![],
        info: info(),
    })
    .await;
    assert!(matches!(e.recv_msg().await, HubMsg::Welcome { .. }));
    assert!(matches!(e.recv_msg().await, HubMsg::Sync { .. }));
    e
}

fn exec_req(cmd: &[&str]) -> TunnelRequest {
    TunnelRequest::Exec {
        namespace: "default".into(),
        pod: "web".into(),
        container: String::new(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        stdin: true,
        tty: false,
    }
}

/// Wait for the next Exec/Logs/Data/Cancel frame (skipping Syncs and pings).
async fn next_tunnel_msg(e: &mut Edge) -> HubMsg {
    loop {
        match e.recv_msg().await {
            HubMsg::Sync { .. } => continue,
            m => return m,
        }
    }
}

/// Play the edge's side of one exec: read stdin until closed, echo it on fd 1, exit 3.
async fn serve_exec(e: &mut Edge, want_cmd: &[&str]) {
    let stream = match next_tunnel_msg(e).await {
        HubMsg::Exec {
            stream, cmd, pod, ..
        } => {
            assert_eq!(cmd, want_cmd);
            assert_eq!(pod, "web");
            stream
        }
        other => panic!("expected Exec, got {other:?}"),
    };
    let mut got = Vec::new();
    loop {
        match next_tunnel_msg(e).await {
            HubMsg::Data {
                stream: s,
                fd: 0,
                data,
            } => {
                assert_eq!(s, stream);
                let d = unb64(&data).unwrap();
                if d.is_empty() {
                    break;
                }
                got.extend(d);
            }
            other => panic!("expected stdin Data, got {other:?}"),
        }
    }
    e.send(&EdgeMsg::Data {
        stream,
        fd: 1,
        data: b64(&got),
    })
    .await;
    e.send(&EdgeMsg::StreamEnd {
        stream,
        exit_code: Some(3),
        error: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_exec_streams_both_ways_and_cancels_on_drop() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let n1 = joined(&h, "n1").await;
    let mut e = connect(&h, &n1).await;
    let hubref = h.started.hub.clone();
    let caller = tokio::spawn(async move {
        let mut s = hubref.tunnels.open("n1", exec_req(&["cat"])).await.unwrap();
        s.input.send(b"hello ".to_vec()).await.unwrap();
        s.input.send(b"edge".to_vec()).await.unwrap();
        s.input.send(Vec::new()).await.unwrap();
        let mut out = Vec::new();
        loop {
            match s.output.recv().await.unwrap() {
                TunnelOutput::Data { fd, data } => {
                    assert_eq!(fd, 1);
                    out.extend(data);
                }
                TunnelOutput::End { exit_code, error } => return (out, exit_code, error),
            }
        }
    });
    serve_exec(&mut e, &["cat"]).await;
    let (out, code, err) = caller.await.unwrap();
    assert_eq!(out, b"hello edge");
    assert_eq!(code, Some(3));
    assert_eq!(err, None);

    // A second stream gets a new id; dropping it cancels it on the edge.
    let s = h
        .started
        .hub
        .tunnels
        .open(
            "n1",
            TunnelRequest::Logs {
                namespace: "default".into(),
                pod: "web".into(),
                container: String::new(),
                follow: true,
                tail: Some(5),
                timestamps: false,
            },
        )
        .await
        .unwrap();
    let id = match next_tunnel_msg(&mut e).await {
        HubMsg::Logs {
            stream,
            follow,
            tail,
            ..
        } => {
            assert!(follow);
            assert_eq!(tail, Some(5));
            stream
        }
        other => panic!("expected Logs, got {other:?}"),
    };
    drop(s);
    loop {
        match next_tunnel_msg(&mut e).await {
            HubMsg::Cancel { stream } => {
                assert_eq!(stream, id);
                break;
            }
            HubMsg::Data { .. } => continue,
            other => panic!("expected Cancel, got {other:?}"),
        }
    }

    // Unknown node: NotFound; known but not connected: Unavailable.
    let t = &h.started.hub.tunnels;
    assert!(matches!(
        t.open("nope", exec_req(&["true"])).await,
        Err(barge_hub::Error::NotFound(_))
    ));
    let _n2 = joined(&h, "n2").await;
    assert!(matches!(
        t.open("n2", exec_req(&["true"])).await,
        Err(barge_hub::Error::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_is_forwarded_to_the_hub_holding_the_session() {
    let etcd = Etcd::start().await;
    let h1 = hub(&etcd, |_| {}).await;
    let key_file = state_dir(&h1).join("hub.key");
    let h2 = hub(&etcd, |c| c.key_file = Some(key_file.clone())).await;
    let conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_dir(&h1).join("admin.conf")).unwrap()).unwrap();
    let token = conf["token"].as_str().unwrap().to_string();
    let n1 = joined(&h1, "n1").await;
    let rev = put_object(
        &etcd,
        "pods",
        "default",
        "web",
        json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},
            "spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}}),
    )
    .await;
    h1.started.hub.cache.wait_for(rev).await;
    h2.started.hub.cache.wait_for(rev).await;
    // The node's session is on h2; the caller talks to h1.
    let mut e = connect(&h2, &n1).await;
    let hubref = h1.started.hub.clone();
    let caller = tokio::spawn(async move {
        let t = &hubref.tunnels;
        // Without the caller's token it cannot be forwarded.
        assert!(matches!(
            t.open("n1", exec_req(&["cat"])).await,
            Err(barge_hub::Error::Unavailable(_))
        ));
        let mut s = t
            .open_as("n1", exec_req(&["cat"]), Some(&token))
            .await
            .unwrap();
        s.input.send(b"via h2".to_vec()).await.unwrap();
        drop(s.input);
        let mut out = Vec::new();
        loop {
            match s.output.recv().await.unwrap() {
                TunnelOutput::Data { data, .. } => out.extend(data),
                TunnelOutput::End { exit_code, .. } => return (out, exit_code),
            }
        }
    });
    serve_exec(&mut e, &["cat"]).await;
    let (out, code) = caller.await.unwrap();
    assert_eq!(out, b"via h2");
    assert_eq!(code, Some(3));
}
