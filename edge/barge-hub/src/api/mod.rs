//! The fleet HTTP API (`--api`): Kubernetes-like JSON resources for `barge fleet` and the
//! dashboard. https with a server certificate from the fleet CA ([`tls`]; plain HTTP only
//! with `--api-insecure-http`); every request but `/healthz` needs the admin bearer token, an
//! admin client certificate or a dashboard session ([`auth`]); errors are Kubernetes
//! `Status` objects ([`error`]).
//!
//! - [`objects`]: Pods, Deployments, DaemonSets, ConfigMaps, Secrets in etcd (CRUD, apply).
//! - [`pods`]: the pods every node runs (views expanded) with their reported status.
//! - [`devices`]: DeviceModels and Devices (`devices.kubeedge.io/v1beta1`), Devices with
//!   their twin status, and the twin endpoint setting desired values.
//! - [`nodes`]: nodes with their derived Ready condition; label, drain, revoke, delete.
//! - [`tokens`]: join tokens. [`stream`]: logs and exec through the node's tunnel (forwarded
//!   by [`crate::tunnel::Tunnels::open_as`], with the caller's token, to the hub that holds
//!   the node's session).
//! - [`proxy`]: the ServiceBus, HTTP to services on edges through their tunnels.
//! - [`pki`]: admin client certificates (issue, list, revoke) and CA rotation.

pub mod auth;
pub mod devices;
pub mod error;
pub mod nodes;
pub mod objects;
pub mod pki;
pub mod pods;
pub mod proxy;
pub mod store;
pub mod stream;
pub mod tls;
pub mod tokens;
pub mod validate;

use std::io::Read;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::routing::{get, post};
use axum::Router;

use crate::hub::Hub;
use error::ApiError;

/// What the handlers share.
pub struct Api {
    pub hub: Arc<Hub>,
    /// The hub's etcd client (cheap clones).
    pub etcd: etcd_client::Client,
    /// The fleet's etcd key prefix.
    pub prefix: String,
    /// SHA-256 of the admin token, once read from `pki/admin-token`.
    admin_hash: OnceLock<String>,
}

impl Api {
    pub fn new(hub: Arc<Hub>) -> Arc<Api> {
        Arc::new(Api {
            etcd: hub.etcd.clone(),
            prefix: hub.prefix.clone(),
            hub,
            admin_hash: OnceLock::new(),
        })
    }

    /// A node silent this long is NotReady.
    pub fn grace_secs(&self) -> u64 {
        self.hub.config.node_grace_secs
    }
}

/// The API's routes (authenticated but `/healthz`).
pub fn router(api: Arc<Api>) -> Router {
    use objects as o;
    let dash_api = api.clone();
    let authed = Router::new()
        .route("/api/v1/nodes", get(nodes::list))
        .route(
            "/api/v1/nodes/{name}",
            get(nodes::get).patch(nodes::patch).delete(nodes::delete),
        )
        .route("/api/v1/nodes/{name}/drain", post(nodes::drain))
        .route("/api/v1/nodes/{name}/revoke", post(nodes::revoke))
        .route(
            "/api/v1/nodes/{node}/pods/{ns}/{pod}/log",
            get(stream::logs),
        )
        .route(
            "/api/v1/nodes/{node}/pods/{ns}/{pod}/exec",
            get(stream::exec),
        )
        // ServiceBus (dev-svcbus): node and pod proxies, and the forwarding connect stream.
        .merge(proxy::routes())
        .route("/api/v1/tokens", post(tokens::create))
        .route("/api/v1/certificates", get(pki::list).post(pki::create))
        .route("/api/v1/certificates/{name}/revoke", post(pki::revoke))
        .route("/api/v1/ca", get(pki::ca_get))
        .route("/api/v1/ca/rotate", post(pki::ca_rotate))
        .route("/api/v1/ca/retire-old", post(pki::ca_retire_old))
        .route("/api/v1/{plural}", get(o::core_all))
        .route("/apis/apps/v1/{plural}", get(o::apps_all))
        .route(
            "/api/v1/namespaces/{ns}/{plural}",
            get(o::core_list).post(o::core_create),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/{plural}",
            get(o::apps_list).post(o::apps_create),
        )
        .route(
            "/api/v1/namespaces/{ns}/{plural}/{name}",
            get(o::core_get).put(o::core_put).delete(o::core_delete),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/{plural}/{name}",
            get(o::apps_get).put(o::apps_put).delete(o::apps_delete),
        )
        .route(
            "/apis/devices.kubeedge.io/v1beta1/{plural}",
            get(devices::all),
        )
        .route(
            "/apis/devices.kubeedge.io/v1beta1/namespaces/{ns}/{plural}",
            get(devices::list).post(devices::create),
        )
        .route(
            "/apis/devices.kubeedge.io/v1beta1/namespaces/{ns}/{plural}/{name}",
            get(devices::get).put(devices::put).delete(devices::delete),
        )
        .route(
            "/apis/devices.kubeedge.io/v1beta1/namespaces/{ns}/{plural}/{name}/twin",
            post(devices::twin),
        )
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::not_found(format!("no route for {}", uri.path()))
        })
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            auth::require_admin,
        ))
        .with_state(api);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        // The fleet dashboard (issue 18): `/`, `/ui/...`.
        .merge(crate::dashboard::router(dash_api))
        .merge(authed)
}

/// Serve the fleet API on `listener` until the process ends: https ([`tls::serve`]) unless
/// the hub runs with `--api-insecure-http`.
pub async fn serve(hub: Arc<Hub>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let addr = listener
        .local_addr()
        .context("fleet API listener address")?;
    let routes = router(Api::new(hub.clone()));
    if hub.api_tls().is_some() {
        tracing::info!("fleet API on https://{addr}");
        tls::serve(hub, listener, routes).await;
        return Ok(());
    }
    tracing::warn!("fleet API on http://{addr}: plain HTTP (--api-insecure-http)");
    axum::serve(listener, routes)
        .await
        .with_context(|| format!("fleet API on {addr}"))
}

/// `N` random bytes from the kernel.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| ApiError::internal(format!("read /dev/urandom: {e}")))?;
    Ok(b)
}

/// A random (version 4) UUID for `metadata.uid`.
pub fn random_uid() -> Result<String, ApiError> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    ))
}
