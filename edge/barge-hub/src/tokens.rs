//! Join tokens: made by the API (`fleet token create [--reusable]`). A one-time token is
//! consumed by a Join in the same etcd transaction as the node's creation (see
//! `session::join`); a reusable one stays until it expires.

use std::time::Duration;

use barge_edge_proto::keys::{self, TokenRecord};
use barge_edge_proto::token::JoinToken;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::hub::Hub;

/// `n` random lowercase alphanumerics.
pub fn random_alnum(n: usize) -> crate::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        aws_lc_rs::rand::fill(&mut buf)
            .map_err(|_| crate::Error::Internal("no randomness for a token".into()))?;
        for b in buf {
            // 252 = 7 * 36: reject the tail so every character is equally likely.
            if b < 252 && out.len() < n {
                out.push(ALPHABET[(b % 36) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// Make a join token valid for `ttl`: stores `tokens/<id>` (the secret only as its hash)
/// and returns `K10<ca hash>::<id>.<secret>`. A `reusable` token joins any number of nodes
/// until it expires; otherwise the first join consumes it.
pub async fn create(hub: &Hub, ttl: Duration, reusable: bool) -> crate::Result<String> {
    let now = crate::util::now_secs();
    let rec = |t: &JoinToken| TokenRecord {
        secret_sha256: t.secret_hash(),
        reusable,
        expires: barge_util::time::rfc3339_secs(now + ttl.as_secs() as i64),
        created: barge_util::time::rfc3339_secs(now),
    };
    for _ in 0..5 {
        let token = JoinToken {
            ca_hash: hub.pki().ca_hash(),
            id: random_alnum(6)?,
            secret: random_alnum(32)?,
        };
        let key = keys::token(&hub.prefix, &token.id);
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                crate::store::to_json(&rec(&token))?,
                None,
            )]);
        let mut c = hub.etcd.clone();
        let resp = c
            .txn(txn)
            .await
            .map_err(|e| crate::store::unavailable(&key, e))?;
        if resp.succeeded() {
            return Ok(token.render());
        }
    }
    Err(crate::Error::Internal(
        "could not pick an unused token id".into(),
    ))
}

/// Whether a stored token is unexpired at `now` (unix seconds) and its secret matches.
pub fn check(rec: &TokenRecord, token: &JoinToken, now: i64) -> Result<(), &'static str> {
    if !crate::util::ct_eq(rec.secret_sha256.as_bytes(), token.secret_hash().as_bytes()) {
        return Err("secret does not match");
    }
    match barge_util::time::parse_rfc3339(&rec.expires) {
        Some((exp, _)) if exp > now => Ok(()),
        Some(_) => Err("expired"),
        None => Err("stored expiry is malformed"),
    }
}
