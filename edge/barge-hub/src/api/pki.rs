//! The fleet's certificates through the API:
//! - `POST /api/v1/certificates` `{"name", "csr"}`: sign an admin client certificate
//!   (CN `admin:<name>`) from a CSR made where its key stays (`barge fleet cert create`);
//!   `GET /api/v1/certificates`: the names issued; `POST /api/v1/certificates/{name}/revoke`.
//! - `GET /api/v1/ca`: the fleet's CAs; `POST /api/v1/ca/rotate` starts a rotation (a new
//!   CA signs from now on, both are trusted), `POST /api/v1/ca/retire-old` ends it
//!   ([`crate::pki::rotate`], [`crate::pki::retire_old`]). The hub answering reloads at once;
//!   the others follow their watch of `pki/ca`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use barge_edge_proto::keys::{self, AdminCertRecord, CaRecord};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde::Deserialize;
use serde_json::json;

use super::error::{self, ApiError, ApiResult};
use super::{store, Api};

type S = State<Arc<Api>>;

/// `POST /api/v1/certificates` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertRequest {
    pub name: String,
    /// PEM CSR whose CN is `admin:<name>`.
    pub csr: String,
}

/// A name for an admin certificate: 1–63 of `a-z 0-9 - . _`, starting alphanumeric.
fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "admin certificate name {name:?}: 1-63 of a-z 0-9 - . _, starting with a letter or digit"
        )))
    }
}

fn record(v: &[u8], key: &str) -> ApiResult<AdminCertRecord> {
    serde_json::from_slice(v).map_err(|e| ApiError::internal(format!("{key}: malformed: {e}")))
}

/// `POST /api/v1/certificates`: 201 `{"kind":"AdminCertificate","name","certificate","ca",
/// "notAfter"}`. 409 when the name was revoked (revocation is by name: pick another).
pub async fn create(State(api): S, body: axum::body::Bytes) -> ApiResult<Response> {
    let req: CertRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("certificate request: {e}")))?;
    check_name(&req.name)?;
    let key = keys::admin_cert(&api.prefix, &req.name);
    let prev = store::get_raw(&api, &key).await?;
    if let Some((v, _)) = &prev {
        if let Some(at) = record(v, &key)?.revoked {
            return Err(ApiError::conflict(format!(
                "admin certificate name {} was revoked at {at}; issue one under another name",
                req.name
            )));
        }
    }
    let pki = api.hub.pki();
    let ttl = Duration::from_secs(api.hub.config.admin_cert_ttl_secs);
    let (cert, not_after) = pki.sign_admin(&req.csr, &req.name, ttl)?;
    let rec = AdminCertRecord {
        issued: barge_util::time::now_rfc3339(),
        not_after: barge_util::time::rfc3339_secs(not_after),
        revoked: None,
    };
    let value = serde_json::to_vec(&rec).map_err(|e| ApiError::internal(format!("{key}: {e}")))?;
    // Only over what was read: a revocation meanwhile wins.
    let cmp = match &prev {
        Some((_, rev)) => Compare::mod_revision(key.as_str(), CompareOp::Equal, *rev),
        None => Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
    };
    let resp = api
        .etcd
        .kv_client()
        .txn(
            Txn::new()
                .when(vec![cmp])
                .and_then(vec![TxnOp::put(key.as_str(), value, None)]),
        )
        .await
        .map_err(|e| error::etcd(&format!("put {key}"), e))?;
    if !resp.succeeded() {
        return Err(ApiError::conflict(format!(
            "admin certificate {}: changed concurrently, try again",
            req.name
        )));
    }
    tracing::info!("fleet API: issued admin certificate {}", req.name);
    let body = json!({
        "apiVersion": "v1",
        "kind": "AdminCertificate",
        "name": req.name,
        "certificate": cert,
        "ca": pki.bundle_pem(),
        "notAfter": rec.not_after,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/certificates`: every admin certificate name with its dates.
pub async fn list(State(api): S) -> ApiResult<Response> {
    let prefix = keys::admin_cert(&api.prefix, "");
    let resp = api
        .etcd
        .kv_client()
        .get(
            prefix.as_str(),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .map_err(|e| error::etcd(&format!("list {prefix}"), e))?;
    let mut items = Vec::new();
    for kv in resp.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let rec = record(kv.value(), &key)?;
        items.push(json!({
            "name": key.strip_prefix(&prefix).unwrap_or(&key),
            "issued": rec.issued,
            "notAfter": rec.not_after,
            "revoked": rec.revoked,
        }));
    }
    Ok(
        Json(json!({"apiVersion": "v1", "kind": "AdminCertificateList", "items": items}))
            .into_response(),
    )
}

/// `POST /api/v1/certificates/{name}/revoke`: every certificate of that name is refused
/// from the next request on.
pub async fn revoke(State(api): S, Path(name): Path<String>) -> ApiResult<Response> {
    check_name(&name)?;
    let key = keys::admin_cert(&api.prefix, &name);
    for _ in 0..8 {
        let Some((v, rev)) = store::get_raw(&api, &key).await? else {
            return Err(ApiError::not_found(format!(
                "admin certificate {name} was never issued"
            )));
        };
        let mut rec = record(&v, &key)?;
        if rec.revoked.is_none() {
            rec.revoked = Some(barge_util::time::now_rfc3339());
        }
        let value =
            serde_json::to_vec(&rec).map_err(|e| ApiError::internal(format!("{key}: {e}")))?;
        let resp = api
            .etcd
            .kv_client()
            .txn(
                Txn::new()
                    .when(vec![Compare::mod_revision(
                        key.as_str(),
                        CompareOp::Equal,
                        rev,
                    )])
                    .and_then(vec![TxnOp::put(key.as_str(), value, None)]),
            )
            .await
            .map_err(|e| error::etcd(&format!("put {key}"), e))?;
        if resp.succeeded() {
            tracing::info!("fleet API: admin certificate {name} revoked");
            return Ok(Json(json!({"name": name, "revoked": rec.revoked})).into_response());
        }
    }
    Err(ApiError::conflict(format!(
        "admin certificate {name}: changed concurrently too many times, try again"
    )))
}

fn ca_list(api: &Api) -> serde_json::Value {
    let pki = api.hub.pki();
    json!({
        "apiVersion": "v1",
        "kind": "CertificateAuthorityList",
        "rotating": pki.cas.len() > 1,
        "items": pki.info(),
    })
}

/// `GET /api/v1/ca`: the CAs (newest first) with their expiry and roles.
pub async fn ca_get(State(api): S) -> ApiResult<Response> {
    Ok(Json(ca_list(&api)).into_response())
}

/// Reload this hub from `pki/ca` now (the watch would, a moment later).
async fn reload_now(api: &Api) -> ApiResult<()> {
    let key = api.hub.key("pki/ca");
    let Some((rec, rev)) = crate::store::get_json::<CaRecord>(&api.etcd, &key)
        .await
        .map_err(|e| ApiError::unavailable(format!("etcd: get {key}: {e}")))?
    else {
        return Err(ApiError::internal(format!("{key} is missing")));
    };
    api.hub
        .reload_pki(&rec, rev)
        .map_err(|e| ApiError::internal(format!("loading the fleet CAs: {e:#}")))
}

/// `POST /api/v1/ca/rotate`: 409 while a rotation is in progress.
pub async fn ca_rotate(State(api): S) -> ApiResult<Response> {
    if api.hub.pki().cas.len() > 1 {
        return Err(ApiError::conflict(
            "a CA rotation is already in progress: retire the old CA first (ca retire-old)",
        ));
    }
    crate::pki::rotate(&api.etcd, &api.prefix, &api.hub.seal)
        .await
        .map_err(|e| ApiError::conflict(format!("rotating the fleet CA: {e:#}")))?;
    reload_now(&api).await?;
    tracing::info!("fleet API: CA rotation started");
    Ok(Json(ca_list(&api)).into_response())
}

/// `POST /api/v1/ca/retire-old`: 409 when no rotation is in progress.
pub async fn ca_retire_old(State(api): S) -> ApiResult<Response> {
    let key = api.hub.key("pki/ca");
    let n = crate::store::get_json::<CaRecord>(&api.etcd, &key)
        .await
        .map_err(|e| ApiError::unavailable(format!("etcd: get {key}: {e}")))?
        .map(|(r, _)| r.cas.len())
        .unwrap_or(0);
    if n < 2 {
        return Err(ApiError::conflict(
            "no CA rotation in progress (start one with ca rotate)",
        ));
    }
    crate::pki::retire_old(&api.etcd, &api.prefix)
        .await
        .map_err(|e| ApiError::conflict(format!("retiring the old CA: {e:#}")))?;
    reload_now(&api).await?;
    tracing::info!("fleet API: old CA retired");
    Ok(Json(ca_list(&api)).into_response())
}
