//! etcd access: connecting (with a clear error naming the endpoints), JSON reads and writes,
//! the hub's lease, and the watched cache of what sessions and the controller read.

pub mod batch;
pub mod cache;
pub mod fanout;
pub mod lease;

use std::time::Duration;

use anyhow::Context as _;
use etcd_client::{Client, ConnectOptions, GetOptions};
use serde::de::DeserializeOwned;

/// How long the first contact with etcd may take before startup fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connect to etcd and check it answers (a status call), so that a down etcd fails startup
/// with an error naming the endpoints instead of hanging.
pub async fn connect(endpoints: &[String]) -> anyhow::Result<Client> {
    let list = endpoints.join(",");
    let opts = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    let mut client = tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(endpoints, Some(opts)))
        .await
        .map_err(|_| anyhow::anyhow!("etcd at {list}: no answer within {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("etcd at {list}: cannot connect"))?;
    tokio::time::timeout(CONNECT_TIMEOUT, client.status())
        .await
        .map_err(|_| anyhow::anyhow!("etcd at {list}: no answer within {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("etcd at {list}: unreachable"))?;
    Ok(client)
}

/// A key's JSON value and its mod revision, or None when absent.
pub async fn get_json<T: DeserializeOwned>(
    etcd: &Client,
    key: &str,
) -> crate::Result<Option<(T, i64)>> {
    let mut c = etcd.clone();
    let resp = c.get(key, None).await.map_err(|e| unavailable(key, e))?;
    let Some(kv) = resp.kvs().first() else {
        return Ok(None);
    };
    let v = serde_json::from_slice(kv.value())
        .map_err(|e| crate::Error::Internal(format!("etcd key {key}: malformed JSON: {e}")))?;
    Ok(Some((v, kv.mod_revision())))
}

/// Every value under `prefix` with its key, parsed as JSON (malformed ones are skipped and
/// logged).
pub async fn list_json<T: DeserializeOwned>(
    etcd: &Client,
    prefix: &str,
) -> crate::Result<Vec<(String, T)>> {
    let mut c = etcd.clone();
    let resp = c
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| unavailable(prefix, e))?;
    let mut out = Vec::new();
    for kv in resp.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        match serde_json::from_slice(kv.value()) {
            Ok(v) => out.push((key, v)),
            Err(e) => tracing::warn!("etcd key {key}: malformed JSON skipped: {e}"),
        }
    }
    Ok(out)
}

/// An etcd failure on `what` as the crate's Unavailable error.
pub fn unavailable(what: &str, e: etcd_client::Error) -> crate::Error {
    crate::Error::Unavailable(format!("etcd ({what}): {e}"))
}

/// A value as JSON bytes.
pub fn to_json<T: serde::Serialize>(v: &T) -> crate::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| crate::Error::Internal(format!("JSON encoding: {e}")))
}
