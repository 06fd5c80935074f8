//! The fleet API client: hyper's HTTP/1 client over https (rustls, trusting exactly the
//! config's fleet CA, presenting the admin client certificate when the config has one) or
//! plain HTTP; the bearer token on every request when there is one, and the `x-barge-csrf`
//! header the hub asks of certificate-authenticated writes. Kubernetes `Status` bodies are
//! turned into their message.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{FleetConf, Identity};

/// What a certificate-authenticated write carries (see the hub's `api::auth`).
const CSRF_HEADER: &str = "x-barge-csrf";

/// A failed call: the server's message (from its Status), or why it could not be reached.
#[derive(Debug)]
pub struct CallError {
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}

pub type CallResult<T> = Result<T, CallError>;

/// A successful answer.
pub struct Answer {
    pub code: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> CallResult<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| CallError {
            message: format!("the server's answer is not JSON: {e}"),
        })
    }
}

pub struct Client {
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    auth: Option<HeaderValue>,
}

/// The TLS client: roots = the config's CA PEM only; the client certificate if any.
pub fn tls_config(
    ca_pem: &str,
    identity: Option<&Identity>,
) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let c = c.map_err(|e| anyhow::anyhow!("the config's \"ca\" is not PEM: {e}"))?;
        roots
            .add(c)
            .map_err(|e| anyhow::anyhow!("the config's \"ca\": {e}"))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let cfg = match identity {
        Some(id) => {
            let chain = CertificateDer::pem_slice_iter(&id.cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("client certificate: not PEM: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(&id.key_pem)
                .map_err(|e| anyhow::anyhow!("client key: not a PEM private key: {e}"))?;
            b.with_client_auth_cert(chain, key)
                .map_err(|e| anyhow::anyhow!("client certificate and key: {e}"))?
        }
        None => b.with_no_client_auth(),
    };
    // ALPN (http/1.1) is set by hyper-rustls's `enable_http1`.
    Ok(cfg)
}

impl Client {
    pub fn new(conf: &FleetConf, identity: Option<&Identity>) -> anyhow::Result<Client> {
        let auth = match conf.token.as_deref().filter(|t| !t.is_empty()) {
            // A client certificate, when there is one, is the identity: no token beside it.
            Some(token) if identity.is_none() => Some(
                HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    anyhow::anyhow!("the admin token has characters a header cannot carry")
                })?,
            ),
            _ => None,
        };
        let tls = tls_config(conf.ca.as_deref().unwrap_or(""), identity)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Client {
            http: hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build(connector),
            base: conf.server.trim_end_matches('/').to_string(),
            auth,
        })
    }

    fn builder(&self, method: Method, uri: &str) -> hyper::http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(CSRF_HEADER, "1");
        if let Some(a) = &self.auth {
            b = b.header(AUTHORIZATION, a.clone());
        }
        b
    }

    /// Send a request; the raw response (any status).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
        extra: &[(&'static str, &'static str)],
    ) -> CallResult<Response<Incoming>> {
        let uri = format!("{}{path}", self.base);
        let mut b = self.builder(method, &uri);
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some((data, ctype)) => {
                b = b.header(CONTENT_TYPE, ctype);
                Full::new(Bytes::from(data))
            }
            None => Full::new(Bytes::new()),
        };
        let req = b.body(body).map_err(|e| CallError {
            message: format!("bad request URL {uri}: {e}"),
        })?;
        self.http.request(req).await.map_err(|e| {
            let mut msg = format!("cannot reach {}: {e}", self.base);
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            CallError { message: msg }
        })
    }

    /// Send a request with any headers and body (the ServiceBus proxy); the raw response.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(hyper::header::HeaderName, HeaderValue)],
        body: Vec<u8>,
    ) -> CallResult<Response<Incoming>> {
        let uri = format!("{}{path}", self.base);
        let mut b = self.builder(method, &uri);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        let req = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError {
                message: format!("bad request URL {uri}: {e}"),
            })?;
        self.http.request(req).await.map_err(|e| {
            let mut msg = format!("cannot reach {}: {e}", self.base);
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            CallError { message: msg }
        })
    }

    /// Send and read the whole answer; a non-2xx status is an error with the Status message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> CallResult<Answer> {
        let body = body.map(|v| (v.to_string().into_bytes(), "application/json"));
        let resp = self.send(method, path, body, &[]).await?;
        let code = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| CallError {
                message: format!("reading the answer: {e}"),
            })?
            .to_bytes();
        if !code.is_success() {
            return Err(status_error(code, &body));
        }
        Ok(Answer {
            code,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> CallResult<serde_json::Value> {
        self.call(Method::GET, path, None).await?.json()
    }
}

/// A non-2xx answer as an error: the Status message, or the body's text.
pub fn status_error(code: StatusCode, body: &[u8]) -> CallError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(body).trim().to_string();
            if t.is_empty() {
                format!("HTTP {code}")
            } else {
                t
            }
        });
    CallError { message }
}
