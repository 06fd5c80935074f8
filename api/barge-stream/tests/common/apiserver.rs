//! A stand-in for the Kubernetes API server and kubelet in front of the streaming server, so
//! the real `kubectl` can be the client: it answers the pod GET (and the discovery kubectl
//! does first), and for `.../exec`, `.../attach` and `.../portforward` it does what kubelet
//! does with the CRI: turns the query into a request, asks the streaming server for a URL and
//! proxies the (upgrading) connection there, head rewritten to the URL's path.

use std::sync::{Arc, Mutex};

use barge_stream::{
    AttachRequest, ExecRequest, PortForwardRequest, PortForwardTarget, StreamHandle,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const POD: &str = "p";

pub struct ApiServer {
    pub url: String,
    /// The engine container behind the pod's one container (can be changed).
    pub container: Arc<Mutex<String>>,
    /// The `Upgrade` header of every streaming request proxied.
    pub upgrades: Arc<Mutex<Vec<String>>>,
}

fn query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), unescape(v))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn json_answer(code: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const DISCOVERY_API: &str = r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}"#;
const DISCOVERY_APIS: &str = r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#;
const DISCOVERY_V1: &str = r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]},{"name":"pods/exec","singularName":"","namespaced":true,"kind":"PodExecOptions","verbs":["create","get"]},{"name":"pods/attach","singularName":"","namespaced":true,"kind":"PodAttachOptions","verbs":["create","get"]},{"name":"pods/portforward","singularName":"","namespaced":true,"kind":"PodPortForwardOptions","verbs":["create","get"]}]}"#;

fn pod_json() -> String {
    format!(
        r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{POD}","namespace":"default","uid":"u1"}},"spec":{{"containers":[{{"name":"c","image":"bb","stdin":true,"stdinOnce":true}}]}},"status":{{"phase":"Running","containerStatuses":[{{"name":"c","ready":true,"state":{{"running":{{}}}}}}]}}}}"#
    )
}

impl ApiServer {
    /// Serve pod `POD` whose one container is the engine's `container`.
    pub async fn start(handle: StreamHandle, container: String) -> ApiServer {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let upgrades = Arc::new(Mutex::new(Vec::new()));
        let seen = upgrades.clone();
        let container = Arc::new(Mutex::new(container));
        let current = container.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = l.accept().await else {
                    return;
                };
                let c = current.lock().unwrap().clone();
                let (h, seen) = (handle.clone(), seen.clone());
                tokio::spawn(async move { serve(tcp, h, c, seen).await });
            }
        });
        ApiServer {
            url,
            container,
            upgrades,
        }
    }
}

async fn serve(
    mut tcp: TcpStream,
    handle: StreamHandle,
    container: String,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut b).await {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let mut parts = first.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let pod_path = format!("/api/v1/namespaces/default/pods/{POD}");
    let kind = path.strip_prefix(&format!("{pod_path}/"));
    let Some(kind) = kind else {
        let ans = match path {
            "/api" => json_answer(200, DISCOVERY_API),
            "/apis" => json_answer(200, DISCOVERY_APIS),
            "/api/v1" => json_answer(200, DISCOVERY_V1),
            p if p == pod_path => json_answer(200, &pod_json()),
            _ => json_answer(
                404,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#,
            ),
        };
        let _ = tcp.write_all(&ans).await;
        return;
    };
    let q = query(q);
    let flag = |k: &str| q.iter().any(|(n, v)| n == k && (v == "true" || v == "1"));
    let url = match kind {
        "exec" => handle.exec_url(ExecRequest {
            container_id: container.clone(),
            cmd: q
                .iter()
                .filter(|(n, _)| n == "command")
                .map(|(_, v)| v.clone())
                .collect(),
            tty: flag("tty"),
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr") && !flag("tty"),
        }),
        "attach" => handle.attach_url(AttachRequest {
            container_id: container.clone(),
            tty: flag("tty"),
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr") && !flag("tty"),
            // The pod's container is `stdinOnce`: kubectl's end of input ends it.
            stdin_once: true,
        }),
        "portforward" => handle.portforward_url(PortForwardRequest {
            target: PortForwardTarget::Container(container.clone()),
            ports: q
                .iter()
                .filter(|(n, _)| n == "ports")
                .map(|(_, v)| v.parse().unwrap())
                .collect(),
        }),
        _ => {
            let _ = tcp.write_all(&json_answer(404, "{}")).await;
            return;
        }
    };
    let url = url.unwrap();
    let (addr, new_path) = super::spdy::split_url(&url);
    let mut up = TcpStream::connect(&addr).await.unwrap();
    let mut new_head = format!("{method} {new_path} HTTP/1.1\r\n");
    for l in lines {
        if l.to_ascii_lowercase().starts_with("upgrade:") {
            seen.lock().unwrap().push(l[8..].trim().to_string());
        }
        if l.to_ascii_lowercase().starts_with("host:") {
            new_head.push_str(&format!("Host: {addr}\r\n"));
        } else if !l.is_empty() {
            new_head.push_str(l);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("\r\n");
    up.write_all(new_head.as_bytes()).await.unwrap();
    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
}
