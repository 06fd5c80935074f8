//! Renew: a new certificate for a new key, proven by the current certificate (which may
//! have expired within the grace window: the TLS verifier let it through).

use std::time::Duration;

use barge_edge_proto::keys::{self, NodeRecord};
use barge_edge_proto::object::{Kind, ObjKey};
use barge_edge_proto::wire::{codes, HubMsg};

use super::Refusal;
use crate::hub::Hub;
use crate::pki::PeerCert;

/// Sign a renewed certificate for the node `cert` names; also returns its expiry.
pub async fn renew(
    hub: &Hub,
    cert: Option<&PeerCert>,
    csr_pem: &str,
) -> Result<(HubMsg, i64), Refusal> {
    let Some(cert) = cert else {
        return Err(Refusal::new(
            codes::BAD_CERTIFICATE,
            "renew needs the node's current certificate as the TLS client certificate",
        ));
    };
    let Some(name) = cert.node() else {
        return Err(Refusal::new(
            codes::BAD_CERTIFICATE,
            format!("certificate CN {:?} is not node:<name>", cert.common_name),
        ));
    };
    let snap = hub.cache.snapshot();
    if snap.revoked.contains(name) {
        return Err(Refusal::new(
            codes::REVOKED,
            format!("node {name} was revoked; join again with a new token"),
        ));
    }
    let node_key = ObjKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: name.to_string(),
    };
    if !snap.objects.contains_key(&node_key) {
        return Err(Refusal::new(
            codes::REVOKED,
            format!("node {name} was deleted; join again with a new token"),
        ));
    }
    let pki = hub.pki();
    let (cert_pem, not_after) = pki
        .sign_node(csr_pem, name, Duration::from_secs(hub.config.cert_ttl_secs))
        .map_err(|e| Refusal::new(codes::PROTOCOL, e.to_string()))?;
    let key = keys::node_status(&hub.prefix, name);
    let mut rec = crate::store::get_json::<NodeRecord>(&hub.etcd, &key)
        .await?
        .map(|(r, _)| r)
        .unwrap_or_default();
    rec.cert_not_after = Some(barge_util::time::rfc3339_secs(not_after));
    let mut c = hub.etcd.clone();
    c.put(key.clone(), crate::store::to_json(&rec)?, None)
        .await
        .map_err(|e| Refusal::from(crate::store::unavailable(&key, e)))?;
    tracing::info!(
        "node {name}: certificate renewed (expired {})",
        cert.expired()
    );
    Ok((
        HubMsg::Renewed {
            cert_pem,
            ca_bundle_pem: pki.bundle_pem(),
        },
        not_after,
    ))
}
