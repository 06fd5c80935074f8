//! `STATE_DIR/admin.conf`: `{"server": API URL, "ca": PEM or null, "token": admin token}`
//! (mode 0600), what `barge fleet --config` reads. Over https, `ca` is the fleet's CA
//! bundle (both CAs during a rotation), rewritten when the CAs change.
//!
//! The fleet has one admin token. The first hub to start makes it and stores only its SHA-256
//! at `pki/admin-token` (create-if-absent transaction, so two hubs starting together agree on
//! one). A token cannot be recovered from its hash: a later hub with a fresh state dir writes
//! `"token": null` and says to use the first hub's admin.conf.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use barge_edge_proto::token::sha256_hex;
use barge_util::fs::{write_atomic, Durability};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use crate::hub::Hub;

/// The file `barge fleet` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminConf {
    /// `https://host:port` of the fleet API (`http://` with `--api-insecure-http`).
    pub server: String,
    /// CA certificate(s) (PEM) when `server` is https; null for plain HTTP.
    pub ca: Option<String>,
    /// The admin bearer token; null when another hub made it.
    pub token: Option<String>,
    /// An admin client certificate and its key (paths) instead of `token` (what
    /// `barge fleet cert create` writes; the hub never writes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Put `bundle` as the `ca` of `STATE_DIR/admin.conf` (after a CA rotation), if it exists and
/// differs.
pub fn update_ca(state_dir: &Path, bundle: &str) -> anyhow::Result<()> {
    let file = path(state_dir);
    let data = match std::fs::read(&file) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("read {}: {e}", file.display()),
    };
    let mut conf: AdminConf = serde_json::from_slice(&data)
        .with_context(|| format!("{}: not an admin.conf", file.display()))?;
    if conf.ca.as_deref() != Some(bundle) {
        conf.ca = Some(bundle.to_string());
        write_conf(&file, &conf)?;
    }
    Ok(())
}

/// `STATE_DIR/admin.conf`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("admin.conf")
}

/// A new admin token: 32 random bytes, hex.
fn new_token() -> anyhow::Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("read /dev/urandom for the admin token")?;
    Ok(b.iter().map(|v| format!("{v:02x}")).collect())
}

fn write_conf(file: &Path, conf: &AdminConf) -> anyhow::Result<()> {
    let mut data = serde_json::to_vec_pretty(conf).context("encode admin.conf")?;
    data.push(b'\n');
    write_atomic(file, &data, 0o600, Durability::Durable)
        .with_context(|| format!("write {}", file.display()))
}

/// Make the fleet's admin token on first start and write `admin.conf` (see the module doc).
pub async fn ensure(hub: &Hub) -> anyhow::Result<()> {
    let dir = &hub.config.state_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let file = path(dir);
    let server = hub.api_url.clone();
    let ca = hub.api_tls().map(|_| hub.pki().bundle_pem());
    let key = format!("{}pki/admin-token", hub.prefix);
    let token = new_token()?;
    let resp = hub
        .etcd
        .kv_client()
        .txn(
            Txn::new()
                .when(vec![Compare::create_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then(vec![TxnOp::put(
                    key.as_str(),
                    sha256_hex(token.as_bytes()),
                    None,
                )]),
        )
        .await
        .with_context(|| format!("etcd: create {key}"))?;
    if resp.succeeded() {
        write_conf(
            &file,
            &AdminConf {
                server,
                ca,
                token: Some(token),
                cert: None,
                key: None,
            },
        )?;
        tracing::info!("made the fleet's admin token; wrote {}", file.display());
        return Ok(());
    }
    // The token exists: keep this state dir's admin.conf (pointing it at this hub's API), or
    // write one without a token.
    match std::fs::read(&file) {
        Ok(data) => {
            let mut conf: AdminConf = serde_json::from_slice(&data)
                .with_context(|| format!("{}: not an admin.conf", file.display()))?;
            if conf.server != server || conf.ca != ca {
                conf.server = server;
                conf.ca = ca;
                write_conf(&file, &conf)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_conf(
                &file,
                &AdminConf {
                    server,
                    ca,
                    token: None,
                    cert: None,
                    key: None,
                },
            )?;
            tracing::warn!(
                "the fleet's admin token was made by another hub and cannot be recovered from \
                 its hash: {} has \"token\": null; use the admin.conf in the first hub's state dir",
                file.display()
            );
            Ok(())
        }
        Err(e) => bail!("read {}: {e}", file.display()),
    }
}
