//! `barge fleet proxy NODE:PORT /path` and `barge fleet proxy pod/NAME:PORT /path`: one HTTP
//! request to a service on an edge through the hub's ServiceBus
//! (`/api/v1/nodes/{node}/proxy/{port}/...`, `/api/v1/namespaces/{ns}/pods/{pod}/proxy/...`).
//! The response body goes to stdout as it arrives (with `-i`, the status line and headers
//! first); HTTP >= 400 exits 1 with the status (and the hub's message) on stderr.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use http_body_util::BodyExt as _;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;
use tokio::io::AsyncWriteExt as _;

use crate::client::Client;

/// What to call.
pub struct ProxyArgs<'a> {
    pub target: &'a str,
    pub path: &'a str,
    pub method: Option<&'a str>,
    pub data: Option<&'a str>,
    pub headers: &'a [String],
    pub include: bool,
}

/// Percent-encode a path segment.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The API path for `target` (`NODE:PORT` or `pod/NAME:PORT`) and `path`.
fn api_path(target: &str, ns: &str, path: &str) -> anyhow::Result<String> {
    let (what, port) = target
        .rsplit_once(':')
        .with_context(|| format!("{target:?}: expected NODE:PORT or pod/NAME:PORT"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .with_context(|| format!("{target:?}: {port:?} is not a port (1-65535)"))?;
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let base = match what.split_once('/') {
        Some(("pod" | "pods" | "po", name)) if !name.is_empty() => format!(
            "/api/v1/namespaces/{}/pods/{}/proxy/{port}",
            seg(ns),
            seg(name)
        ),
        None if !what.is_empty() => format!("/api/v1/nodes/{}/proxy/{port}", seg(what)),
        _ => bail!("{target:?}: expected NODE:PORT or pod/NAME:PORT"),
    };
    Ok(format!("{base}{path}"))
}

/// `-H 'K: V'`.
fn header(h: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (k, v) = h
        .split_once(':')
        .with_context(|| format!("-H {h:?}: expected 'Name: value'"))?;
    let k = HeaderName::from_bytes(k.trim().as_bytes())
        .with_context(|| format!("-H {h:?}: bad header name"))?;
    let v = HeaderValue::from_str(v.trim()).with_context(|| format!("-H {h:?}: bad value"))?;
    Ok((k, v))
}

/// `-d DATA`, `-d @FILE`, `-d @-` (stdin).
fn body(data: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match data {
        None => Ok(Vec::new()),
        Some("@-") => {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).context("read stdin")?;
            Ok(v)
        }
        Some(d) => match d.strip_prefix('@') {
            Some(f) => std::fs::read(f).with_context(|| format!("read {f}")),
            None => Ok(d.as_bytes().to_vec()),
        },
    }
}

pub async fn proxy(c: &Client, ns: Option<&str>, a: ProxyArgs<'_>) -> anyhow::Result<ExitCode> {
    let path = api_path(a.target, ns.unwrap_or("default"), a.path)?;
    let method = match a.method {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .with_context(|| format!("-X {m:?}: not an HTTP method"))?,
        None if a.data.is_some() => Method::POST,
        None => Method::GET,
    };
    let headers = a
        .headers
        .iter()
        .map(|h| header(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let data = body(a.data)?;
    let resp = c.send_with(method, &path, &headers, data).await?;
    let status = resp.status();
    let mut out = tokio::io::stdout();
    if a.include {
        let mut head = format!("{:?} {status}\r\n", resp.version());
        for (k, v) in resp.headers() {
            head.push_str(&format!(
                "{k}: {}\r\n",
                String::from_utf8_lossy(v.as_bytes())
            ));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes()).await?;
    }
    let is_status = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let mut body = resp.into_body();
    if status.as_u16() >= 400 && is_status && !a.include {
        // The hub's own Status (or a JSON error from the service): its message on stderr.
        let all = body.collect().await.context("read the answer")?.to_bytes();
        let msg = crate::client::status_error(status, &all).message;
        eprintln!("barge fleet: HTTP {status}: {msg}");
        return Ok(ExitCode::from(1));
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.context("read the answer")?;
        if let Some(d) = frame.data_ref() {
            out.write_all(d).await?;
        }
    }
    out.flush().await?;
    if status.as_u16() >= 400 {
        eprintln!("barge fleet: HTTP {status}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            api_path("edge-a:8080", "default", "/x?a=1").unwrap(),
            "/api/v1/nodes/edge-a/proxy/8080/x?a=1"
        );
        assert_eq!(
            api_path("pod/web:80", "prod", "index.html").unwrap(),
            "/api/v1/namespaces/prod/pods/web/proxy/80/index.html"
        );
        assert!(api_path("edge-a", "d", "/").is_err());
        assert!(api_path("edge-a:0", "d", "/").is_err());
        assert!(api_path("svc/x:80", "d", "/").is_err());
        assert!(header("X-A: b").is_ok() && header("nocolon").is_err());
    }
}
