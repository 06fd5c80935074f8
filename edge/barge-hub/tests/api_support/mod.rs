//! Test harness: a hub on a real etcd (`common::Etcd`, one per test) with the fleet API
//! served on a loopback port, and an HTTP client.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use barge_hub::hub::Hub;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;

// The etcd fixture is hub-core's test harness (`tests/common`), shared.
#[path = "../common/mod.rs"]
mod common;
pub use common::Etcd;

/// A hub started the way `barge-hub` starts (`run::start`: edge listener, controller, fleet
/// API, admin.conf) on `etcd` with key prefix `prefix`, state in `state_dir`, loopback ports.
/// `key_file`: the fleet's CA sealing key (a second hub of a fleet needs the first's).
pub async fn start_hub(
    etcd: &Etcd,
    prefix: &str,
    state_dir: &Path,
    key_file: Option<&Path>,
) -> Arc<Hub> {
    use clap::Parser;
    let mut args = vec![
        "barge-hub".to_string(),
        "--etcd".into(),
        etcd.url.clone(),
        "--etcd-prefix".into(),
        prefix.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--api".into(),
        "127.0.0.1:0".into(),
        // Plain HTTP with a bearer token (`api_tls.rs` covers https and client certificates).
        "--api-insecure-http".into(),
        "--state-dir".into(),
        state_dir.to_str().unwrap().into(),
    ];
    if let Some(k) = key_file {
        args.push("--key-file".into());
        args.push(k.to_str().unwrap().into());
    }
    let config = barge_hub::config::Config::parse_from(args);
    barge_hub::run::start(config).await.unwrap().hub
}

/// A hub (see [`start_hub`]) and its API: URL and the admin token from admin.conf.
pub async fn hub_api(etcd: &Etcd, prefix: &str, state_dir: &Path) -> (Arc<Hub>, String, String) {
    let hub = start_hub(etcd, prefix, state_dir, None).await;
    let conf: Value =
        serde_json::from_slice(&std::fs::read(state_dir.join("admin.conf")).unwrap()).unwrap();
    let token = conf["token"].as_str().unwrap_or("").to_string();
    (hub.clone(), hub.api_url.clone(), token)
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
