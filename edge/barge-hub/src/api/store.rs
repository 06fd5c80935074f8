//! The API's etcd reads and writes: keys under the hub's prefix
//! ([`barge_edge_proto::keys`]), JSON values, compare-and-swap on mod revisions.

use barge_edge_proto::keys;
use barge_edge_proto::object::{Kind, Object};
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use serde::de::DeserializeOwned;

use super::error::{etcd, ApiError, ApiResult};
use super::Api;

/// What a conditional write expects of the key.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// The key does not exist.
    Absent,
    /// The key was last changed at this revision.
    ModRevision(i64),
}

impl Expect {
    fn compare(self, key: &str) -> Compare {
        match self {
            Expect::Absent => Compare::create_revision(key, CompareOp::Equal, 0),
            Expect::ModRevision(r) => Compare::mod_revision(key, CompareOp::Equal, r),
        }
    }
}

/// One key's value and mod revision.
pub async fn get_raw(api: &Api, key: &str) -> ApiResult<Option<(Vec<u8>, i64)>> {
    let resp = api
        .etcd
        .kv_client()
        .get(key, None)
        .await
        .map_err(|e| etcd(&format!("get {key}"), e))?;
    Ok(resp
        .kvs()
        .first()
        .map(|kv| (kv.value().to_vec(), kv.mod_revision())))
}

/// Every key under `prefix`: (key without the prefix, value, mod revision), and the store's
/// revision at the read.
pub async fn list_raw(api: &Api, prefix: &str) -> ApiResult<(Vec<(String, Vec<u8>, i64)>, i64)> {
    let resp = api
        .etcd
        .kv_client()
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| etcd(&format!("list {prefix}"), e))?;
    let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
    let items = resp
        .kvs()
        .iter()
        .map(|kv| {
            let key = String::from_utf8_lossy(kv.key());
            let rest = key.strip_prefix(prefix).unwrap_or(&key).to_string();
            (rest, kv.value().to_vec(), kv.mod_revision())
        })
        .collect();
    Ok((items, rev))
}

/// A JSON record, or None when absent.
pub async fn get_json<T: DeserializeOwned>(api: &Api, key: &str) -> ApiResult<Option<T>> {
    match get_raw(api, key).await? {
        None => Ok(None),
        Some((v, _)) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| ApiError::internal(format!("etcd key {key}: malformed record: {e}"))),
    }
}

/// Every JSON record under `prefix`, by key suffix (malformed ones are logged and skipped).
pub async fn list_json<T: DeserializeOwned>(
    api: &Api,
    prefix: &str,
) -> ApiResult<Vec<(String, T)>> {
    let (items, _) = list_raw(api, prefix).await?;
    Ok(items
        .into_iter()
        .filter_map(|(k, v, _)| match serde_json::from_slice(&v) {
            Ok(t) => Some((k, t)),
            Err(e) => {
                tracing::warn!("etcd key {prefix}{k}: malformed record: {e}");
                None
            }
        })
        .collect())
}

/// Write `value` at `key` if `expect` holds (and, in the same transaction, `also` ops).
/// `Some(revision)` of the write, or None when the condition failed.
pub async fn put_if(
    api: &Api,
    key: &str,
    value: Vec<u8>,
    expect: Expect,
    also: Vec<TxnOp>,
) -> ApiResult<Option<i64>> {
    let mut ops = vec![TxnOp::put(key, value, None)];
    ops.extend(also);
    txn(api, key, vec![expect.compare(key)], ops).await
}

/// Delete `key` if it was last changed at `mod_revision` (and run `also` in the same txn).
pub async fn delete_if(
    api: &Api,
    key: &str,
    mod_revision: i64,
    also: Vec<TxnOp>,
) -> ApiResult<Option<i64>> {
    let mut ops = vec![TxnOp::delete(key, None)];
    ops.extend(also);
    txn(
        api,
        key,
        vec![Expect::ModRevision(mod_revision).compare(key)],
        ops,
    )
    .await
}

/// A transaction: `ops` when every `when` holds; `Some(revision)` of the write, or None
/// when a condition failed. `key` names the write in errors.
pub async fn txn(
    api: &Api,
    key: &str,
    when: Vec<Compare>,
    ops: Vec<TxnOp>,
) -> ApiResult<Option<i64>> {
    let resp = api
        .etcd
        .kv_client()
        .txn(Txn::new().when(when).and_then(ops))
        .await
        .map_err(|e| etcd(&format!("write {key}"), e))?;
    if !resp.succeeded() {
        return Ok(None);
    }
    Ok(Some(resp.header().map(|h| h.revision()).unwrap_or(0)))
}

/// An object's etcd key.
pub fn object_key(api: &Api, kind: Kind, ns: &str, name: &str) -> String {
    keys::object(&api.prefix, kind, ns, name)
}

/// A stored object with `metadata.resourceVersion` = its mod revision.
pub fn decode_object(key: &str, value: &[u8], mod_revision: i64) -> ApiResult<Object> {
    let mut o: Object = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(format!("etcd key {key}: malformed object: {e}")))?;
    o.metadata.resource_version = Some(mod_revision.to_string());
    Ok(o)
}

/// One object and its mod revision, or None.
pub async fn get_object(
    api: &Api,
    kind: Kind,
    ns: &str,
    name: &str,
) -> ApiResult<Option<(Object, i64)>> {
    let key = object_key(api, kind, ns, name);
    match get_raw(api, &key).await? {
        None => Ok(None),
        Some((v, rev)) => Ok(Some((decode_object(&key, &v, rev)?, rev))),
    }
}

/// Every object of `kind` (in `ns`, or in every namespace), sorted by key, and the store's
/// revision at the read.
pub async fn list_objects(
    api: &Api,
    kind: Kind,
    ns: Option<&str>,
) -> ApiResult<(Vec<Object>, i64)> {
    let mut prefix = keys::objects_of(&api.prefix, kind);
    if let Some(ns) = ns {
        prefix.push_str(ns);
        prefix.push('/');
    }
    let (items, rev) = list_raw(api, &prefix).await?;
    let mut out = Vec::with_capacity(items.len());
    for (k, v, r) in items {
        match decode_object(&k, &v, r) {
            Ok(o) => out.push(o),
            Err(e) => tracing::warn!("{}", e.message),
        }
    }
    Ok((out, rev))
}
