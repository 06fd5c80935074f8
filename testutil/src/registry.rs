//! A real local registry (`docker-registry` from Debian's docker-registry package, i.e.
//! distribution 2.8) per test: plain HTTP, HTTP with basic auth (htpasswd; distribution 2.8
//! accepts that without TLS), or HTTPS with a throwaway CA. Plus `skopeo copy` and a tiny
//! HTTP/1.1 client for poking it.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry binary.
pub const REGISTRY_BIN: &str = "docker-registry";

/// How long a registry may take to answer `GET /v2/` after being spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one `skopeo copy` may take.
pub const SKOPEO_TIMEOUT: Duration = Duration::from_secs(120);

/// How long [`http_request`] waits for the peer (connect, each read and write).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `docker-registry serve`, killed on drop together with its temp dir.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The CA that signed the server certificate (TLS registries only).
    pub ca_cert: Option<PathBuf>,
    /// The basic-auth user and password (basic-auth registries only).
    pub creds: Option<(String, String)>,
    storage: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
}

enum Mode<'a> {
    Plain,
    Basic(&'a str, &'a str),
    Tls,
}

impl Registry {
    /// A plain HTTP registry without auth.
    pub fn start() -> Registry {
        Self::spawn(Mode::Plain)
    }

    /// A plain HTTP registry that wants basic auth with `user`/`pass` (htpasswd, bcrypt).
    pub fn start_basic_auth(user: &str, pass: &str) -> Registry {
        Self::spawn(Mode::Basic(user, pass))
    }

    /// An HTTPS registry without auth; its certificate (SAN IP:127.0.0.1, DNS:localhost) is
    /// signed by the CA at [`Registry::ca_cert`].
    pub fn start_tls() -> Registry {
        Self::spawn(Mode::Tls)
    }

    fn spawn(mode: Mode) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("barge-registry-")
            .tempdir()
            .expect("registry tempdir");
        let d = dir.path();
        let storage = d.join("storage");
        fs::create_dir_all(&storage).expect("registry storage dir");

        let mut tls = String::new();
        let mut auth = String::new();
        let mut ca_cert = None;
        let mut creds = None;
        match mode {
            Mode::Plain => {}
            Mode::Basic(user, pass) => {
                let out = crate::exec_bounded(
                    {
                        let mut c = Command::new("htpasswd");
                        c.args(["-Bbn", user, pass]);
                        c
                    },
                    Duration::from_secs(30),
                );
                let line = crate::ok(&out);
                let htpasswd = d.join("htpasswd");
                fs::write(&htpasswd, line.trim_end().to_string() + "\n").expect("write htpasswd");
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: barge-test\n    path: {}\n",
                    htpasswd.display()
                );
                creds = Some((user.to_string(), pass.to_string()));
            }
            Mode::Tls => {
                let (ca, cert, key) = make_certs(d);
                tls = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                );
                ca_cert = Some(ca);
            }
        }
        let config_path = d.join("config.yml");
        let log_path = d.join("registry.log");
        // free_port() is racy: if another process takes the port first, try another one.
        for attempt in 1.. {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: error\n  formatter: text\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 health:\n  storagedriver:\n    enabled: false\n\
                 http:\n  addr: {addr}\n  secret: barge-test-secret\n{tls}{auth}",
                storage.display()
            );
            fs::write(&config_path, config).expect("write registry config");
            let log = fs::File::create(&log_path).expect("registry log");
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup registry log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("spawn {REGISTRY_BIN}: {e} (apt-get install docker-registry)")
                });
            match wait_ready(&addr, &mut child, ca_cert.is_some()) {
                Ok(()) => {
                    return Registry {
                        addr,
                        ca_cert,
                        creds,
                        storage,
                        dir,
                        child,
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    if attempt < 5 && log.contains("address already in use") {
                        continue;
                    }
                    panic!("{e}; log:\n{log}");
                }
            }
        }
        unreachable!()
    }

    /// Whether this registry speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.ca_cert.is_some()
    }

    /// The registry's storage root (`docker/registry/v2/...` below it).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// `http(s)://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The registry's stdout+stderr so far (errors and access log lines).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `--dest-creds`/`--src-creds` value (`user:pass`) for skopeo, if the registry wants auth.
    pub fn creds_arg(&self) -> Option<String> {
        self.creds.as_ref().map(|(u, p)| format!("{u}:{p}"))
    }

    /// The `Authorization` header value for [`http_get`], if the registry wants auth.
    pub fn basic_auth_header(&self) -> Option<String> {
        self.creds
            .as_ref()
            .map(|(u, p)| format!("Basic {}", base64_encode(format!("{u}:{p}").as_bytes())))
    }

    /// `GET path` on this (plain HTTP) registry, with its credentials if it has any.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        self.request("GET", path, headers, &[])
    }

    /// Any request to this (plain HTTP) registry, with its credentials if it has any.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        assert!(!self.is_tls(), "Registry::request speaks plain HTTP only");
        let auth = self.basic_auth_header();
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            h.push(("Authorization", a));
        }
        http_request(&self.addr, method, path, &h, body)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `GET /v2/` (every 20 ms, up to [`START_TIMEOUT`]) until the registry answers.
fn wait_ready(addr: &str, child: &mut Child, tls: bool) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        // Plain HTTP even for the TLS registry: Go answers a plaintext request on a TLS port
        // with "400 Client sent an HTTP request to an HTTPS server", which is enough to know
        // it serves.
        let ready = match try_http(addr, "GET", "/v2/", &[], &[], HTTP_TIMEOUT) {
            Ok((status, _, _)) => matches!(status, 200 | 401) || tls,
            Err(_) => false,
        };
        if ready {
            return Ok(());
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            return Err(format!(
                "registry at {addr} did not answer GET /v2/ within {START_TIMEOUT:?} \
                 (exited: {exited:?})"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released: racy in theory, fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A CA and a server certificate for 127.0.0.1/localhost, made with openssl in `dir`.
/// Returns (ca.crt, server.crt, server.key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join("ca.key");
    let ca = dir.join("ca.crt");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.crt");
    let ext = dir.join("server.ext");
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    let p = |p: &Path| p.to_str().expect("utf-8 temp path").to_string();
    let run = |args: &[&str]| {
        let mut c = Command::new("openssl");
        c.args(args);
        crate::ok(&crate::exec_bounded(c, Duration::from_secs(60)));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=barge test CA",
        "-keyout",
        &p(&ca_key),
        "-out",
        &p(&ca),
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&cert),
    ]);
    (ca, cert, key)
}

/// `skopeo --insecure-policy copy --all --src-tls-verify=false --dest-tls-verify=false SRC DST`;
/// panics with skopeo's stderr on failure.
pub fn skopeo_copy(src: &str, dst: &str) {
    skopeo_copy_with(&[src, dst]);
}

/// `skopeo --insecure-policy copy --all --src-tls-verify=false --dest-tls-verify=false ARGS...`
/// (put extra flags such as `--dest-creds u:p` or `--preserve-digests` before SRC DST);
/// panics with skopeo's stderr on failure, returns its stdout.
pub fn skopeo_copy_with(args: &[&str]) -> String {
    let mut c = Command::new("skopeo");
    c.args([
        "--insecure-policy",
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ])
    .args(args)
    .stdin(Stdio::null());
    let out = crate::exec_bounded(c, SKOPEO_TIMEOUT);
    assert!(
        out.status.success(),
        "skopeo copy {args:?} failed ({}):\n{}",
        out.status,
        crate::stderr(&out)
    );
    crate::stdout(&out)
}

/// A parsed HTTP response: status, headers (in order, names as sent), body (de-chunked).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` over plain HTTP/1.1 (`Connection: close`); panics on I/O errors.
pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_request(addr, "GET", path, headers, &[])
}

/// Any request over plain HTTP/1.1 (`Connection: close`, `Content-Length` when `body` isn't
/// empty); panics on I/O errors. HEAD responses come back with an empty body.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let (status, headers, body) = try_http(addr, method, path, headers, body, HTTP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"));
    HttpResponse {
        status,
        headers,
        body,
    }
}

type RawResponse = (u16, Vec<(String, String)>, Vec<u8>);

fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<RawResponse> {
    let sa = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("address {addr}: {e}")))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        req += &format!("Content-Length: {}\r\n", body.len());
    }
    req += "\r\n";
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD")
}

/// Parse a complete `Connection: close` response.
pub(crate) fn parse_response(raw: &[u8], head: bool) -> std::io::Result<RawResponse> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head_text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if head {
        Vec::new()
    } else if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        match len {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            _ => rest.to_vec(),
        }
    };
    Ok((status, headers, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(b, b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (padding optional); `None` on any other character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in text.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|&b| b == ch)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("a!b").is_none());
    }

    #[test]
    fn dechunks() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let (st, _, body) = parse_response(raw, false).unwrap();
        assert_eq!((st, body.as_slice()), (200, &b"abcde"[..]));
    }
}
