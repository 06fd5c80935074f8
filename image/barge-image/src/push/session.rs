//! RegistrySession: one repository on one registry host as a push talks to it. Credentials
//! come from the pull's client (oci-client's Bearer-token flow, or the stored / given Basic
//! credentials); requests go out through reqwest with the host's scheme, CAs, TLS checking,
//! timeout and proxy. Every answer is turned into the image layer's errors: refused
//! credentials are [`Error::Unauthorized`], anything else the registry says is
//! [`Error::Registry`] with its error codes.

use std::time::Duration;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};

use crate::config::Config;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::hosts::Endpoint;
use crate::pull::{endpoint_client, with_causes};
use crate::reference::ImageRef;

/// How long a silent registry is waited for (connect: the host's `dial_timeout` or 30 s).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct RegistrySession {
    http: reqwest::Client,
    /// `scheme://host` (upload locations may be relative to it).
    origin: Url,
    /// `scheme://host/v2[/prefix]/<repository>`.
    repo_url: String,
    /// The repository as this host names it (`team/app`).
    pub repository: String,
    /// The host, for errors.
    pub host: String,
    /// The `Authorization` header value, when there are credentials or a token.
    authorization: std::sync::Mutex<Option<String>>,
    /// Where a Bearer token came from, to get a new one when it expires mid-push.
    token_source: Option<TokenSource>,
}

struct TokenSource {
    client: oci_client::Client,
    auth: RegistryAuth,
    remote: oci_client::Reference,
}

impl RegistrySession {
    /// Open a session for pushing `target` to `ep` (a host of `target`'s registry), asking the
    /// token service (if the registry has one) for pull and push rights on the repository.
    pub async fn open(ep: &Endpoint, config: &Config, target: &ImageRef) -> Result<Self> {
        let remote = ep.reference(target)?;
        let (client, auth) = endpoint_client(ep, target.registry(), config)?;
        let token = client
            .auth(&remote, &auth, RegistryOperation::Push)
            .await
            .map_err(|e| {
                let reason = format!(
                    "authenticating to push {}: {}",
                    target.canonical(),
                    with_causes(&e)
                );
                match e {
                    oci_client::errors::OciDistributionError::AuthenticationFailure(_)
                    | oci_client::errors::OciDistributionError::UnauthorizedError { .. } => {
                        Error::Unauthorized {
                            registry: ep.host.clone(),
                            reason,
                        }
                    }
                    _ => Error::Registry {
                        registry: ep.host.clone(),
                        reason,
                    },
                }
            })?;
        let bearer = token.is_some();
        let authorization = match (token, &auth) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, RegistryAuth::Basic(u, p)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
            _ => None,
        };
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("barge/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(ep.dial_timeout.unwrap_or(Duration::from_secs(30)))
            .read_timeout(READ_TIMEOUT)
            .tls_danger_accept_invalid_certs(ep.skip_verify);
        for path in &ep.ca {
            let pem = std::fs::read(path).ctx("read CA certificate", path)?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                Error::invalid(format!("CA certificate {}", path.display()), e.to_string())
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if let Some(p) = &ep.proxy {
            let proxy = reqwest::Proxy::all(p)
                .map_err(|e| Error::invalid(format!("proxy {p} ({})", ep.source), e.to_string()))?;
            builder = builder.proxy(proxy);
        }
        let http = builder.build().map_err(|e| Error::Registry {
            registry: ep.host.clone(),
            reason: format!("setting up the HTTP client: {}", with_causes(&e)),
        })?;
        let scheme = if ep.http { "http" } else { "https" };
        let host = if ep.host == "docker.io" {
            "registry-1.docker.io"
        } else {
            ep.host.as_str()
        };
        let origin = Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|e| Error::invalid(format!("registry host {host}"), e.to_string()))?;
        let repository = remote.repository().to_string();
        let repo_url = format!("{scheme}://{host}/v2/{repository}");
        Ok(RegistrySession {
            http,
            origin,
            repo_url,
            repository,
            host: ep.host.clone(),
            authorization: std::sync::Mutex::new(authorization),
            token_source: bearer.then_some(TokenSource {
                client,
                auth,
                remote,
            }),
        })
    }

    fn error(&self, reason: String) -> Error {
        Error::Registry {
            registry: self.host.clone(),
            reason,
        }
    }

    /// A URL the registry gave (a `Location`), absolute.
    pub fn resolve(&self, location: &str) -> Result<Url> {
        self.origin
            .join(location)
            .map_err(|e| self.error(format!("bad upload location {location:?}: {e}")))
    }

    /// The URL of `path` below the repository (`/blobs/uploads/`...).
    pub fn url(&self, path: &str) -> Result<Url> {
        let text = format!("{}{path}", self.repo_url);
        Url::parse(&text).map_err(|e| self.error(format!("bad URL {text:?}: {e}")))
    }

    /// Send a request (with the session's credentials); `what` names it in errors. A
    /// transport failure (refused, cut, timed out) is [`Error::Registry`]. A Bearer token
    /// that expired (401) is renewed once: a request without a body is sent again, one with a
    /// body (a chunk, which cannot be replayed) fails as [`Error::Registry`] so that the
    /// upload asks where it stands and goes on.
    pub async fn send(
        &self,
        what: &str,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<Response> {
        let replayable = body.is_none();
        let resp = self
            .send_once(what, method.clone(), url.clone(), headers.clone(), body)
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED || !self.renew_token().await {
            return Ok(resp);
        }
        if !replayable {
            return Err(self.error(format!("{what}: the token expired (renewed)")));
        }
        self.send_once(what, method, url, headers, None).await
    }

    async fn send_once(
        &self,
        what: &str,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<Response> {
        let mut rb = self.http.request(method, url).headers(headers);
        let authorization = self.authorization.lock().ok().and_then(|a| a.clone());
        if let Some(a) = authorization {
            rb = rb.header(AUTHORIZATION, a);
        }
        rb = match body {
            Some(b) => rb.body(b),
            None => rb.header(CONTENT_LENGTH, 0),
        };
        rb.send()
            .await
            .map_err(|e| self.error(format!("{what}: {}", with_causes(&e))))
    }

    /// Ask the token service for a new Bearer token; false when there is no token to renew
    /// or the service refuses.
    async fn renew_token(&self) -> bool {
        let Some(src) = &self.token_source else {
            return false;
        };
        match src
            .client
            .auth(&src.remote, &src.auth, RegistryOperation::Push)
            .await
        {
            Ok(Some(token)) => {
                if let Ok(mut a) = self.authorization.lock() {
                    *a = Some(format!("Bearer {token}"));
                }
                true
            }
            _ => false,
        }
    }

    /// `resp` if its status is one of `ok`; else the registry's refusal as an error (401 and
    /// 403: [`Error::Unauthorized`]).
    pub async fn expect(&self, what: &str, resp: Response, ok: &[StatusCode]) -> Result<Response> {
        let status = resp.status();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let detail = registry_errors(&body);
        let reason = format!("{what}: {status}{detail}");
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(Error::Unauthorized {
                registry: self.host.clone(),
                reason: format!(
                    "{reason} (push access to {} denied: check the credentials, `barge login`)",
                    self.repository
                ),
            });
        }
        Err(self.error(reason))
    }

    /// Whether the repository has blob `digest` (HEAD).
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let what = format!("checking blob {digest}");
        let url = self.url(&format!("/blobs/{digest}"))?;
        let resp = self
            .send(&what, Method::HEAD, url, HeaderMap::new(), None)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        self.expect(&what, resp, &[StatusCode::OK]).await?;
        Ok(true)
    }

    /// The `Location` of an answer, absolute.
    pub fn location(&self, what: &str, resp: &Response) -> Result<Url> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.error(format!("{what}: the answer has no Location")))?;
        self.resolve(loc)
    }

    /// Put a manifest (`reference` a tag or digest) with its media type; returns the digest
    /// the registry gives (`Docker-Content-Digest`), if it gives one.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<String>> {
        let what = format!("putting manifest {reference} in {}", self.repository);
        let url = self.url(&format!("/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        if let Ok(v) = media_type.parse() {
            headers.insert(CONTENT_TYPE, v);
        }
        let resp = self
            .send(&what, Method::PUT, url, headers, Some(bytes.into()))
            .await?;
        let resp = self
            .expect(&what, resp, &[StatusCode::CREATED, StatusCode::OK])
            .await?;
        Ok(resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }
}

/// The registry's error codes and messages (`{"errors":[{"code","message"}]}`) as
/// `: CODE message; ...`, or the start of the body when it is something else.
fn registry_errors(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(env) = serde_json::from_str::<Envelope>(body) {
        let items: Vec<String> = env
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect();
        if !items.is_empty() {
            return format!(": {}", items.join("; "));
        }
    }
    let text = body.trim();
    if text.is_empty() {
        return String::new();
    }
    let cut: String = text.chars().take(200).collect();
    format!(": {cut}")
}
