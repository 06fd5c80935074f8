//! Logs and exec through the node's tunnel ([`crate::tunnel::Tunnels::open`]).
//!
//! - `GET /api/v1/nodes/{node}/pods/{ns}/{pod}/log?container=&follow=&tailLines=&timestamps=`:
//!   chunked `text/plain`.
//! - `GET /api/v1/nodes/{node}/pods/{ns}/{pod}/exec?command=a&command=b&container=&stdin=&tty=`
//!   with `Connection: Upgrade`, `Upgrade: barge-stream`: after `101` both sides send frames
//!   `[u8 fd][u32 BE len][bytes]`: fd 0 stdin (len 0 closes it), 1 stdout, 2 stderr, 3 the
//!   end (JSON `{"exitCode": n|null, "error": s|null}`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use barge_edge_proto::object::{Kind, ObjKey};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::{ApiError, ApiResult};
use super::{auth, Api};
use crate::tunnel::{TunnelOutput, TunnelRequest, TunnelStream};

/// The protocol name in `Upgrade:` for exec streams.
pub const UPGRADE: &str = "barge-stream";
/// Frame fd of the end-of-stream frame.
pub const FD_END: u8 = 3;
/// Largest stdin frame accepted from a client.
const MAX_IN_FRAME: usize = 1 << 20;

/// `a=b&c=d` with percent-decoding, in order (repeated keys kept).
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let decode = |s: &str| -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let pct = (b[i] == b'%')
                .then(|| Some((hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?)))
                .flatten();
            match (b[i], pct) {
                (_, Some((hi, lo))) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                (b'+', _) => out.push(b' '),
                (c, _) => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn flag(pairs: &[(String, String)], name: &str) -> ApiResult<bool> {
    match pairs.iter().rev().find(|(k, _)| k == name) {
        None => Ok(false),
        Some((_, v)) => match v.as_str() {
            "" | "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(ApiError::bad_request(format!(
                "{name}={v}: expected true or false"
            ))),
        },
    }
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The pod must be in `node`'s view: a clear 404 instead of an error from the edge.
async fn check_pod(api: &Api, node: &str, ns: &str, pod: &str) -> ApiResult<()> {
    let (pods, _) = super::pods::expanded(api, Some(ns)).await?;
    let want = ObjKey {
        kind: Kind::Pod,
        namespace: ns.to_string(),
        name: pod.to_string(),
    };
    match pods.iter().find(|p| p.key() == want) {
        Some(p) if p.spec.get("nodeName").and_then(Value::as_str) == Some(node) => Ok(()),
        Some(p) => Err(ApiError::not_found(format!(
            "pod {ns}/{pod} is not on node {node} (it is on {})",
            p.spec
                .get("nodeName")
                .and_then(Value::as_str)
                .unwrap_or("no node")
        ))),
        None => Err(ApiError::not_found(format!("pods {ns}/{pod} not found"))),
    }
}

/// An edge's failure to start a stream, as a Status.
fn edge_error(what: &str, msg: &str) -> ApiError {
    if msg.contains("not found") || msg.contains("no such") {
        ApiError::not_found(format!("{what}: {msg}"))
    } else {
        ApiError::internal(format!("{what}: {msg}"))
    }
}

type P = Path<(String, String, String)>;

/// `GET .../log`.
pub async fn logs(
    State(api): State<Arc<Api>>,
    Path((node, ns, pod)): P,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pairs = query_pairs(q.as_deref());
    let tail = match param(&pairs, "tailLines") {
        "" => None,
        t => Some(t.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("tailLines={t}: expected a number of lines"))
        })?),
    };
    let req = TunnelRequest::Logs {
        namespace: ns.clone(),
        pod: pod.clone(),
        container: param(&pairs, "container").to_string(),
        follow: flag(&pairs, "follow")?,
        tail,
        timestamps: flag(&pairs, "timestamps")?,
    };
    check_pod(&api, &node, &ns, &pod).await?;
    let mut stream = api
        .hub
        .tunnels
        .open_as(&node, req, auth::bearer_of(&headers))
        .await?;
    let what = format!("logs of {ns}/{pod} on node {node}");
    // The first output decides between an error Status and a 200 with the stream.
    let first = stream.output.recv().await;
    let first = match first {
        Some(TunnelOutput::End { error: Some(e), .. }) => return Err(edge_error(&what, &e)),
        other => other,
    };
    let body = futures_util::stream::unfold(
        (first, Some(stream), what),
        |(pending, stream, what)| async move {
            let mut stream: TunnelStream = stream?;
            let next = match pending {
                Some(o) => Some(o),
                None => stream.output.recv().await,
            };
            match next {
                Some(TunnelOutput::Data { data, .. }) => Some((
                    Ok(axum::body::Bytes::from(data)),
                    (None, Some(stream), what),
                )),
                Some(TunnelOutput::End { error: Some(e), .. }) => Some((
                    Err(std::io::Error::other(format!("{what}: {e}"))),
                    (None, None, what),
                )),
                Some(TunnelOutput::End { .. }) | None => None,
            }
        },
    );
    let mut resp = Body::from_stream(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

/// Whether the request asks to upgrade to barge-stream.
pub(super) fn wants_upgrade(req: &Request) -> bool {
    let h = req.headers();
    let conn = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    let up = h
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(UPGRADE));
    conn && up
}

/// One exec frame.
pub fn frame(fd: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(fd);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// `GET .../exec` (upgraded).
pub async fn exec(
    State(api): State<Arc<Api>>,
    Path((node, ns, pod)): P,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> ApiResult<Response> {
    if !wants_upgrade(&req) {
        return Err(ApiError::bad_request(format!(
            "exec needs Connection: Upgrade and Upgrade: {UPGRADE}"
        )));
    }
    let pairs = query_pairs(q.as_deref());
    let cmd: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if cmd.is_empty() {
        return Err(ApiError::bad_request(
            "exec needs at least one command= parameter",
        ));
    }
    let treq = TunnelRequest::Exec {
        namespace: ns.clone(),
        pod: pod.clone(),
        container: param(&pairs, "container").to_string(),
        cmd,
        stdin: flag(&pairs, "stdin")?,
        tty: flag(&pairs, "tty")?,
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::bad_request("this connection cannot be upgraded"));
    };
    check_pod(&api, &node, &ns, &pod).await?;
    let stream = api
        .hub
        .tunnels
        .open_as(&node, treq, auth::bearer_of(req.headers()))
        .await?;
    let what = format!("exec in {ns}/{pod} on node {node}");
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => pump(TokioIo::new(up), stream, &what).await,
            Err(e) => tracing::warn!("{what}: upgrade failed: {e}"),
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static(UPGRADE));
    Ok(resp)
}

/// Move frames between the client and the tunnel until the edge ends the stream (or the
/// client goes away, which cancels it).
pub(super) async fn pump<S>(io: S, stream: TunnelStream, what: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    // Dropping `output` (on return) cancels the stream on the edge.
    let TunnelStream { input, mut output } = stream;
    let reader = tokio::spawn(async move {
        let mut input = Some(input);
        loop {
            let mut hdr = [0u8; 5];
            if rd.read_exact(&mut hdr).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
            if len > MAX_IN_FRAME {
                break;
            }
            let mut buf = vec![0u8; len];
            if rd.read_exact(&mut buf).await.is_err() {
                break;
            }
            if hdr[0] != 0 {
                continue;
            }
            let Some(tx) = &input else { continue };
            let close = buf.is_empty();
            if tx.send(buf).await.is_err() || close {
                input = None;
            }
        }
        // Client gone or done writing: close stdin.
        if let Some(tx) = input {
            let _ = tx.send(Vec::new()).await;
        }
    });
    let end = loop {
        match output.recv().await {
            Some(TunnelOutput::Data { fd, data }) => {
                if wr.write_all(&frame(fd, &data)).await.is_err() || wr.flush().await.is_err() {
                    tracing::info!("{what}: client went away; cancelling");
                    reader.abort();
                    return;
                }
            }
            Some(TunnelOutput::End { exit_code, error }) => {
                break json!({"exitCode": exit_code, "error": error});
            }
            None => break json!({"exitCode": null, "error": "the node's session ended"}),
        }
    };
    let body = end.to_string();
    let _ = wr.write_all(&frame(FD_END, body.as_bytes())).await;
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let p = query_pairs(Some(
            "command=sh&command=-c&command=echo%20hi+there&tty=true&x",
        ));
        let cmd: Vec<_> = p
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cmd, ["sh", "-c", "echo hi there"]);
        assert!(flag(&p, "tty").unwrap());
        assert!(!flag(&p, "stdin").unwrap());
        assert!(flag(&p, "x").unwrap());
        assert_eq!(query_pairs(Some("a=%zz%4"))[0].1, "%zz%4");
    }
}
