//! Join: a one-time token + a CSR -> a node certificate. The token is consumed in the same
//! etcd transaction that creates (or re-creates) the node, so a token joins one node once.

use std::collections::BTreeMap;
use std::time::Duration;

use barge_edge_proto::keys::{self, ConnRecord, NodeRecord, TokenRecord};
use barge_edge_proto::object::{Kind, NodeInfo, Object, ObjectMeta};
use barge_edge_proto::token::JoinToken;
use barge_edge_proto::wire::{codes, HubMsg};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::Refusal;
use crate::hub::Hub;
use crate::util::{dns_label, now_secs};

pub struct JoinRequest {
    pub protocol: u32,
    pub token: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub csr_pem: String,
    pub info: NodeInfo,
}

fn bad_token(why: impl std::fmt::Display) -> Refusal {
    Refusal::new(codes::BAD_TOKEN, format!("join token refused: {why}"))
}

/// Check the token and CSR, sign, and store the node (consuming the token).
pub async fn join(hub: &Hub, req: &JoinRequest) -> Result<HubMsg, Refusal> {
    if req.protocol != barge_edge_proto::PROTOCOL_VERSION {
        return Err(Refusal::new(
            codes::PROTOCOL,
            format!(
                "protocol version {} is not supported (this hub speaks {})",
                req.protocol,
                barge_edge_proto::PROTOCOL_VERSION
            ),
        ));
    }
    if !dns_label(&req.name) {
        return Err(Refusal::new(
            codes::PROTOCOL,
            format!(
                "node name {:?} is not a DNS-1123 label (a-z, 0-9, '-', at most 63)",
                req.name
            ),
        ));
    }
    let token = JoinToken::parse(&req.token).map_err(bad_token)?;
    let pki = hub.pki();
    if !pki.pins(&token.ca_hash) {
        return Err(bad_token("it pins a CA this fleet does not have"));
    }
    let ttl = Duration::from_secs(hub.config.cert_ttl_secs);
    let (cert_pem, not_after) = pki
        .sign_node(&req.csr_pem, &req.name, ttl)
        .map_err(|e| Refusal::new(codes::PROTOCOL, e.to_string()))?;

    let token_key = keys::token(&hub.prefix, &token.id);
    let node_key = keys::object(&hub.prefix, Kind::Node, "", &req.name);
    let conn_key = keys::conn(&hub.prefix, &req.name);
    let status_key = keys::node_status(&hub.prefix, &req.name);
    let revoked_key = keys::revoked(&hub.prefix, &req.name);
    for _attempt in 0..3 {
        let Some((rec, token_rev)) =
            crate::store::get_json::<TokenRecord>(&hub.etcd, &token_key).await?
        else {
            return Err(bad_token(format!(
                "token {} is unknown or already used",
                token.id
            )));
        };
        crate::tokens::check(&rec, &token, now_secs())
            .map_err(|why| bad_token(format!("token {}: {why}", token.id)))?;
        let existing = crate::store::get_json::<Object>(&hub.etcd, &node_key).await?;
        if existing.is_some()
            && crate::store::get_json::<ConnRecord>(&hub.etcd, &conn_key)
                .await?
                .is_some()
        {
            return Err(Refusal::new(
                codes::NAME_CONFLICT,
                format!("node name {} is taken by a connected node", req.name),
            ));
        }
        let now = barge_util::time::rfc3339_secs(now_secs());
        let (node, node_cmp) = match &existing {
            Some((old, rev)) => {
                let mut n = old.clone();
                n.metadata.labels = req.labels.clone();
                n.metadata.resource_version = None;
                (
                    n,
                    Compare::mod_revision(node_key.clone(), CompareOp::Equal, *rev),
                )
            }
            None => (
                Object {
                    api_version: "v1".into(),
                    kind: Kind::Node,
                    metadata: ObjectMeta {
                        name: req.name.clone(),
                        labels: req.labels.clone(),
                        uid: Some(crate::tokens::random_alnum(16)?),
                        creation_timestamp: Some(now.clone()),
                        ..Default::default()
                    },
                    spec: serde_json::json!({}),
                    status: serde_json::Value::Null,
                    data: None,
                    string_data: None,
                    type_: None,
                },
                Compare::version(node_key.clone(), CompareOp::Equal, 0),
            ),
        };
        let record = NodeRecord {
            info: req.info.clone(),
            last_seen: now,
            cert_not_after: Some(barge_util::time::rfc3339_secs(not_after)),
            ..Default::default()
        };
        let txn = Txn::new()
            .when([
                Compare::mod_revision(token_key.clone(), CompareOp::Equal, token_rev),
                node_cmp,
                Compare::version(conn_key.clone(), CompareOp::Equal, 0),
            ])
            .and_then(
                [
                    (!rec.reusable).then(|| TxnOp::delete(token_key.clone(), None)),
                    Some(TxnOp::put(
                        node_key.clone(),
                        crate::store::to_json(&node)?,
                        None,
                    )),
                    Some(TxnOp::put(
                        status_key.clone(),
                        crate::store::to_json(&record)?,
                        None,
                    )),
                    Some(TxnOp::delete(revoked_key.clone(), None)),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
            );
        let mut c = hub.etcd.clone();
        let resp = c
            .txn(txn)
            .await
            .map_err(|e| Refusal::from(crate::store::unavailable(&token_key, e)))?;
        if resp.succeeded() {
            // Let this hub's cache see the node before answering, so that the edge's first
            // Hello here finds it (bounded: a stalled watch must not hang the join).
            if let Some(h) = resp.header() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), hub.cache.wait_for(h.revision()))
                        .await;
            }
            return Ok(HubMsg::Joined {
                cert_pem,
                ca_bundle_pem: pki.bundle_pem(),
                hubs: hub.hub_endpoints().await,
            });
        }
        // Something changed in between (the token used, the node written): look again.
    }
    Err(Refusal::new(
        codes::UNAVAILABLE,
        format!("join of {}: too much contention, retry", req.name),
    ))
}
