//! Where to fetch a registry's images from: the ordered list of endpoints (mirrors first, the
//! registry itself last) that pull tries one after the other.
//!
//! Two configurations are read, both as their original tools define them:
//! - containerd's hosts files, `certs.d/<namespace>/hosts.toml` in the config directory, the
//!   namespace being the registry (`host:port` also as `host_port_`) or else `_default`. Each
//!   `[host."URL"]` table is a host tried in file order, then `server` (or the registry itself
//!   when `server` is absent). Per host: `capabilities` (pull, resolve, push), `ca` (a path or
//!   a list, relative to the file), `skip_verify`, `override_path`, `dial_timeout`, `proxy`;
//!   `header` and `client` are read but barge's registry client can't send them, so a host
//!   that needs them is skipped with that reason. A namespace directory without `hosts.toml`
//!   is docker's layout (`*.crt` CAs for the registry itself).
//! - docker's `registry-mirrors` in `config.json`: for docker.io only, tried after the hosts
//!   files' hosts and before docker.io itself.
//!
//! Paths: as in containerd, `/v2` is appended to a host's path unless it already ends with it
//! or `override_path` is set (then the URL's path is the API root). Mirrors are asked for the
//! same repository (`library/busybox` for docker.io's `busybox`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::distribution::Reference;
use serde::Deserialize;

use crate::config::Config;
use crate::error::{Error, IoContext, Result};
use crate::reference::{is_loopback_registry, ImageRef};

/// What a host may be used for (containerd's host capabilities).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Fetch content by digest (blobs, manifests by digest).
    pub pull: bool,
    /// Resolve a tag to a digest (a trusted operation).
    pub resolve: bool,
    pub push: bool,
}

impl Capabilities {
    pub const ALL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: true,
    };
}

/// One place to fetch a registry's images from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Plain HTTP rather than HTTPS.
    pub http: bool,
    /// `host[:port]` as connected to.
    pub host: String,
    /// The API root path: `/v2`, or with `override_path` whatever the URL says.
    pub path: String,
    pub capabilities: Capabilities,
    pub skip_verify: bool,
    /// CA certificates (PEM files) to trust beside the system's.
    pub ca: Vec<PathBuf>,
    pub dial_timeout: Option<Duration>,
    pub proxy: Option<String>,
    /// Extra request headers (`header`), name and values.
    pub headers: Vec<(String, Vec<String>)>,
    /// TLS client certificates (`client`): certificate and key files.
    pub client_certs: Vec<(PathBuf, Option<PathBuf>)>,
    /// The registry itself (the `server`, or the registry's default) rather than a mirror.
    pub origin: bool,
    /// Where it was configured (for messages).
    pub source: String,
}

impl Endpoint {
    /// `scheme://host/path`, for messages.
    pub fn url(&self) -> String {
        let scheme = if self.http { "http" } else { "https" };
        let host = if self.host == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.host
        };
        format!("{scheme}://{host}{}", self.path)
    }

    /// Why this endpoint can't be used by barge's registry client, if it can't: it would need
    /// a feature the client lacks. The pull skips it, naming the reason.
    pub fn unsupported(&self) -> Option<String> {
        if !self.headers.is_empty() {
            return Some(format!(
                "header ({} in {}) is not supported: barge's registry client can't send extra headers",
                self.headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.source
            ));
        }
        if !self.client_certs.is_empty() {
            return Some(format!(
                "client certificates (client in {}) are not supported",
                self.source
            ));
        }
        if self.repository_prefix().is_none() {
            return Some(format!(
                "API root {} is not supported: barge's registry client asks for /v2/<repository>, \
                 so the path must be /v2 or, with override_path, start with /v2/",
                self.path
            ));
        }
        None
    }

    /// What goes between `/v2/` and the repository: empty for a plain `/v2` root, `a/b` for
    /// an overridden root `/v2/a/b`. `None` when the root can't be expressed that way.
    fn repository_prefix(&self) -> Option<&str> {
        let rest = self.path.strip_prefix("/v2")?;
        if rest.is_empty() {
            return Some("");
        }
        let rest = rest.strip_prefix('/')?.trim_end_matches('/');
        (!rest.is_empty()).then_some(rest)
    }

    /// The reference to ask this endpoint for: same repository (under the overridden root, if
    /// any), tag and digest; the registry is this endpoint's host.
    pub fn reference(&self, image: &ImageRef) -> Result<Reference> {
        let prefix = self.repository_prefix().ok_or_else(|| {
            Error::invalid(
                format!("registry host {}", self.url()),
                self.unsupported().unwrap_or_default(),
            )
        })?;
        let repository = if prefix.is_empty() {
            image.repository().to_string()
        } else {
            format!("{prefix}/{}", image.repository())
        };
        let host = self.host.clone();
        let digest = image.digest().map(|d| d.to_string());
        Ok(match (image.tag(), digest) {
            (Some(t), Some(d)) => Reference::with_tag_and_digest(host, repository, t.into(), d),
            (None, Some(d)) => Reference::with_digest(host, repository, d),
            (t, None) => Reference::with_tag(host, repository, t.unwrap_or("latest").into()),
        })
    }
}

/// The endpoints to try for `registry`, in order: the hosts files' hosts, then docker's
/// `registry-mirrors` (docker.io only), then the registry itself (or the `server`).
/// `insecure` makes the registry itself plain HTTP (`--insecure`).
pub fn endpoints(config: &Config, registry: &str, insecure: bool) -> Result<Vec<Endpoint>> {
    let mut out = Vec::new();
    let hosts_file = find_hosts_file(config, registry)?;
    let parsed = match &hosts_file {
        Some(path) => Some(parse_hosts_file(path)?),
        None => None,
    };
    let (hosts, server) = match parsed {
        Some((hosts, server)) => (hosts, server),
        None => (Vec::new(), None),
    };
    out.extend(hosts);
    if registry == "docker.io" {
        for (i, m) in config.registry_mirrors.iter().enumerate() {
            out.push(docker_mirror(config, i, m)?);
        }
    }
    match server {
        Some(s) => out.push(s),
        None => out.push(default_origin(config, registry, insecure)?),
    }
    Ok(out)
}

/// The registry itself with docker's defaults: HTTPS with `certs.d/<registry>/*.crt`, plain
/// HTTP for loopback registries without a CA, configured insecure ones and `--insecure`.
fn default_origin(config: &Config, registry: &str, insecure: bool) -> Result<Endpoint> {
    let dir = config.dir.join("certs.d").join(registry);
    let ca = crt_files(&dir)?;
    let http = insecure
        || (is_loopback_registry(registry) && ca.is_empty())
        || config.insecure_registries.iter().any(|r| r == registry);
    Ok(Endpoint {
        http,
        host: registry.to_string(),
        path: "/v2".into(),
        capabilities: Capabilities::ALL,
        skip_verify: false,
        ca,
        dial_timeout: None,
        proxy: None,
        headers: Vec::new(),
        client_certs: Vec::new(),
        origin: true,
        source: format!("the registry {registry}"),
    })
}

/// `*.crt` in `dir` (docker's layout), sorted; none if the directory is missing.
fn crt_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.ctx("read", dir)?.path();
        if path.extension().is_some_and(|e| e == "crt") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// One entry of docker's `registry-mirrors`: a URL with scheme and no path, as docker
/// requires.
fn docker_mirror(config: &Config, index: usize, text: &str) -> Result<Endpoint> {
    let what = || {
        format!(
            "registry-mirrors[{index}] in config file {}",
            config.dir.join("config.json").display()
        )
    };
    let url = parse_url(text).map_err(|r| Error::invalid(what(), r))?;
    if url.scheme.is_none() {
        return Err(Error::invalid(
            what(),
            format!("{text:?} has no scheme: write https://{text} or http://{text}"),
        ));
    }
    if !url.path.trim_end_matches('/').is_empty() {
        return Err(Error::invalid(
            what(),
            format!("{text:?}: a mirror URL can't have a path"),
        ));
    }
    let ca = crt_files(&config.dir.join("certs.d").join(&url.host))?;
    Ok(Endpoint {
        http: url.scheme == Some(false),
        host: url.host,
        path: "/v2".into(),
        capabilities: Capabilities {
            pull: true,
            resolve: true,
            push: false,
        },
        skip_verify: false,
        ca,
        dial_timeout: None,
        proxy: None,
        headers: Vec::new(),
        client_certs: Vec::new(),
        origin: false,
        source: what(),
    })
}

/// The hosts file for `registry`: the first namespace directory that exists among
/// `host_port_`, `host:port` and `_default` (containerd's order); `None` when that directory
/// has no `hosts.toml` (docker's layout) or none exists.
fn find_hosts_file(config: &Config, registry: &str) -> Result<Option<PathBuf>> {
    let base = config.dir.join("certs.d");
    let mut names = Vec::new();
    if let Some(i) = registry.rfind(':').filter(|&i| i > 0) {
        names.push(format!("{}_{}_", &registry[..i], &registry[i + 1..]));
    }
    names.push(registry.to_string());
    names.push("_default".to_string());
    for name in names {
        let dir = base.join(&name);
        match fs::metadata(&dir) {
            Ok(_) => {
                let file = dir.join("hosts.toml");
                return Ok(file.is_file().then_some(file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("stat", dir, e)),
        }
    }
    Ok(None)
}

/// The fields of a host table (and of the file's top level, which configures `server`).
#[derive(Debug, Default, Deserialize)]
struct HostFields {
    capabilities: Option<Vec<String>>,
    ca: Option<OneOrMany>,
    client: Option<toml::Value>,
    skip_verify: Option<bool>,
    header: Option<toml::Table>,
    #[serde(default)]
    override_path: bool,
    dial_timeout: Option<String>,
    proxy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Parse a hosts file: its hosts in file order, and the `server` endpoint if it names one.
fn parse_hosts_file(path: &Path) -> Result<(Vec<Endpoint>, Option<Endpoint>)> {
    let text = fs::read_to_string(path).ctx("read hosts file", path)?;
    let bad = |what: String, reason: String| {
        Error::invalid(format!("{what} in hosts file {}", path.display()), reason)
    };
    let mut doc: toml::Table = toml::from_str(&text)
        .map_err(|e| Error::invalid(format!("hosts file {}", path.display()), e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("/"));
    let server = match doc.remove("server") {
        None => None,
        Some(toml::Value::String(s)) => Some(s),
        Some(other) => {
            return Err(bad(
                "server".into(),
                format!("expected a URL string, found {}", other.type_str()),
            ));
        }
    };
    let hosts = match doc.remove("host") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t,
        Some(other) => {
            return Err(bad(
                "host".into(),
                format!("expected a table, found {}", other.type_str()),
            ))
        }
    };
    let mut out = Vec::new();
    for (url, fields) in hosts {
        let what = format!("[host.{url:?}]");
        let fields: HostFields = fields
            .try_into()
            .map_err(|e: toml::de::Error| bad(what.clone(), e.message().to_string()))?;
        out.push(endpoint(&url, fields, base, false, what.clone()).map_err(|r| bad(what, r))?);
    }
    // What is left at the top level configures the server.
    let server_ep = match server {
        Some(url) => {
            let fields: HostFields =
                toml::Value::Table(doc)
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        bad("the top level".into(), e.message().to_string())
                    })?;
            let what = "server".to_string();
            Some(endpoint(&url, fields, base, true, what.clone()).map_err(|r| bad(what, r))?)
        }
        None => None,
    };
    // The source names the file.
    let name = path.display().to_string();
    let fix = |mut e: Endpoint| {
        e.source = format!("{} in {name}", e.source);
        e
    };
    Ok((out.into_iter().map(fix).collect(), server_ep.map(fix)))
}

fn endpoint(
    url: &str,
    f: HostFields,
    base: &Path,
    origin: bool,
    source: String,
) -> std::result::Result<Endpoint, String> {
    let parsed = parse_url(url)?;
    // Without a scheme containerd means HTTPS.
    let http = parsed.scheme == Some(false);
    let mut path = clean_path(&parsed.path);
    if !f.override_path && !path.ends_with("/v2") {
        path.push_str("/v2");
    }
    let capabilities = match f.capabilities {
        None => Capabilities::ALL,
        Some(list) => {
            let mut c = Capabilities {
                pull: false,
                resolve: false,
                push: false,
            };
            for cap in list {
                match cap.to_ascii_lowercase().as_str() {
                    "pull" => c.pull = true,
                    "resolve" => c.resolve = true,
                    "push" => c.push = true,
                    _ => {
                        return Err(format!(
                            "unknown capability {cap:?} (expected pull, resolve or push)"
                        ))
                    }
                }
            }
            c
        }
    };
    let abs = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let ca = match f.ca {
        None => Vec::new(),
        Some(OneOrMany::One(p)) => vec![abs(&p)],
        Some(OneOrMany::Many(ps)) => ps.iter().map(|p| abs(p)).collect(),
    };
    let mut client_certs = Vec::new();
    match f.client {
        None => {}
        Some(toml::Value::String(p)) => client_certs.push((abs(&p), None)),
        Some(toml::Value::Array(items)) => {
            for item in items {
                match item {
                    toml::Value::String(p) => client_certs.push((abs(&p), None)),
                    toml::Value::Array(pair) => match pair.as_slice() {
                        [toml::Value::String(c), toml::Value::String(k)] => {
                            client_certs.push((abs(c), (!k.is_empty()).then(|| abs(k))))
                        }
                        _ => return Err(format!("client: {pair:?} is not a [cert, key] pair")),
                    },
                    other => {
                        return Err(format!(
                            "client: expected a path, found {}",
                            other.type_str()
                        ))
                    }
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "client: expected a path or a list, found {}",
                other.type_str()
            ))
        }
    }
    let mut headers = Vec::new();
    for (name, value) in f.header.unwrap_or_default() {
        let values = match value {
            toml::Value::String(s) => vec![s],
            toml::Value::Array(a) => a
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    other => Err(format!(
                        "header {name}: expected a string, found {}",
                        other.type_str()
                    )),
                })
                .collect::<std::result::Result<_, _>>()?,
            other => {
                return Err(format!(
                    "header {name}: expected a string or a list, found {}",
                    other.type_str()
                ))
            }
        };
        headers.push((name, values));
    }
    let dial_timeout = match f.dial_timeout {
        None => None,
        Some(t) => Some(parse_duration(&t).ok_or_else(|| {
            format!("dial_timeout {t:?} is not a duration such as \"1s\" or \"500ms\"")
        })?),
    };
    Ok(Endpoint {
        http,
        host: parsed.host,
        path,
        capabilities,
        skip_verify: f.skip_verify.unwrap_or(false),
        ca,
        dial_timeout,
        proxy: f.proxy,
        headers,
        client_certs,
        origin,
        source,
    })
}

struct Url {
    /// `Some(true)` https, `Some(false)` http, `None` no scheme given.
    scheme: Option<bool>,
    host: String,
    path: String,
}

/// `[http[s]://]host[:port][/path]`; no user, query or fragment.
fn parse_url(text: &str) -> std::result::Result<Url, String> {
    let (scheme, rest) = match text.split_once("://") {
        Some(("https", r)) => (Some(true), r),
        Some(("http", r)) => (Some(false), r),
        Some((s, _)) => {
            return Err(format!(
                "{text:?}: unsupported scheme {s:?} (http or https)"
            ))
        }
        None => (None, text),
    };
    if rest.contains(['?', '#', '@']) {
        return Err(format!(
            "{text:?}: a registry URL has no user, query or fragment"
        ));
    }
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    if !valid_host {
        return Err(format!("{text:?}: no valid host"));
    }
    Ok(Url {
        scheme,
        host: host.to_ascii_lowercase(),
        path: path.to_string(),
    })
}

/// `path.Clean` for URL paths, with "" for the root.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.iter().map(|s| format!("/{s}")).collect()
}

/// A Go duration (`1s`, `500ms`, `1m30s`, `2h`).
fn parse_duration(s: &str) -> Option<Duration> {
    let ns = barge_util::time::parse_go_duration(s.trim()).ok()?;
    u64::try_from(ns).ok().map(Duration::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> Config {
        Config::load(dir).unwrap()
    }

    fn write(dir: &Path, ns: &str, text: &str) -> PathBuf {
        let d = dir.join("certs.d").join(ns);
        fs::create_dir_all(&d).unwrap();
        let f = d.join("hosts.toml");
        fs::write(&f, text).unwrap();
        f
    }

    #[test]
    fn without_configuration_the_registry_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let eps = endpoints(&cfg(tmp.path()), "example.com", false).unwrap();
        assert_eq!(eps.len(), 1);
        assert!(eps[0].origin && !eps[0].http);
        assert_eq!(eps[0].url(), "https://example.com/v2");
        let eps = endpoints(&cfg(tmp.path()), "127.0.0.1:5000", false).unwrap();
        assert_eq!(eps[0].url(), "http://127.0.0.1:5000/v2");
        let eps = endpoints(&cfg(tmp.path()), "docker.io", false).unwrap();
        assert_eq!(eps[0].url(), "https://registry-1.docker.io/v2");
    }

    #[test]
    fn hosts_in_file_order_then_server() {
        let tmp = tempfile::tempdir().unwrap();
        let file = write(
            tmp.path(),
            "reg.example_5000_",
            r#"
server = "https://upstream.example:5000"
skip_verify = true

[host."http://zz.local:5001"]
  capabilities = ["pull"]
[host."https://aa.local/v2/"]
  capabilities = ["pull", "resolve"]
  ca = "mirror.crt"
  dial_timeout = "1.5s"
[host."https://bb.local/prefix"]
[host."https://cc.local/v2/upstream"]
  override_path = true
  ca = ["/abs/a.pem", "rel/b.pem"]
  [host."https://cc.local/v2/upstream".header]
    x-one = "1"
    x-two = ["a", "b"]
"#,
        );
        let base = file.parent().unwrap();
        let eps = endpoints(&cfg(tmp.path()), "reg.example:5000", false).unwrap();
        let urls: Vec<String> = eps.iter().map(|e| e.url()).collect();
        assert_eq!(
            urls,
            [
                "http://zz.local:5001/v2",
                "https://aa.local/v2",
                "https://bb.local/prefix/v2",
                "https://cc.local/v2/upstream",
                "https://upstream.example:5000/v2",
            ]
        );
        assert_eq!(
            eps[0].capabilities,
            Capabilities {
                pull: true,
                resolve: false,
                push: false
            }
        );
        assert_eq!(eps[2].capabilities, Capabilities::ALL);
        assert_eq!(eps[1].ca, vec![base.join("mirror.crt")]);
        assert_eq!(eps[1].dial_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(
            eps[3].ca,
            vec![PathBuf::from("/abs/a.pem"), base.join("rel/b.pem")]
        );
        assert_eq!(
            eps[3].headers,
            vec![
                ("x-one".to_string(), vec!["1".to_string()]),
                ("x-two".to_string(), vec!["a".to_string(), "b".to_string()])
            ]
        );
        assert!(eps[4].origin && eps[4].skip_verify && !eps[0].origin);
        assert!(!eps[0].skip_verify);
        // What barge's client can't do is named; the rest is usable.
        assert!(eps[2].unsupported().unwrap().contains("/prefix/v2"));
        assert!(eps[3].unsupported().unwrap().contains("x-one"));
        assert_eq!(eps[1].unsupported(), None);
        // The overridden root becomes a repository prefix.
        let mut cc = eps[3].clone();
        cc.headers.clear();
        let r = cc
            .reference(&ImageRef::parse("reg.example:5000/app/x:1").unwrap())
            .unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("cc.local", "upstream/app/x", Some("1"))
        );
    }

    #[test]
    fn default_namespace_and_docker_mirrors() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("config.json"),
            r#"{"registry-mirrors": ["http://127.0.0.1:5999/"]}"#,
        )
        .unwrap();
        write(
            tmp.path(),
            "_default",
            "[host.\"https://all.mirror\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
        );
        let eps = endpoints(&cfg(tmp.path()), "docker.io", false).unwrap();
        let urls: Vec<String> = eps.iter().map(|e| e.url()).collect();
        assert_eq!(
            urls,
            [
                "https://all.mirror/v2",
                "http://127.0.0.1:5999/v2",
                "https://registry-1.docker.io/v2"
            ]
        );
        let r = eps[1]
            .reference(&ImageRef::parse("busybox").unwrap())
            .unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5999", "library/busybox", Some("latest"))
        );
        // docker's mirrors are for docker.io only.
        let eps = endpoints(&cfg(tmp.path()), "quay.io", false).unwrap();
        assert_eq!(eps.len(), 2);
        // A registry's own directory (docker's layout, no hosts.toml) hides _default.
        fs::create_dir_all(tmp.path().join("certs.d/quay.io")).unwrap();
        let eps = endpoints(&cfg(tmp.path()), "quay.io", false).unwrap();
        assert_eq!(eps.len(), 1);
    }

    #[test]
    fn bad_files_and_mirrors_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "r.example",
            "[host.\"https://m\"]\ncapabilities = [\"fetch\"]\n",
        );
        let err = endpoints(&cfg(tmp.path()), "r.example", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hosts.toml") && err.contains("fetch"), "{err}");
        write(tmp.path(), "r.example", "server = [\n");
        let err = endpoints(&cfg(tmp.path()), "r.example", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hosts.toml"), "{err}");
        write(tmp.path(), "r.example", "[host.\"ftp://m\"]\n");
        let err = endpoints(&cfg(tmp.path()), "r.example", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ftp"), "{err}");
        for bad in ["mirror.example", "https://m.example/path", "https://u@m"] {
            fs::write(
                tmp.path().join("config.json"),
                format!(r#"{{"registry-mirrors": ["{bad}"]}}"#),
            )
            .unwrap();
            let err = endpoints(&cfg(tmp.path()), "docker.io", false)
                .unwrap_err()
                .to_string();
            assert!(err.contains("registry-mirrors[0]"), "{bad}: {err}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration(""), None);
    }
}
