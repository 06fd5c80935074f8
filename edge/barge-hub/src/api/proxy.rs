//! ServiceBus: the cloud calls HTTP services running on edges, through the node's tunnel.
//!
//! - `ANY /api/v1/nodes/{node}/proxy/{port}/{path...}` (also `/nodes/{node}/proxy/...`):
//!   `127.0.0.1:{port}` on the device.
//! - `ANY /api/v1/namespaces/{ns}/pods/{pod}/proxy/{port}/{path...}`: `{port}` on the pod's
//!   own IP, on the node the pod is placed on.
//!
//! Each request opens a `Connect` stream ([`TunnelRequest::Connect`]) and speaks HTTP/1.1 on
//! it (hyper's client over [`TunnelIo`]): method, path, query, headers (minus hop-by-hop
//! ones and the fleet API's `Authorization`) and streaming bodies both ways. A node whose
//! session is on another hub is reached through that hub ([`crate::tunnel::Tunnels::open_as`]
//! forwards to its `GET /api/v1/nodes/{node}/connect?port=&namespace=&pod=`, an
//! `Upgrade: barge-stream` byte stream framed like exec's, served here too). Errors: 404
//! unknown node or pod, 503 node offline, 502 when the edge cannot reach the target (the
//! message says which target and why), 400 a bad port.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use barge_edge_proto::wire::ConnectTarget;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::{auth, stream, Api};
use crate::tunnel::{TunnelIo, TunnelRequest};

/// The ServiceBus routes (behind the API's authentication).
pub fn routes() -> Router<Arc<Api>> {
    let mut r = Router::new();
    // (route, number of path segments before the forwarded path)
    for (prefix, skip) in [
        ("/api/v1/nodes/{node}/proxy/{port}", 6),
        ("/nodes/{node}/proxy/{port}", 4),
        ("/api/v1/namespaces/{ns}/pods/{pod}/proxy/{port}", 8),
    ] {
        let h = move |s: State<Arc<Api>>, p: Path<HashMap<String, String>>, req: Request| {
            proxy(s, p, req, skip)
        };
        r = r
            .route(prefix, any(h))
            .route(&format!("{prefix}/"), any(h))
            .route(&format!("{prefix}/{{*path}}"), any(h));
    }
    r.route("/api/v1/nodes/{node}/connect", get(connect))
}

/// The port in a path or query: 1..=65535.
fn port_of(s: &str) -> ApiResult<u16> {
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ApiError::bad_request(format!(
            "port {s:?}: expected a number from 1 to 65535"
        ))),
    }
}

/// The path after the first `skip` segments of `raw` (at least `/`).
fn rest_of(raw: &str, skip: usize) -> String {
    match raw.splitn(skip + 2, '/').nth(skip + 1) {
        Some(rest) => format!("/{rest}"),
        None => "/".into(),
    }
}

/// The node `ns/pod` is placed on (404 when there is no such pod).
async fn node_of_pod(api: &Api, ns: &str, pod: &str) -> ApiResult<String> {
    let (pods, _) = super::pods::expanded(api, Some(ns)).await?;
    let p = pods
        .iter()
        .find(|p| p.metadata.name == pod)
        .ok_or_else(|| ApiError::not_found(format!("pods {ns}/{pod} not found")))?;
    match p.spec.get("nodeName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(ApiError::unavailable(format!(
            "pod {ns}/{pod} is not placed on any node yet"
        ))),
    }
}

/// Headers that concern one connection only (RFC 9110 7.6.1), plus those `Connection`
/// names.
fn is_hop_by_hop(name: &HeaderName, listed: &[String]) -> bool {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    HOP.contains(&name.as_str()) || listed.iter().any(|l| l == name.as_str())
}

/// `headers` without hop-by-hop ones (and without `drop`).
fn end_to_end(headers: &HeaderMap, drop: &[HeaderName]) -> HeaderMap {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (k, v) in headers {
        if !is_hop_by_hop(k, &listed) && !drop.contains(k) {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

/// The dashboard's credentials never reach an edge service: its session cookie is taken out
/// of `Cookie` (the service's own cookies stay) and its CSRF header dropped.
fn without_fleet_credentials(mut headers: HeaderMap) -> HeaderMap {
    headers.remove("x-barge-csrf");
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| {
            !c.is_empty()
                && c.split('=').next().map(str::trim) != Some(crate::dashboard::session::COOKIE)
        })
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
        if !kept.is_empty() {
            headers.insert(header::COOKIE, v);
        }
    }
    headers
}

fn bad_gateway(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "BadGateway", message)
}

/// An error with its sources, for a message.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(&format!(": {t}"));
        }
        src = s.source();
    }
    msg
}

/// One proxied request.
async fn proxy(
    State(api): State<Arc<Api>>,
    Path(params): Path<HashMap<String, String>>,
    req: Request,
    skip: usize,
) -> ApiResult<Response> {
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let port = port_of(&get("port"))?;
    let (node, target, host, what) = match (params.get("ns"), params.get("pod")) {
        (Some(ns), Some(pod)) => {
            let node = node_of_pod(&api, ns, pod).await?;
            let what = format!("pod {ns}/{pod} port {port} on node {node}");
            let target = ConnectTarget::Pod {
                namespace: ns.clone(),
                pod: pod.clone(),
                port,
            };
            (node, target, format!("{pod}:{port}"), what)
        }
        _ => {
            let node = get("node");
            let what = format!("port {port} on node {node}");
            (
                node,
                ConnectTarget::Host { port },
                format!("localhost:{port}"),
                what,
            )
        }
    };
    let mut path = rest_of(req.uri().path(), skip);
    if let Some(q) = req.uri().query() {
        path.push('?');
        path.push_str(q);
    }
    let stream = api
        .hub
        .tunnels
        .open_as(
            &node,
            TunnelRequest::Connect { target },
            auth::bearer_of(req.headers()),
        )
        .await?;
    let io = TunnelIo::new(stream);
    let edge_error = io.edge_error();
    let why = |e: &dyn std::error::Error| {
        let edge = edge_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        bad_gateway(format!("{what}: {}", edge.unwrap_or_else(|| chain(e))))
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| why(&e))?;
    let conn_what = what.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("proxy to {conn_what}: {e}");
        }
    });
    let (parts, body) = req.into_parts();
    let mut out = hyper::Request::builder()
        .method(parts.method)
        .uri(&path)
        .version(hyper::Version::HTTP_11)
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("proxy path {path:?}: {e}")))?;
    *out.headers_mut() = without_fleet_credentials(end_to_end(
        &parts.headers,
        &[header::AUTHORIZATION, header::HOST],
    ));
    let host = HeaderValue::from_str(&host)
        .map_err(|_| ApiError::bad_request(format!("{host:?} is not a valid Host")))?;
    out.headers_mut().insert(header::HOST, host);
    let resp = sender.send_request(out).await.map_err(|e| why(&e))?;
    let (mut rparts, rbody) = resp.into_parts();
    rparts.headers = end_to_end(&rparts.headers, &[]);
    Ok(Response::from_parts(rparts, Body::new(rbody)))
}

/// `GET /api/v1/nodes/{node}/connect?port=&namespace=&pod=` upgraded to barge-stream: a
/// raw Connect stream for a hub that forwards a ServiceBus request to this one.
async fn connect(
    State(api): State<Arc<Api>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> ApiResult<Response> {
    if !stream::wants_upgrade(&req) {
        return Err(ApiError::bad_request(format!(
            "connect needs Connection: Upgrade and Upgrade: {}",
            stream::UPGRADE
        )));
    }
    let pairs = stream::query_pairs(q.as_deref());
    let param = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let port = port_of(&param("port"))?;
    let target = match (param("namespace"), param("pod")) {
        (ns, pod) if !ns.is_empty() && !pod.is_empty() => ConnectTarget::Pod {
            namespace: ns,
            pod,
            port,
        },
        (ns, pod) if ns.is_empty() && pod.is_empty() => ConnectTarget::Host { port },
        _ => {
            return Err(ApiError::bad_request(
                "connect to a pod needs both namespace= and pod=",
            ))
        }
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::bad_request("this connection cannot be upgraded"));
    };
    let stream = api
        .hub
        .tunnels
        .open_as(
            &node,
            TunnelRequest::Connect {
                target: target.clone(),
            },
            auth::bearer_of(req.headers()),
        )
        .await?;
    let what = format!("connect to {target:?} on node {node}");
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => stream::pump(TokioIo::new(up), stream, &what).await,
            Err(e) => tracing::warn!("{what}: upgrade failed: {e}"),
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static(stream::UPGRADE));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_and_headers() {
        assert_eq!(rest_of("/api/v1/nodes/n/proxy/80/a/b%20c", 6), "/a/b%20c");
        assert_eq!(rest_of("/api/v1/nodes/n/proxy/80/", 6), "/");
        assert_eq!(rest_of("/api/v1/nodes/n/proxy/80", 6), "/");
        assert_eq!(rest_of("/nodes/proxy/proxy/80/x/", 4), "/x/");
        assert_eq!(
            rest_of("/api/v1/namespaces/d/pods/p/proxy/8080/i.html", 8),
            "/i.html"
        );
        assert!(port_of("0").is_err() && port_of("x").is_err() && port_of("70000").is_err());
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, X-Hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("x-keep", HeaderValue::from_static("2"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        let out = end_to_end(&h, &[header::AUTHORIZATION]);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-keep"]);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("app=1; barge_session=secret; theme=dark"),
        );
        h.insert("x-barge-csrf", HeaderValue::from_static("t"));
        let out = without_fleet_credentials(h);
        assert_eq!(out.get(header::COOKIE).unwrap(), "app=1; theme=dark");
        assert!(out.get("x-barge-csrf").is_none());
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("barge_session=secret"),
        );
        assert!(without_fleet_credentials(h).get(header::COOKIE).is_none());
    }
}
