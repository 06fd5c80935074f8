//! Test harness: a real etcd per test (free loopback ports, temp data dir, killed on drop),
//! a hub on it with the fleet API served on a loopback port, and an HTTP client.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barge_hub::hub::Hub;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running etcd; killed (and its data dir removed) on drop.
pub struct Etcd {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub async fn start() -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (p, q) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{p}");
        let peer = format!("http://127.0.0.1:{q}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("default={peer}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd (Debian etcd-server)");
        let etcd = Etcd {
            child,
            url,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = etcd_client::Client::connect([etcd.url.as_str()], None).await {
                if c.get("probe", None).await.is_ok() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not come up on {}",
                etcd.url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        etcd
    }

    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.url.as_str()], None)
            .await
            .unwrap()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub (API side only) on `etcd` with key prefix `prefix`, state in `state_dir`.
pub async fn hub(etcd: &Etcd, prefix: &str, state_dir: &Path, grace: u64) -> Arc<Hub> {
    use clap::Parser;
    let api_port = free_port();
    let config = barge_hub::config::Config::parse_from([
        "barge-hub",
        "--etcd",
        &etcd.url,
        "--etcd-prefix",
        prefix,
        "--listen",
        "127.0.0.1:0",
        "--api",
        &format!("127.0.0.1:{api_port}"),
        "--state-dir",
        state_dir.to_str().unwrap(),
        "--node-grace-secs",
        &grace.to_string(),
    ]);
    Arc::new(Hub {
        config,
        id: format!("test-{api_port}"),
        prefix: prefix.to_string(),
        etcd: etcd.client().await,
        tunnels: Default::default(),
    })
}

/// The fleet API of `hub` on a loopback port (admin.conf made first). Returns its URL and
/// the admin token from admin.conf.
pub async fn serve(hub: Arc<Hub>) -> (String, String) {
    barge_hub::admin::ensure(&hub).await.unwrap();
    let conf: Value =
        serde_json::from_slice(&std::fs::read(hub.config.state_dir.join("admin.conf")).unwrap())
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(barge_hub::api::serve(hub, listener));
    (url, conf["token"].as_str().unwrap_or("").to_string())
}

/// One HTTP request with a real client: status, headers and the body as JSON (or as a
/// JSON string when it is not JSON).
pub async fn call(
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut b = Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Full::new(Bytes::from(v.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = client.request(b.body(body).unwrap()).await.unwrap();
    let code = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (code, headers, v)
}

/// A Kubernetes Status error with this code and reason.
pub fn assert_status(code: StatusCode, v: &Value, want: u16, reason: &str) {
    assert_eq!(code.as_u16(), want, "{v}");
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["status"], "Failure", "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert_eq!(v["code"], want, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

/// The raw value and mod revision of a key.
pub async fn etcd_get(c: &mut etcd_client::Client, key: &str) -> Option<(Vec<u8>, i64)> {
    let r = c.get(key, None).await.unwrap();
    r.kvs()
        .first()
        .map(|kv| (kv.value().to_vec(), kv.mod_revision()))
}

pub async fn etcd_put(c: &mut etcd_client::Client, key: &str, v: &Value) {
    c.put(key, v.to_string(), None).await.unwrap();
}
