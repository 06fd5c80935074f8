//! The real `kubectl` (1.32) as the client of the streaming server, through a stand-in for the
//! API server and kubelet that proxies its upgrade to the URL the server hands out (as kubelet
//! does with the CRI's URL): `kubectl exec` over WebSocket (v5, kubectl's default) and over
//! SPDY (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`) gets the output on the right streams and
//! exits with the command's code; `kubectl port-forward` over SPDY reaches a server on the
//! container's loopback. `$BARGE_TEST_KUBECTL` or `kubectl` on PATH.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use barge_testutil::{exec_bounded, net};
use common::apiserver::{ApiServer, POD};
use common::env;

fn kubectl(api: &ApiServer, home: &std::path::Path, args: &[&str]) -> Command {
    let bin = std::env::var("BARGE_TEST_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut c = Command::new(bin);
    c.env("HOME", home)
        .env("KUBECONFIG", home.join("no-config"))
        .arg("--server")
        .arg(&api.url)
        .args(args);
    c
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_over_websocket_and_spdy() {
    let e = env().await;
    let id = e.run_d(&["bb", "sleep", "1000"]);
    let api = ApiServer::start(e.handle.clone(), id.clone()).await;
    let home = tempfile::tempdir().unwrap();
    for (websockets, upgrade) in [("true", "websocket"), ("false", "SPDY/3.1")] {
        let mut c = kubectl(
            &api,
            home.path(),
            &[
                "exec",
                POD,
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
        );
        c.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets);
        let o = blocking(move || exec_bounded(c, Duration::from_secs(60))).await;
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert_eq!(
            o.status.code(),
            Some(3),
            "{upgrade}: stdout {out:?} stderr {err:?}"
        );
        assert_eq!(out, "out\n", "{upgrade}: stderr {err:?}");
        assert!(err.starts_with("err\n"), "{upgrade}: {err:?}");
        assert!(err.contains("exit code 3"), "{upgrade}: {err:?}");
        assert_eq!(api.upgrades.lock().unwrap().last().unwrap(), upgrade);

        // stdin through cat.
        let input = home.path().join("input");
        std::fs::write(&input, "hello kubectl\n").unwrap();
        let mut c = kubectl(&api, home.path(), &["exec", "-i", POD, "--", "cat"]);
        c.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets)
            .stdin(std::fs::File::open(&input).unwrap());
        let o = blocking(move || exec_bounded(c, Duration::from_secs(60))).await;
        assert!(
            o.status.success(),
            "{upgrade}: {:?}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "hello kubectl\n",
            "{upgrade}"
        );

        // 2 MB of output: more than SPDY's initial 64 KiB window many times over.
        let mut c = kubectl(
            &api,
            home.path(),
            &[
                "exec",
                POD,
                "--",
                "sh",
                "-c",
                "yes 0123456789abcdef | head -c 2000000",
            ],
        );
        c.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets);
        let o = blocking(move || exec_bounded(c, Duration::from_secs(120))).await;
        assert!(
            o.status.success(),
            "{upgrade}: {:?}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout.len(), 2_000_000, "{upgrade}");
        assert!(o
            .stdout
            .starts_with(b"0123456789abcdef\n0123456789abcdef\n"));
    }
}

const LOOP: &str = "while read l; do echo \"got $l\"; done; echo bye; exit 5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_attach() {
    let e = env().await;
    let api = ApiServer::start(e.handle.clone(), String::new()).await;
    let home = tempfile::tempdir().unwrap();
    let input = home.path().join("input");
    std::fs::write(&input, "one\ntwo\n").unwrap();
    for (websockets, upgrade) in [("false", "SPDY/3.1"), ("true", "websocket")] {
        // The pod's container is stdinOnce: the end of kubectl's input ends it.
        let id = e.run_d(&["-i", "bb", "sh", "-c", LOOP]);
        *api.container.lock().unwrap() = id.clone();
        let mut c = kubectl(&api, home.path(), &["attach", "-i", POD]);
        c.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets)
            .stdin(std::fs::File::open(&input).unwrap());
        let o = blocking(move || exec_bounded(c, Duration::from_secs(60))).await;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(out, "got one\ngot two\nbye\n", "{upgrade}: {err}");
        assert_eq!(o.status.code(), Some(5), "{upgrade}: {err}");
        assert_eq!(api.upgrades.lock().unwrap().last().unwrap(), upgrade);
        assert!(common::wait_until(Duration::from_secs(10), || {
            e.store.inspect(&id, "{{.State.Running}}") == "false"
        }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_over_spdy() {
    let e = env().await;
    let id = e.run_d(&[
        "bb",
        "sh",
        "-c",
        "mkdir -p /tmp/w && echo hello-kubectl > /tmp/w/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/w",
    ]);
    assert!(common::wait_until(Duration::from_secs(10), || {
        e.sh(&id, "wget -qO- http://127.0.0.1:8080/")
            .status
            .success()
    }));
    let api = ApiServer::start(e.handle.clone(), id.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let local = net::free_port();
    let mut c = kubectl(
        &api,
        home.path(),
        &["port-forward", POD, &format!("{local}:8080")],
    );
    c.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = blocking(move || {
        let mut line = String::new();
        let mut r = BufReader::new(stdout);
        let _ = r.read_line(&mut line);
        // Keep reading what kubectl says (a closed pipe would end it).
        std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
        line
    })
    .await;
    let got = if ready.contains("Forwarding from") {
        // Two connections in turn, each its own stream pair.
        let a = blocking(move || net::http_get(local)).await;
        let b = blocking(move || net::http_get(local)).await;
        Some((a, b))
    } else {
        None
    };
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let (a, b) = got.unwrap_or_else(|| panic!("kubectl port-forward: {ready:?} {err}"));
    assert_eq!(a.as_deref(), Some("hello-kubectl\n"), "{err}");
    assert_eq!(b.as_deref(), Some("hello-kubectl\n"), "{err}");
    assert_eq!(api.upgrades.lock().unwrap().as_slice(), ["SPDY/3.1"]);
    let _ = std::io::stderr().flush();
}

/// `kubectl exec -it` from a terminal (`script` gives it one, sized 40x100 first): the
/// process gets a terminal of kubectl's size (sent on the resize stream / channel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_with_a_terminal() {
    let e = env().await;
    let id = e.run_d(&["bb", "sleep", "1000"]);
    let api = ApiServer::start(e.handle.clone(), id.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let bin = std::env::var("BARGE_TEST_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    for (websockets, upgrade) in [("false", "SPDY/3.1"), ("true", "websocket")] {
        let inner = format!(
            "stty rows 40 cols 100; {bin} --server {} exec -it {POD} -- sh -c 'tty; stty size; exit 4'",
            api.url
        );
        let mut c = Command::new("script");
        c.args(["-qec", &inner, "/dev/null"])
            .env("HOME", home.path())
            .env("KUBECONFIG", home.path().join("no-config"))
            .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets)
            .stdin(Stdio::null());
        let o = blocking(move || exec_bounded(c, Duration::from_secs(60))).await;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(out.contains("/dev/pts/"), "{upgrade}: {out:?}");
        assert!(out.contains("40 100\r\n"), "{upgrade}: {out:?}");
        assert_eq!(o.status.code(), Some(4), "{upgrade}: {out:?}");
        assert_eq!(api.upgrades.lock().unwrap().last().unwrap(), upgrade);
    }
}
