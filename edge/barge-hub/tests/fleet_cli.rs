//! The `barge-fleet` binary against a hub started in-process on a real etcd, with an
//! in-test edge (hub-core's test client) holding a real TLS session for logs and exec.
//! Needs the binary built first: `cargo build -p barge-fleet` (or `BARGE_FLEET_BIN`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use barge_edge_proto::token::JoinToken;
use barge_edge_proto::wire::{b64, unb64, EdgeMsg, HubMsg};
use common::*;
use serde_json::{json, Value};

fn fleet_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BARGE_FLEET_BIN") {
        return p.into();
    }
    // target/debug/deps/fleet_cli-<hash> -> target/debug/barge-fleet
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("barge-fleet");
    assert!(
        p.exists(),
        "{} is missing: cargo build -p barge-fleet first",
        p.display()
    );
    p
}

/// Run `barge-fleet ARGS` with `BARGE_FLEET_CONFIG=conf`: exit code, stdout, stderr.
async fn fleet(conf: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let conf = conf.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(fleet_bin())
            .args(&args)
            .env("BARGE_FLEET_CONFIG", &conf)
            .env_remove("HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn admin_conf(h: &TestHub) -> PathBuf {
    state_dir(h).join("admin.conf")
}

const MANIFEST: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: REPLICAS
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      nodeSelector: {site: a}
      containers:
      - name: c
        image: busybox
        envFrom:
        - configMapRef: {name: cfg}
---
apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: hunter2
"#;

fn write_manifest(dir: &Path, replicas: u32) -> PathBuf {
    let p = dir.join(format!("m{replicas}.yaml"));
    std::fs::write(&p, MANIFEST.replace("REPLICAS", &replicas.to_string())).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_apply_get_describe_delete() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let conf = admin_conf(&h);
    let tok = h.token(Duration::from_secs(600)).await;
    let mut n1 = NodeId::new("n1");
    assert!(matches!(
        join(&h, &mut n1, &tok, &[("site", "a")]).await,
        HubMsg::Joined { .. }
    ));
    let dir = tempfile::tempdir().unwrap();
    let m2 = write_manifest(dir.path(), 2);
    let m2s = m2.to_str().unwrap();

    let (code, out, err) = fleet(&conf, &["apply", "-f", m2s], None).await;
    assert_eq!(code, 0, "{err}");
    // Data first, then workloads.
    assert_eq!(
        out,
        "configmap/cfg created\nsecret/db created\ndeployment.apps/web created\n"
    );
    let (code, out, err) = fleet(&conf, &["apply", "-f", m2s], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "configmap/cfg unchanged\nsecret/db unchanged\ndeployment.apps/web unchanged\n"
    );
    let m3 = write_manifest(dir.path(), 3);
    let (code, out, err) = fleet(&conf, &["apply", "-f", m3.to_str().unwrap()], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deployment.apps/web configured\n"), "{out}");

    // The controller places the 3 replicas on n1; get pods -o json is a List with nodeName
    // and phase.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let pods: Value = loop {
        let (code, out, err) = fleet(&conf, &["get", "pods", "-o", "json"], None).await;
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        if v["items"].as_array().unwrap().len() == 3 {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "3 pods never listed: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(pods["kind"], "List");
    for p in pods["items"].as_array().unwrap() {
        assert_eq!(p["spec"]["nodeName"], "n1", "{p}");
        assert_eq!(p["status"]["phase"], "Pending", "{p}");
    }
    let (code, out, _) = fleet(&conf, &["get", "pods"], None).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE   NAME"), "{out}");
    assert!(
        lines[0].contains("NODE") && lines[0].contains("PHASE") && lines[0].contains("RESTARTS")
    );
    assert!(
        lines[1].starts_with("default") && lines[1].contains("web-n1-0") && lines[1].contains("n1"),
        "{out}"
    );

    let (code, out, _) = fleet(&conf, &["get", "deployments"], None).await;
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().contains("web"), "{out}");
    assert!(out.contains("0/3"), "{out}");
    let (code, out, _) = fleet(&conf, &["get", "deploy", "web", "-o", "yaml"], None).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("apiVersion: apps/v1\n") && out.contains("\n  replicas: 3\n"),
        "{out}"
    );
    let (code, out, _) = fleet(&conf, &["get", "secrets", "db", "-o", "json"], None).await;
    assert_eq!(code, 0);
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["data"]["password"], "aHVudGVyMg==");
    let (code, out, _) = fleet(&conf, &["get", "nodes"], None).await;
    assert_eq!(code, 0);
    let row = out.lines().nth(1).unwrap();
    assert!(row.starts_with("n1") && row.contains("site=a"), "{out}");
    let (code, out, _) = fleet(&conf, &["describe", "deployment", "web"], None).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Name:              web") && out.contains("default/web-n1-2  node=n1"),
        "{out}"
    );

    // Errors name what failed and on what, with the server's message.
    let (code, _, err) = fleet(&conf, &["get", "deployments", "nope"], None).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "barge fleet: get deployments nope: deployments default/nope not found\n"
    );
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: -2}\n",
    )
    .unwrap();
    let (code, _, err) = fleet(&conf, &["apply", "-f", bad.to_str().unwrap()], None).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("barge fleet: apply deployment.apps/x: ") && err.contains("replicas"),
        "{err}"
    );

    let (code, out, err) = fleet(&conf, &["delete", "-f", m2s], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "deployment.apps/web deleted\nsecret/db deleted\nconfigmap/cfg deleted\n"
    );
    let (code, _, err) = fleet(&conf, &["delete", "configmap", "cfg"], None).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "barge fleet: delete configmaps cfg: configmaps default/cfg not found\n"
    );
    let (code, out, err) = fleet(&conf, &["get", "pods"], None).await;
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_token_and_node_commands() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let conf = admin_conf(&h);
    let (code, out, err) = fleet(&conf, &["token", "create", "--ttl", "1h"], None).await;
    assert_eq!(code, 0, "{err}");
    let line = out.strip_suffix('\n').unwrap();
    assert!(!line.contains('\n'), "only the token on stdout: {out:?}");
    JoinToken::parse(line).unwrap();
    let mut n1 = NodeId::new("n1");
    assert!(matches!(
        join(&h, &mut n1, line, &[("site", "a"), ("old", "x")]).await,
        HubMsg::Joined { .. }
    ));

    let (code, out, err) = fleet(&conf, &["node", "label", "n1", "gpu=yes", "old-"], None).await;
    assert_eq!((code, out.as_str()), (0, "node/n1 labeled\n"), "{err}");
    let (_, out, _) = fleet(&conf, &["get", "node", "n1", "-o", "json"], None).await;
    let n: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(n["metadata"]["labels"], json!({"gpu": "yes", "site": "a"}));
    let (code, out, _) = fleet(&conf, &["node", "drain", "n1"], None).await;
    assert_eq!((code, out.as_str()), (0, "node/n1 drained\n"));
    let (_, out, _) = fleet(&conf, &["get", "nodes"], None).await;
    assert!(out.contains("SchedulingDisabled"), "{out}");
    let (code, out, _) = fleet(&conf, &["node", "revoke", "n1"], None).await;
    assert_eq!((code, out.as_str()), (0, "node/n1 revoked\n"));
    let mut kv = etcd.client().await;
    assert_eq!(kv.get("/t/revoked/n1", None).await.unwrap().kvs().len(), 1);
    let (code, _, err) = fleet(&conf, &["node", "label", "ghost", "a=b"], None).await;
    assert_eq!(code, 1);
    assert_eq!(err, "barge fleet: node label ghost: node ghost not found\n");
    let (code, _, err) = fleet(&conf, &["token", "create", "--ttl", "soon"], None).await;
    assert_eq!(code, 1);
    assert!(err.contains("--ttl"), "{err}");

    // A wrong token in the config: 401 from the server, said plainly.
    let bad = state_dir(&h).join("bad.conf");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    c["token"] = json!("0".repeat(64));
    std::fs::write(&bad, c.to_string()).unwrap();
    let (code, _, err) = fleet(&bad, &["get", "nodes"], None).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "barge fleet: get nodes: the bearer token is not the fleet's admin token\n"
    );
    // No token at all (a second hub's admin.conf).
    c["token"] = Value::Null;
    std::fs::write(&bad, c.to_string()).unwrap();
    let (code, _, err) = fleet(&bad, &["get", "nodes"], None).await;
    assert_eq!(code, 1);
    assert!(err.contains("no admin token"), "{err}");
}

/// What the in-test edge saw of the tunnel requests.
#[derive(Default)]
struct Seen {
    logs: Vec<(String, String, Option<u64>)>,
    exec: Vec<Vec<String>>,
}

/// A session for `node`: acks syncs, answers pings, serves Logs (two lines) and Exec
/// (stdout `ran <cmd>: got <stdin>`, stderr `oops`, exit code 7).
async fn run_edge(h: &TestHub, node: &NodeId, seen: Arc<Mutex<Seen>>) {
    let mut e = Edge::connect(h.addr(), &h.ca_pem(), Some(node)).await;
    e.send(&EdgeMsg::Hello {
        protocol: barge_edge_proto::PROTOCOL_VERSION,
        name: node.name.clone(),
        revision: 0,
        inventory: vec![],
        info: info(),
    })
    .await;
    assert!(matches!(e.recv_msg().await, HubMsg::Welcome { .. }));
    tokio::spawn(async move {
        let mut stdin: BTreeMap<u32, (Vec<String>, Vec<u8>)> = BTreeMap::new();
        while let Some(m) = e.recv().await {
            match m {
                HubMsg::Ping => e.send(&EdgeMsg::Pong).await,
                HubMsg::Sync { revision, .. } => e.send(&EdgeMsg::Ack { revision }).await,
                HubMsg::Logs {
                    stream,
                    pod,
                    container,
                    tail,
                    ..
                } => {
                    seen.lock().unwrap().logs.push((pod, container, tail));
                    for line in ["line one\n", "line two\n"] {
                        e.send(&EdgeMsg::Data {
                            stream,
                            fd: 1,
                            data: b64(line.as_bytes()),
                        })
                        .await;
                    }
                    e.send(&EdgeMsg::StreamEnd {
                        stream,
                        exit_code: Some(0),
                        error: None,
                    })
                    .await;
                }
                HubMsg::Exec { stream, cmd, .. } => {
                    seen.lock().unwrap().exec.push(cmd.clone());
                    stdin.insert(stream, (cmd, Vec::new()));
                }
                HubMsg::Data {
                    stream,
                    fd: 0,
                    data,
                } => {
                    let d = unb64(&data).unwrap();
                    if d.is_empty() {
                        if let Some((cmd, got)) = stdin.remove(&stream) {
                            let out = format!(
                                "ran {}: got {}",
                                cmd.join(" "),
                                String::from_utf8_lossy(&got)
                            );
                            e.send(&EdgeMsg::Data {
                                stream,
                                fd: 1,
                                data: b64(out.as_bytes()),
                            })
                            .await;
                            e.send(&EdgeMsg::Data {
                                stream,
                                fd: 2,
                                data: b64(b"oops\n"),
                            })
                            .await;
                            e.send(&EdgeMsg::StreamEnd {
                                stream,
                                exit_code: Some(7),
                                error: None,
                            })
                            .await;
                        }
                    } else if let Some((_, got)) = stdin.get_mut(&stream) {
                        got.extend_from_slice(&d);
                    }
                }
                _ => {}
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_logs_and_exec_go_through_the_nodes_tunnel() {
    let etcd = Etcd::start().await;
    let h = hub(&etcd, |_| {}).await;
    let conf = admin_conf(&h);
    let tok = h.token(Duration::from_secs(600)).await;
    let mut n1 = NodeId::new("n1");
    assert!(matches!(
        join(&h, &mut n1, &tok, &[]).await,
        HubMsg::Joined { .. }
    ));
    let seen = Arc::new(Mutex::new(Seen::default()));
    run_edge(&h, &n1, seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.json");
    std::fs::write(&pod, r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}}"#).unwrap();
    let (code, out, err) = fleet(&conf, &["apply", "-f", pod.to_str().unwrap()], None).await;
    assert_eq!((code, out.as_str()), (0, "pod/p created\n"), "{err}");

    let (code, out, err) = fleet(&conf, &["logs", "n1/p", "--tail", "5", "-c", "c"], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "line one\nline two\n");
    assert_eq!(
        seen.lock().unwrap().logs,
        [("p".to_string(), "c".to_string(), Some(5))]
    );

    let (code, out, err) = fleet(
        &conf,
        &["exec", "-i", "n1/p", "--", "sh", "-c", "cat; echo a&b"],
        Some("hello"),
    )
    .await;
    assert_eq!(code, 7, "exit code = the remote one; {err}");
    assert_eq!(out, "ran sh -c cat; echo a&b: got hello");
    assert_eq!(err, "oops\n");
    assert_eq!(
        seen.lock().unwrap().exec,
        [vec!["sh".to_string(), "-c".into(), "cat; echo a&b".into()]]
    );

    // A pod the node does not run, and a node without a session.
    let (code, _, err) = fleet(&conf, &["logs", "n1/nope"], None).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "barge fleet: logs n1/nope: pods default/nope not found\n"
    );
    let (code, _, err) = fleet(&conf, &["exec", "n2/p", "--", "true"], None).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("barge fleet: exec n2/p: pod default/p is not on node n2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_exec_asked_of_another_hub_are_forwarded_to_the_sessions_hub() {
    let etcd = Etcd::start().await;
    let h1 = hub(&etcd, |_| {}).await;
    let key = state_dir(&h1).join("hub.key");
    let h2 = hub(&etcd, |c| c.key_file = Some(key.clone())).await;
    let tok = h1.token(Duration::from_secs(600)).await;
    let mut n1 = NodeId::new("n1");
    assert!(matches!(
        join(&h1, &mut n1, &tok, &[]).await,
        HubMsg::Joined { .. }
    ));
    let seen = Arc::new(Mutex::new(Seen::default()));
    run_edge(&h1, &n1, seen.clone()).await;
    // The operator talks to hub 2 with the fleet's admin token (made by hub 1).
    let mut c: Value = serde_json::from_slice(&std::fs::read(admin_conf(&h1)).unwrap()).unwrap();
    c["server"] = json!(h2.started.hub.api_url);
    let conf = state_dir(&h2).join("fleet.conf");
    std::fs::write(&conf, c.to_string()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.json");
    std::fs::write(&pod, r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}}"#).unwrap();
    let (code, _, err) = fleet(&conf, &["apply", "-f", pod.to_str().unwrap()], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(h2.started.hub.tunnels.local("n1").is_none());
    assert!(h1.started.hub.tunnels.local("n1").is_some());

    let (code, out, err) = fleet(&conf, &["logs", "n1/p"], None).await;
    assert_eq!((code, out.as_str()), (0, "line one\nline two\n"), "{err}");
    let (code, out, err) = fleet(
        &conf,
        &["exec", "-i", "n1/p", "--", "cat"],
        Some("via hub 2"),
    )
    .await;
    assert_eq!(code, 7, "{err}");
    assert_eq!(out, "ran cat: got via hub 2");
    assert_eq!(err, "oops\n");
    assert_eq!(seen.lock().unwrap().exec, [vec!["cat".to_string()]]);
}
