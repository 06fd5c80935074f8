//! The CRI streaming server against real containers, through a SPDY/3.1 client and a
//! WebSocket client: exec (streams apart, exit code in the Status, stdin, terminal and
//! resize), attach, port forward into the container's network namespace, and tokens that are
//! single-use, expire, and cannot be forged.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use barge_stream::{
    AttachRequest, ExecRequest, PortForwardRequest, PortForwardTarget, StreamConfig,
};
use common::{env, env_with, json, spdy, ws};

fn cmd(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const V4: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
];

fn exec_req(id: &str, c: &[&str], stdin: bool, tty: bool) -> ExecRequest {
    ExecRequest {
        container_id: id.to_string(),
        cmd: cmd(c),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdy_exec_streams_and_exit_code() {
    let e = env().await;
    let id = e.run_d(&["bb", "sleep", "1000"]);
    let url = e
        .handle
        .exec_url(exec_req(
            &id,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            false,
            false,
        ))
        .unwrap();
    assert!(
        url.starts_with(&format!("http://{}/exec/", e.handle.addr())),
        "{url}"
    );
    let (mut c, answer) = spdy::connect(&url, V4)
        .await
        .unwrap_or_else(|a| panic!("{}", a.head));
    let head = answer.head.to_ascii_lowercase();
    assert!(head.contains("upgrade: spdy/3.1"), "{head}");
    assert!(
        head.contains("x-stream-protocol-version: v4.channel.k8s.io"),
        "{head}"
    );
    let err = c.open(&[("streamType", "error")]).await;
    let out = c.open(&[("streamType", "stdout")]).await;
    let errs = c.open(&[("streamType", "stderr")]).await;
    c.run_to_end().await;
    assert_eq!(c.replies, vec![err, out, errs]);
    assert_eq!(c.text(out), "out\n");
    assert_eq!(c.text(errs), "err\n");
    let st = json(c.data.get(&err).unwrap());
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["status"], "Failure", "{st}");
    assert_eq!(st["reason"], "NonZeroExitCode", "{st}");
    assert_eq!(st["details"]["causes"][0]["reason"], "ExitCode", "{st}");
    assert_eq!(st["details"]["causes"][0]["message"], "3", "{st}");
    for s in [err, out, errs] {
        assert_eq!(c.fin.get(&s), Some(&true), "stream {s} ended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdy_exec_stdin_through_cat() {
    let e = env().await;
    let id = e.run_d(&["bb", "sleep", "1000"]);
    let url = e
        .handle
        .exec_url(exec_req(&id, &["cat"], true, false))
        .unwrap();
    let (mut c, _) = spdy::connect(&url, V4)
        .await
        .unwrap_or_else(|a| panic!("{}", a.head));
    let err = c.open(&[("streamType", "error")]).await;
    let stdin = c.open(&[("streamType", "stdin")]).await;
    let out = c.open(&[("streamType", "stdout")]).await;
    let _ = c.open(&[("streamType", "stderr")]).await;
    let payload: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    c.send(stdin, b"hello\n", false).await;
    c.until_contains(out, "hello\n").await;
    c.send(stdin, &payload, true).await;
    c.run_to_end().await;
    let mut want = b"hello\n".to_vec();
    want.extend_from_slice(&payload);
    assert_eq!(c.data.get(&out).unwrap(), &want);
    assert_eq!(json(c.data.get(&err).unwrap())["status"], "Success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdy_exec_tty_and_resize() {
    let e = env().await;
    let id = e.run_d(&["bb", "sleep", "1000"]);
    let url = e
        .handle
        .exec_url(exec_req(&id, &["sh"], true, true))
        .unwrap();
    let (mut c, _) = spdy::connect(&url, V4)
        .await
        .unwrap_or_else(|a| panic!("{}", a.head));
    let err = c.open(&[("streamType", "error")]).await;
    let stdin = c.open(&[("streamType", "stdin")]).await;
    let out = c.open(&[("streamType", "stdout")]).await;
    let resize = c.open(&[("streamType", "resize")]).await;
    // Sizes and input are applied in the order sent.
    c.send(resize, br#"{"Width":123,"Height":45}"#, false).await;
    c.send(stdin, b"stty size; tty\n", false).await;
    c.until_contains(out, "45 123").await;
    c.send(resize, br#"{"Width":77,"Height":11}"#, false).await;
    c.send(stdin, b"stty size; exit 7\n", false).await;
    c.run_to_end().await;
    let text = c.text(out);
    assert!(text.contains("11 77"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "a terminal: {text:?}");
    // A terminal turns \n into \r\n.
    assert!(text.contains("45 123\r\n"), "{text:?}");
    let st = json(c.data.get(&err).unwrap());
    assert_eq!(st["details"]["causes"][0]["message"], "7", "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_exec_v5_v4_and_base64() {
    let e = env().await;
    let id = e.run_d(&["bb", "sleep", "1000"]);
    let script = &["sh", "-c", "echo out; echo err >&2; exit 3"];

    // v5 (kubectl's first choice): exit status as a Status on channel 3.
    let url = e
        .handle
        .exec_url(exec_req(&id, script, false, false))
        .unwrap();
    let mut c = ws::connect(&url, &["v5.channel.k8s.io", "v4.channel.k8s.io"])
        .await
        .unwrap();
    assert_eq!(c.protocol, "v5.channel.k8s.io");
    c.run_to_end().await;
    assert_eq!(c.text(1), "out\n");
    assert_eq!(c.text(2), "err\n");
    let st = json(&c.bytes(3));
    assert_eq!(st["reason"], "NonZeroExitCode", "{st}");
    assert_eq!(st["details"]["causes"][0]["message"], "3", "{st}");

    // v5 stdin and its close message (255, channel 0) ending cat's input.
    let url = e
        .handle
        .exec_url(exec_req(&id, &["cat"], true, false))
        .unwrap();
    let mut c = ws::connect(&url, &["v5.channel.k8s.io"]).await.unwrap();
    c.send(0, b"through websocket\n").await;
    c.until_contains(1, "through websocket\n").await;
    c.send(255, &[0]).await;
    c.run_to_end().await;
    assert_eq!(c.text(1), "through websocket\n");
    assert_eq!(json(&c.bytes(3))["status"], "Success");

    // v4 with a terminal and a resize on channel 4.
    let url = e
        .handle
        .exec_url(exec_req(&id, &["sh"], true, true))
        .unwrap();
    let mut c = ws::connect(&url, &["v4.channel.k8s.io"]).await.unwrap();
    c.send(4, br#"{"Width":99,"Height":33}"#).await;
    c.send(0, b"stty size; exit 0\n").await;
    c.run_to_end().await;
    assert!(c.text(1).contains("33 99"), "{:?}", c.text(1));
    assert_eq!(json(&c.bytes(3))["status"], "Success");

    // base64.channel.k8s.io (v1): text messages; the failure as text, nothing on success.
    let url = e
        .handle
        .exec_url(exec_req(&id, script, false, false))
        .unwrap();
    let mut c = ws::connect(&url, &["base64.channel.k8s.io"]).await.unwrap();
    assert!(!c.binary);
    c.run_to_end().await;
    assert_eq!(c.text(1), "out\n");
    assert_eq!(c.text(2), "err\n");
    assert!(c.text(3).contains("exit code"), "{:?}", c.text(3));
    let url = e
        .handle
        .exec_url(exec_req(&id, &["true"], false, false))
        .unwrap();
    let mut c = ws::connect(&url, &["base64.channel.k8s.io"]).await.unwrap();
    c.run_to_end().await;
    assert_eq!(c.text(3), "");

    // A program that cannot run: its message on stderr, 127 in the Status, as a runtime says.
    let url = e
        .handle
        .exec_url(exec_req(&id, &["/no/such/program"], false, false))
        .unwrap();
    let mut c = ws::connect(&url, &["v4.channel.k8s.io"]).await.unwrap();
    c.run_to_end().await;
    assert!(c.text(2).contains("/no/such/program"), "{:?}", c.text(2));
    let st = json(&c.bytes(3));
    assert_eq!(st["details"]["causes"][0]["message"], "127", "{st}");

    // A container that is not running: a Failure that says so.
    let stopped = e.run_d(&["bb", "true"]);
    assert!(common::wait_until(Duration::from_secs(10), || {
        e.store.inspect(&stopped, "{{.State.Running}}") == "false"
    }));
    let url = e
        .handle
        .exec_url(exec_req(&stopped, &["true"], false, false))
        .unwrap();
    let mut c = ws::connect(&url, &["v4.channel.k8s.io"]).await.unwrap();
    c.run_to_end().await;
    let st = json(&c.bytes(3));
    assert_eq!(st["status"], "Failure", "{st}");
    assert!(
        st["message"].as_str().unwrap().contains("not running"),
        "{st}"
    );

    // No protocol in common: refused, nothing run.
    let before = e.exec_records(&id);
    let url = e
        .handle
        .exec_url(exec_req(&id, &["true"], false, false))
        .unwrap();
    assert_eq!(
        ws::connect(&url, &["v9.channel.k8s.io"]).await.err(),
        Some(403)
    );
    assert_eq!(e.exec_records(&id), before);
}

const LOOP: &str =
    "echo ready; while read l; do echo \"got $l\"; echo \"err $l\" >&2; done; echo bye; exit 5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_to_a_running_container() {
    let e = env().await;
    // SPDY, without stdin_once: the end of the client's stdin leaves the container's open.
    let id = e.run_d(&["-i", "bb", "sh", "-c", LOOP]);
    let req = AttachRequest {
        container_id: id.clone(),
        stdin: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let url = e.handle.attach_url(req.clone()).unwrap();
    let (mut c, _) = spdy::connect(&url, V4)
        .await
        .unwrap_or_else(|a| panic!("{}", a.head));
    let _err = c.open(&[("streamType", "error")]).await;
    let stdin = c.open(&[("streamType", "stdin")]).await;
    let out = c.open(&[("streamType", "stdout")]).await;
    let errs = c.open(&[("streamType", "stderr")]).await;
    c.send(stdin, b"one\n", true).await;
    c.until_contains(out, "got one\n").await;
    c.until_contains(errs, "err one\n").await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async { while c.step().await {} }).await;
    assert!(!c.text(out).contains("bye"), "{:?}", c.text(out));
    assert_eq!(e.store.inspect(&id, "{{.State.Running}}"), "true");
    drop(c);

    // WebSocket, stdin_once: the end of the client's stdin ends the container's.
    let id = e.run_d(&["-i", "bb", "sh", "-c", LOOP]);
    let url = e
        .handle
        .attach_url(AttachRequest {
            container_id: id.clone(),
            stdin_once: true,
            ..req
        })
        .unwrap();
    let mut c = ws::connect(&url, &["v5.channel.k8s.io"]).await.unwrap();
    c.send(0, b"two\n").await;
    c.until_contains(1, "got two\n").await;
    c.send(255, &[0]).await;
    c.run_to_end().await;
    assert!(c.text(1).contains("bye\n"), "{:?}", c.text(1));
    assert!(c.text(2).contains("err two\n"), "{:?}", c.text(2));
    let st = json(&c.bytes(3));
    assert_eq!(st["details"]["causes"][0]["message"], "5", "{st}");
}

/// A container serving HTTP on its own loopback only.
fn httpd(e: &common::Env) -> String {
    let id = e.run_d(&[
        "bb",
        "sh",
        "-c",
        "mkdir -p /tmp/w && echo hello-from-the-pod > /tmp/w/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/w",
    ]);
    assert!(
        common::wait_until(Duration::from_secs(10), || {
            e.sh(&id, "wget -qO- http://127.0.0.1:8080/")
                .status
                .success()
        }),
        "httpd up in the container"
    );
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdy_port_forward_into_the_container_netns() {
    let e = env().await;
    let id = httpd(&e);
    let url = e
        .handle
        .portforward_url(PortForwardRequest {
            target: PortForwardTarget::Container(id.clone()),
            ports: vec![8080],
        })
        .unwrap();
    let (mut c, answer) = spdy::connect(&url, &["portforward.k8s.io"])
        .await
        .unwrap_or_else(|a| panic!("{}", a.head));
    assert!(answer
        .head
        .to_ascii_lowercase()
        .contains("x-stream-protocol-version: portforward.k8s.io"));
    // Two connections on one session, as kubectl port-forward makes them.
    for rid in ["0", "1"] {
        let err = c
            .open(&[
                ("streamType", "error"),
                ("port", "8080"),
                ("requestID", rid),
            ])
            .await;
        let data = c
            .open(&[("streamType", "data"), ("port", "8080"), ("requestID", rid)])
            .await;
        c.send(data, b"GET / HTTP/1.0\r\n\r\n", true).await;
        let r = tokio::time::timeout(Duration::from_secs(30), async {
            while c.fin.get(&data) != Some(&true) {
                assert!(c.step().await);
            }
        })
        .await;
        assert!(r.is_ok(), "data stream ended");
        let text = c.text(data);
        assert!(
            text.starts_with("HTTP/1.") && text.contains("hello-from-the-pod"),
            "{text}"
        );
        assert_eq!(c.text(err), "");
    }
    // A closed port: the error stream says so.
    let err = c
        .open(&[
            ("streamType", "error"),
            ("port", "8081"),
            ("requestID", "2"),
        ])
        .await;
    let _data = c
        .open(&[("streamType", "data"), ("port", "8081"), ("requestID", "2")])
        .await;
    c.until_contains(err, "refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_port_forward_into_the_netns_file() {
    let e = env().await;
    let id = httpd(&e);
    let netns = e.store.runroot().join("netns").join(&id);
    assert!(netns.exists(), "{}", netns.display());
    let url = e
        .handle
        .portforward_url(PortForwardRequest {
            target: PortForwardTarget::Netns(netns),
            ports: vec![8080],
        })
        .unwrap();
    let mut c = ws::connect(&url, &["v4.portforward.k8s.io"]).await.unwrap();
    assert_eq!(c.protocol, "v4.portforward.k8s.io");
    c.send(0, b"GET / HTTP/1.0\r\n\r\n").await;
    c.run_to_end().await;
    let data = c.messages.get(&0).unwrap();
    let err = c.messages.get(&1).unwrap();
    // Each channel starts with the port, little-endian.
    assert_eq!(data[0], 8080u16.to_le_bytes());
    assert_eq!(err[0], 8080u16.to_le_bytes());
    let body = String::from_utf8_lossy(&data[1..].concat()).into_owned();
    assert!(body.contains("hello-from-the-pod"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_single_use_unforgeable_and_expire() {
    let e = env().await;
    let id = e.run_d(&["bb", "sleep", "1000"]);
    let count = || {
        let o = e.sh(&id, "cat /tmp/count 2>/dev/null | wc -l");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let url = e
        .handle
        .exec_url(exec_req(
            &id,
            &["sh", "-c", "echo x >> /tmp/count"],
            false,
            false,
        ))
        .unwrap();
    let (mut c, _) = spdy::connect(&url, V4)
        .await
        .unwrap_or_else(|a| panic!("{}", a.head));
    let err = c.open(&[("streamType", "error")]).await;
    let _ = c.open(&[("streamType", "stdout")]).await;
    let _ = c.open(&[("streamType", "stderr")]).await;
    c.run_to_end().await;
    assert_eq!(json(c.data.get(&err).unwrap())["status"], "Success");
    assert_eq!(count(), "1");
    let records = e.exec_records(&id);

    // Reused (both protocols), forged, and a bad upgrade that still spends the token.
    assert_eq!(spdy::connect(&url, V4).await.err().unwrap().status, 404);
    assert_eq!(
        ws::connect(&url, &["v4.channel.k8s.io"]).await.err(),
        Some(404)
    );
    let forged = url.rsplit_once('/').unwrap().0.to_string() + "/" + &"0".repeat(64);
    assert_eq!(spdy::connect(&forged, V4).await.err().unwrap().status, 404);
    let url2 = e
        .handle
        .exec_url(exec_req(
            &id,
            &["sh", "-c", "echo x >> /tmp/count"],
            false,
            false,
        ))
        .unwrap();
    let (_, a) = spdy::request(&url2, &[]).await;
    assert_eq!(a.status, 400, "{}", a.head);
    assert_eq!(spdy::connect(&url2, V4).await.err().unwrap().status, 404);
    // A token for exec is not one for attach.
    let url3 = e
        .handle
        .exec_url(exec_req(&id, &["true"], false, false))
        .unwrap();
    let as_attach = url3.replace("/exec/", "/attach/");
    assert_eq!(
        spdy::connect(&as_attach, V4).await.err().unwrap().status,
        400
    );
    // No protocol in common.
    let url4 = e
        .handle
        .exec_url(exec_req(&id, &["true"], false, false))
        .unwrap();
    assert_eq!(
        spdy::connect(&url4, &["v9.channel.k8s.io"])
            .await
            .err()
            .unwrap()
            .status,
        403
    );

    // Expired.
    let e2 = env_with(StreamConfig {
        token_ttl: Duration::ZERO,
        ..StreamConfig::default()
    })
    .await;
    let id2 = e2.run_d(&["bb", "sleep", "1000"]);
    let url = e2
        .handle
        .exec_url(exec_req(
            &id2,
            &["sh", "-c", "echo x >> /tmp/count"],
            false,
            false,
        ))
        .unwrap();
    assert_eq!(spdy::connect(&url, V4).await.err().unwrap().status, 404);
    assert_eq!(e2.exec_records(&id2), 0);

    // Nothing ran for any of them.
    assert_eq!(e.exec_records(&id), records, "no exec was created");
    assert_eq!(count(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_no_url() {
    let e = env().await;
    let h = &e.handle;
    let bad = |r: Result<String, barge_stream::StreamError>| {
        assert!(
            matches!(r, Err(barge_stream::StreamError::Invalid(_))),
            "{r:?}"
        )
    };
    bad(h.exec_url(ExecRequest {
        container_id: "c".into(),
        cmd: cmd(&["true"]),
        ..Default::default()
    }));
    bad(h.exec_url(ExecRequest {
        container_id: "c".into(),
        cmd: cmd(&["true"]),
        tty: true,
        stderr: true,
        stdout: true,
        ..Default::default()
    }));
    bad(h.exec_url(ExecRequest {
        container_id: "c".into(),
        stdout: true,
        ..Default::default()
    }));
    bad(h.portforward_url(PortForwardRequest {
        target: PortForwardTarget::Container("c".into()),
        ports: vec![0],
    }));

    // After shutdown nobody listens.
    let addr = h.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    h.shutdown();
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "still listening on {addr} after shutdown");
}

/// The processes of container `id` whose command line is `cmd` (seen from inside).
fn processes(e: &common::Env, id: &str, cmd: &str) -> usize {
    let o = e.sh(id, "ps -o args");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.trim() == cmd)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_leaves_nothing_running() {
    let e = env().await;
    let id = e.run_d(&["bb", "sleep", "1000"]);
    // SPDY and WebSocket clients hang up in the middle of an exec: the process is hung up.
    let url = e
        .handle
        .exec_url(exec_req(
            &id,
            &["sh", "-c", "echo started; exec sleep 999"],
            false,
            false,
        ))
        .unwrap();
    let (mut c, _) = spdy::connect(&url, V4)
        .await
        .unwrap_or_else(|a| panic!("{}", a.head));
    let _ = c.open(&[("streamType", "error")]).await;
    let out = c.open(&[("streamType", "stdout")]).await;
    let _ = c.open(&[("streamType", "stderr")]).await;
    c.until_contains(out, "started").await;
    let url = e
        .handle
        .exec_url(exec_req(
            &id,
            &["sh", "-c", "echo started; exec sleep 998"],
            true,
            true,
        ))
        .unwrap();
    let mut w = ws::connect(&url, &["v5.channel.k8s.io"]).await.unwrap();
    w.until_contains(1, "started").await;
    assert_eq!(processes(&e, &id, "sleep 999"), 1);
    assert_eq!(processes(&e, &id, "sleep 998"), 1);
    drop(c);
    drop(w);
    assert!(
        common::wait_until(Duration::from_secs(20), || {
            processes(&e, &id, "sleep 999") + processes(&e, &id, "sleep 998") == 0
        }),
        "the execs of gone clients still run"
    );

    // A SPDY client that never opens all its streams: the session never starts.
    let e2 = env_with(StreamConfig {
        stream_creation_timeout: Duration::from_millis(500),
        ..StreamConfig::default()
    })
    .await;
    let id2 = e2.run_d(&["bb", "sleep", "1000"]);
    let url = e2
        .handle
        .exec_url(exec_req(&id2, &["sleep", "997"], false, false))
        .unwrap();
    let (mut c, _) = spdy::connect(&url, V4)
        .await
        .unwrap_or_else(|a| panic!("{}", a.head));
    let _ = c.open(&[("streamType", "error")]).await;
    // The server gives up and closes the connection.
    c.run_to_end().await;
    assert_eq!(e2.exec_records(&id2), 0);
    assert_eq!(processes(&e2, &id2, "sleep 997"), 0);
}
