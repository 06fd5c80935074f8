//! ServiceBus (issue 18): the cloud calls an HTTP service on an edge through the hub. A
//! busybox httpd pod (a page the pod writes, a CGI that echoes the POST body) answers
//! `barge fleet proxy` and raw HTTP on the hub's proxy URLs, through the pod's IP and
//! through a host port; a few MB go both ways intact; with two hubs, the hub without the
//! node's session forwards; unknown node 404, nothing listening 502 naming the target, no
//! token 401, node offline 503.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use barge_edge_e2e::util::{free_port, poll};
use barge_edge_e2e::{Fleet, Hub, HubOptions};
use barge_edge_proto::token::sha256_hex;
use common::{hub_options, wait_pods, Cloud};

/// The httpd pod: `/index.html` says `hello from NAME`, `/cgi-bin/echo` answers the POST
/// body; port 8080 on the pod, published on `host_port`.
fn httpd_pod(name: &str, node: &str, host_port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  containers:
  - name: main
    image: bb
    imagePullPolicy: Never
    ports:
    - containerPort: 8080
      hostPort: {host_port}
      hostIP: 127.0.0.1
    command:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin
      echo "hello from {name}" > /www/index.html
      printf '#!/bin/sh\necho "Content-Type: application/octet-stream"\necho\nexec head -c "$CONTENT_LENGTH"\n' > /www/cgi-bin/echo
      chmod +x /www/cgi-bin/echo
      exec httpd -f -p 8080 -h /www
"#
    )
}

/// One raw HTTP/1.0 request to `addr`: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("not HTTP: {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (code, buf[end + 4..].to_vec())
}

fn api_addr(hub: &Hub) -> SocketAddr {
    hub.api_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// `size` pseudo-random bytes (xorshift), different for each `seed`.
fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Start the httpd pod on `node` and wait until it answers through `fleet proxy`.
fn start_httpd(cloud: &Cloud, fleet: &Fleet, name: &str, node: &str, host_port: u16) {
    cloud.fleet.apply(&httpd_pod(name, node, host_port));
    wait_pods(
        &cloud.fleet,
        Duration::from_secs(60),
        "httpd Running",
        |r| {
            r.iter()
                .any(|p| p.name == name && p.phase == "Running" && p.node == node)
        },
    );
    let target = format!("pod/{name}:8080");
    let mut last = String::new();
    let page = poll(Duration::from_secs(20), || {
        let o = fleet.run(&["proxy", &target, "/index.html"]);
        last = format!("{o:?}");
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert_eq!(
        page.as_deref(),
        Some(format!("hello from {name}\n").as_str()),
        "fleet proxy {target} /index.html: {last}\nhub:\n{}",
        cloud.hub.log()
    );
}

#[test]
fn an_httpd_pod_on_an_edge_answers_through_the_hub() {
    // Raw HTTP to the API below: plain HTTP (`barge fleet proxy` is also run against it).
    let cloud = Cloud::with(HubOptions {
        insecure_http: true,
        ..hub_options()
    });
    let mut a = cloud.device("edge-s", &[], None);
    cloud.wait_ready(&mut a);
    let hp = free_port();
    start_httpd(&cloud, &cloud.fleet, "web", "edge-s", hp);
    let api = api_addr(&cloud.hub);
    let token = cloud.hub.admin_conf().token.unwrap();
    let tok = Some(token.as_str());

    // The same page through the device's host port (NODE:PORT).
    let node_target = format!("edge-s:{hp}");
    let out = cloud.fleet.ok(&["proxy", &node_target, "/index.html"]);
    assert_eq!(out, "hello from web\n");
    // -i: the status line and the service's headers first.
    let out = cloud
        .fleet
        .ok(&["proxy", "-i", "pod/web:8080", "/index.html"]);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("\r\n\r\nhello from web\n"), "{out}");

    // Raw HTTP on the hub's proxy URLs: the pod's, the node's, and the issue's short form.
    for path in [
        "/api/v1/namespaces/default/pods/web/proxy/8080/index.html".to_string(),
        format!("/api/v1/nodes/edge-s/proxy/{hp}/index.html"),
        format!("/nodes/edge-s/proxy/{hp}/index.html"),
    ] {
        let (code, body) = http(api, "GET", &path, tok, b"");
        assert_eq!(
            (code, String::from_utf8_lossy(&body).as_ref()),
            (200, "hello from web\n"),
            "GET {path}"
        );
    }

    // POST bodies reach the service (the CGI echoes them), through the CLI and raw.
    let out = cloud.fleet.ok(&[
        "proxy",
        "pod/web:8080",
        "/cgi-bin/echo",
        "-d",
        "posted-through-the-tunnel",
    ]);
    assert_eq!(out, "posted-through-the-tunnel");
    let (code, body) = http(
        api,
        "POST",
        &format!("/api/v1/nodes/edge-s/proxy/{hp}/cgi-bin/echo"),
        tok,
        b"raw-post-via-host-port",
    );
    assert_eq!(
        (code, body.as_slice()),
        (200, &b"raw-post-via-host-port"[..])
    );

    // A few MB both ways, intact.
    let big = noise(3 << 20, 0x5eed);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &big).unwrap();
    let data = format!("@{}", file.display());
    let o = cloud
        .fleet
        .run(&["proxy", "pod/web:8080", "/cgi-bin/echo", "-d", &data]);
    assert!(
        o.status.success(),
        "{:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.stdout.len(), big.len(), "echoed size");
    assert_eq!(
        sha256_hex(&o.stdout),
        sha256_hex(&big),
        "echoed bytes differ"
    );
    let (code, body) = http(
        api,
        "POST",
        "/api/v1/namespaces/default/pods/web/proxy/8080/cgi-bin/echo",
        tok,
        &big,
    );
    assert_eq!(code, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&big), "raw echo differs");

    // Errors: unknown node and pod 404; nothing listening 502 naming the target; no token
    // 401; the service's own 404 passes through and makes `fleet proxy` exit 1.
    let (code, _) = http(api, "GET", "/api/v1/nodes/edge-nope/proxy/80/", tok, b"");
    assert_eq!(code, 404, "unknown node");
    let o = cloud.fleet.run(&["proxy", "edge-nope:80", "/"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("404"), "{o:?}");
    let (code, _) = http(
        api,
        "GET",
        "/api/v1/namespaces/default/pods/nope/proxy/80/",
        tok,
        b"",
    );
    assert_eq!(code, 404, "unknown pod");
    let dead = free_port();
    let (code, body) = http(
        api,
        "GET",
        &format!("/nodes/edge-s/proxy/{dead}/"),
        tok,
        b"",
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, 502, "{body}");
    assert!(body.contains(&format!("127.0.0.1:{dead}")), "{body}");
    let o = cloud.fleet.run(&["proxy", "pod/web:8081", "/"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("502") && err.contains(":8081"), "{err}");
    let (code, _) = http(
        api,
        "GET",
        "/api/v1/namespaces/default/pods/web/proxy/8080/index.html",
        None,
        b"",
    );
    assert_eq!(code, 401, "no Authorization");
    let o = cloud.fleet.run(&["proxy", "pod/web:8080", "/missing.html"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("404"), "{o:?}");

    // The node goes offline: 503.
    a.kill();
    let mut last = (0, Vec::new());
    let offline = poll(Duration::from_secs(20), || {
        last = http(
            api,
            "GET",
            &format!("/nodes/edge-s/proxy/{hp}/index.html"),
            tok,
            b"",
        );
        (last.0 == 503).then_some(())
    });
    assert!(
        offline.is_some(),
        "offline node: {} {}",
        last.0,
        String::from_utf8_lossy(&last.1)
    );
}

#[test]
fn the_hub_without_the_session_forwards_the_request() {
    // Raw HTTP to the API below: plain HTTP (`barge fleet proxy` is also run against it).
    let cloud = Cloud::with(HubOptions {
        insecure_http: true,
        ..hub_options()
    });
    let hub2 = Hub::start(
        &cloud.etcd,
        HubOptions {
            key_file: Some(cloud.hub.default_key_file()),
            insecure_http: true,
            ..hub_options()
        },
    );
    let fleet2 = cloud.fleet.with_server(&hub2.api_url());
    let mut a = cloud.device("edge-t", &[], None);
    cloud.wait_ready(&mut a);
    start_httpd(&cloud, &cloud.fleet, "web2", "edge-t", free_port());
    // Through both hubs: one of them holds the session, the other forwards.
    let token = cloud.hub.admin_conf().token.unwrap();
    let body = noise(1 << 20, 7);
    for (hub, fleet) in [(&cloud.hub, &cloud.fleet), (&hub2, &fleet2)] {
        let out = fleet.ok(&["proxy", "pod/web2:8080", "/index.html"]);
        assert_eq!(out, "hello from web2\n", "through {}", hub.api_url());
        let (code, echoed) = http(
            api_addr(hub),
            "POST",
            "/api/v1/namespaces/default/pods/web2/proxy/8080/cgi-bin/echo",
            Some(&token),
            &body,
        );
        assert_eq!(code, 200, "through {}", hub.api_url());
        assert_eq!(
            sha256_hex(&echoed),
            sha256_hex(&body),
            "through {}",
            hub.api_url()
        );
        let (code, msg) = http(
            api_addr(hub),
            "GET",
            "/nodes/edge-t/proxy/1/",
            Some(&token),
            b"",
        );
        assert_eq!(code, 502, "{}", String::from_utf8_lossy(&msg));
    }
    drop(a);
}
