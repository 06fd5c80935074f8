//! Logs and exec of a node whose session another hub holds: the request goes on, as is
//! (with the caller's bearer token), to that hub's fleet API (`hubs/<id>`'s `api_url`,
//! found from `conns/<node>`). A forwarded request carries [`FORWARDED`] and is never
//! forwarded again (no loops while sessions move).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use barge_edge_proto::keys::{self, ConnRecord, HubRecord};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::error::{ApiError, ApiResult};
use super::{store, Api};

/// Marks a request one hub forwarded to another.
pub const FORWARDED: &str = "barge-forwarded-by";

/// The API URL of the hub holding `node`'s session when it is another hub and the request
/// was not forwarded already; None: serve it here.
pub async fn elsewhere(api: &Api, node: &str, headers: &HeaderMap) -> ApiResult<Option<String>> {
    if headers.contains_key(FORWARDED) || api.hub.tunnels.local(node).is_some() {
        return Ok(None);
    }
    let Some(conn) = store::get_json::<ConnRecord>(api, &keys::conn(&api.prefix, node)).await?
    else {
        return Ok(None);
    };
    if conn.hub == api.hub.id {
        return Ok(None);
    }
    let rec: Option<HubRecord> = store::get_json(api, &keys::hub(&api.prefix, &conn.hub)).await?;
    Ok(rec.map(|r| r.api_url))
}

fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The same request to `base` (path and query kept, the caller's Authorization on).
fn request(
    api: &Api,
    base: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    upgrade: bool,
) -> ApiResult<Request<Body>> {
    let mut b = Request::builder()
        .method("GET")
        .uri(format!("{}{path_and_query}", base.trim_end_matches('/')))
        .header(FORWARDED, api.hub.id.as_str());
    if let Some(a) = headers.get(header::AUTHORIZATION) {
        b = b.header(header::AUTHORIZATION, a.clone());
    }
    if upgrade {
        b = b
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, super::stream::UPGRADE);
    }
    b.body(Body::empty())
        .map_err(|e| ApiError::internal(format!("forward to {base}: {e}")))
}

fn unreachable_hub(base: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!(
        "the hub holding the node's session ({base}) is unreachable: {e}"
    ))
}

/// Forward a logs request; the answer (status, content type, streamed body) as is.
pub async fn logs(
    api: &Api,
    base: &str,
    path_and_query: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let req = request(api, base, path_and_query, headers, false)?;
    let resp = client()
        .request(req)
        .await
        .map_err(|e| unreachable_hub(base, e))?;
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        out.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    Ok(out)
}

/// Forward an exec: upgrade to the other hub, then to the caller, and copy both ways.
pub async fn exec(
    api: &Api,
    base: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    on_upgrade: hyper::upgrade::OnUpgrade,
) -> ApiResult<Response> {
    let req = request(api, base, path_and_query, headers, true)?;
    let resp = client()
        .request(req)
        .await
        .map_err(|e| unreachable_hub(base, e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The other hub's Status error, as is.
        let (parts, body) = resp.into_parts();
        let mut out = Response::new(Body::new(body));
        *out.status_mut() = parts.status;
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            out.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
        }
        return Ok(out);
    }
    let remote = hyper::upgrade::on(resp)
        .await
        .map_err(|e| unreachable_hub(base, e))?;
    let base = base.to_string();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(local) => {
                let mut a = TokioIo::new(local);
                let mut b = TokioIo::new(remote);
                if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
                    tracing::debug!("exec forwarded to {base}: {e}");
                }
            }
            Err(e) => tracing::warn!("exec forwarded to {base}: client upgrade failed: {e}"),
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::UPGRADE,
        HeaderValue::from_static(super::stream::UPGRADE),
    );
    Ok(resp)
}
