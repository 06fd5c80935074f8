//! `barge-edge join`: make the node key on the device, send a CSR with the one-time token to
//! the hub over TLS pinned to the token's CA hash, store what the hub answers (certificate,
//! CA bundle, hubs). The key never leaves the device.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use barge_edge_proto::token::JoinToken;
use barge_edge_proto::wire::{EdgeMsg, HubMsg};

use crate::config::{write, EdgeFile, EdgePaths};
use crate::conn;

/// What `join` needs.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// `https://host:port` or `host:port`: the hub's edge port.
    pub hub: String,
    pub token: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A node name: a DNS label (lowercase alphanumerics and `-`, 1..=63, not starting or
/// ending with `-`).
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!("node name {name:?} is not a DNS label (a-z, 0-9, '-', at most 63)");
    }
    Ok(())
}

/// A new key pair (ECDSA P-256) and a CSR for `node:<name>`: (key PEM, CSR PEM).
pub fn new_key_and_csr(name: &str) -> Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("generate the node key")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .context("certificate request parameters")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("node:{name}"));
    let csr = params
        .serialize_request(&key)
        .context("sign the certificate request")?
        .pem()
        .context("encode the certificate request")?;
    Ok((key.serialize_pem(), csr))
}

/// Join: on success the device holds `node.key` (0600), `node.crt`, `ca.pem` and
/// `edge.json`. Nothing is written when the hub refuses.
pub async fn join(paths: &EdgePaths, req: &JoinRequest) -> Result<EdgeFile> {
    let token = JoinToken::parse(&req.token)?;
    validate_name(&req.name)?;
    let (key_pem, csr_pem) = new_key_and_csr(&req.name)?;
    let cfg = crate::tls::join_config(&token.ca_hash)?;
    let mut s = conn::connect(&req.hub, cfg).await?;
    conn::send(
        &mut s,
        &EdgeMsg::Join {
            protocol: barge_edge_proto::PROTOCOL_VERSION,
            token: token.render(),
            name: req.name.clone(),
            labels: req.labels.clone(),
            csr_pem,
            info: crate::info::node_info(),
        },
    )
    .await?;
    let (cert_pem, ca_pem, hubs) = match conn::recv_some(&mut s).await? {
        HubMsg::Joined {
            cert_pem,
            ca_bundle_pem,
            hubs,
        } => (cert_pem, ca_bundle_pem, hubs),
        HubMsg::Error { code, message } => return Err(conn::hub_error(&code, &message)),
        other => bail!("join: unexpected answer from the hub: {other:?}"),
    };
    crate::tls::certs(&cert_pem).context("the hub's node certificate")?;
    crate::tls::certs(&ca_pem).context("the hub's CA bundle")?;
    paths.ensure_dir()?;
    // A cache from another identity is not this node's desired state.
    if let Ok(old) = paths.load() {
        if old.name != req.name {
            for suffix in ["", "-wal", "-shm"] {
                let p = format!("{}{suffix}", paths.cache().display());
                let _ = std::fs::remove_file(p);
            }
        }
    }
    write(&paths.key(), key_pem.as_bytes(), 0o600)?;
    write(&paths.cert(), cert_pem.as_bytes(), 0o644)?;
    write(&paths.ca(), ca_pem.as_bytes(), 0o644)?;
    let hubs = if hubs.is_empty() {
        vec![conn::strip_scheme(&req.hub).to_string()]
    } else {
        hubs
    };
    let f = EdgeFile {
        name: req.name.clone(),
        hubs,
        labels: req.labels.clone(),
        mqtt: None,
    };
    // Last: edge.json is what says "joined".
    paths.save(&f)?;
    Ok(f)
}
