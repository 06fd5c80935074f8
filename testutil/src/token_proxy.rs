//! Bearer-token auth (the Docker token protocol) in front of a plain [`crate::registry::Registry`]:
//! a std-thread HTTP/1.1 server that hands out tokens at `/token` and forwards `/v2/...`
//! requests carrying a known token to the upstream registry, streaming the response back
//! verbatim (so `206 Partial Content`, large blobs and uploads pass through untouched).
//!
//! One thread per connection, `Connection: close` everywhere. The `Host` header is forwarded
//! unchanged, so upload `Location`s made by the registry point back at the proxy.
//!
//! [`ProxyOptions`] can also turn auth off, throttle forwarded response bodies and cut blob
//! downloads short (a simulated network cut), for resume/retry tests.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::registry::{base64_decode, find};

/// The `service` the proxy names in its challenges.
pub const SERVICE: &str = "barge-test";

/// How long the proxy waits on a silent peer (request headers, upstream, client writes).
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// What a [`TokenProxy`] does besides forwarding.
#[derive(Clone, Debug, Default)]
pub struct ProxyOptions {
    /// Require Bearer tokens (the [`TokenProxy::start`] behaviour). `false` = forward every
    /// `/v2/...` request without auth (`/token` still answers).
    pub require_token: bool,
    /// Credentials `/token` wants (`Authorization: Basic`); `None` = tokens for anyone.
    pub creds: Option<(String, String)>,
    /// Throttle every forwarded response body to about this many bytes per second
    /// (sleep-based pacing in 16 KiB chunks). The header block isn't throttled.
    pub bytes_per_sec: Option<u64>,
    /// Simulate a network cut: for the first [`Self::cut_times`] blob GET responses
    /// (`GET /v2/<name>/blobs/<digest>` answered 200 or 206), forward the header block intact
    /// (Content-Length included) and then only `cut_after` bytes of the body, then shut the
    /// client connection down (the client sees a truncated body, then EOF).
    pub cut_after: Option<u64>,
    /// How many blob GET responses to cut (with `cut_after`).
    pub cut_times: usize,
    /// Simulate a network cut during an upload: for the first [`Self::upload_cut_times`]
    /// `PATCH` requests, forward the header block and only this many bytes of the body to
    /// the upstream, then shut both connections down (the registry sees its client go away
    /// mid-body, the client a connection closed before any answer).
    pub cut_upload_after: Option<u64>,
    /// How many PATCH requests to cut (with `cut_upload_after`).
    pub upload_cut_times: usize,
    /// PATCH requests forwarded whole before the cuts begin.
    pub upload_cut_skip: usize,
    /// A token expires after this many authorized requests (then 401, as an expired token).
    pub token_max_uses: Option<usize>,
}

/// (path, `Range`) of the forwarded blob GETs.
type BlobLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A response body goes out in steps of this size when throttled.
const THROTTLE_CHUNK: usize = 16 * 1024;

/// A token-auth front for a registry; stops listening on drop.
pub struct TokenProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// How many `/token` requests came in (granted or refused).
    pub token_requests: Arc<AtomicUsize>,
    /// The query strings of the `/token` requests, in order (`service=...&scope=...`).
    pub token_queries: Arc<Mutex<Vec<String>>>,
    /// One line per request: `METHOD TARGET -> 401|forwarded|token|token-refused|404`.
    pub log: Arc<Mutex<Vec<String>>>,
    blob_log: BlobLog,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    addr: String,
    upstream: String,
    opts: ProxyOptions,
    /// Cuts still to do (starts at `opts.cut_times`).
    cuts_left: AtomicUsize,
    /// Upload cuts still to do (starts at `opts.upload_cut_times`).
    upload_cuts_left: AtomicUsize,
    /// PATCH requests seen so far.
    patches_seen: AtomicUsize,
    blob_log: BlobLog,
    tokens: Mutex<HashSet<String>>,
    /// Authorized requests per token (for `token_max_uses`).
    token_uses: Mutex<std::collections::HashMap<String, usize>>,
    token_requests: Arc<AtomicUsize>,
    token_queries: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl TokenProxy {
    /// Listen on 127.0.0.1:free port in front of `upstream_addr` (`HOST:PORT`, plain HTTP).
    /// With `creds`, `/token` wants `Authorization: Basic base64(user:pass)`; without, it
    /// hands tokens to anyone (anonymous pull, like Docker Hub's).
    pub fn start(upstream_addr: &str, creds: Option<(String, String)>) -> TokenProxy {
        TokenProxy::start_with(
            upstream_addr,
            ProxyOptions {
                require_token: true,
                creds,
                ..Default::default()
            },
        )
    }

    /// Listen on 127.0.0.1:free port in front of `upstream_addr` (`HOST:PORT`, plain HTTP),
    /// behaving as `opts` says.
    pub fn start_with(upstream_addr: &str, opts: ProxyOptions) -> TokenProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token proxy");
        let addr = listener.local_addr().expect("token proxy addr").to_string();
        let token_requests = Arc::new(AtomicUsize::new(0));
        let token_queries = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let blob_log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            addr: addr.clone(),
            upstream: upstream_addr.to_string(),
            cuts_left: AtomicUsize::new(opts.cut_times),
            upload_cuts_left: AtomicUsize::new(opts.upload_cut_times),
            patches_seen: AtomicUsize::new(0),
            opts,
            blob_log: blob_log.clone(),
            tokens: Mutex::new(HashSet::new()),
            token_uses: Mutex::new(Default::default()),
            token_requests: token_requests.clone(),
            token_queries: token_queries.clone(),
            log: log.clone(),
        });
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = handle(&shared, conn);
                });
            }
        });
        TokenProxy {
            addr,
            token_requests,
            token_queries,
            log,
            blob_log,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The realm the proxy advertises: `http://ADDR/token`.
    pub fn realm(&self) -> String {
        self.url("/token")
    }

    /// How many `/token` requests came in so far.
    pub fn token_count(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }

    /// A copy of the request log so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The blob GETs forwarded so far, in order: (path without query, `Range` header value).
    /// Requests refused with 401 aren't listed.
    pub fn blob_requests(&self) -> Vec<(String, Option<String>)> {
        self.blob_log.lock().unwrap().clone()
    }
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Unblock accept(); the loop sees the flag and ends.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    /// Bytes read past the headers (start of the body).
    rest: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(s: &mut TcpStream) -> io::Result<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(e) = find(&buf, b"\r\n\r\n") {
            break e;
        }
        if buf.len() > 1 << 20 {
            return Err(io::Error::other("request headers too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("eof before end of headers"));
        }
        if buf.is_empty() && chunk[0] == 0x16 {
            // A TLS ClientHello (clients probing https first): hang up at once so they fall
            // back to plain HTTP instead of waiting for their handshake timeout.
            return Err(io::Error::other("TLS on the plain-HTTP proxy"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let version = first.next().unwrap_or("HTTP/1.1").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Request {
        method,
        target,
        version,
        headers,
        rest: buf[end + 4..].to_vec(),
    })
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\n",
        body.len()
    );
    for (k, v) in headers {
        out += &format!("{k}: {v}\r\n");
    }
    out += "\r\n";
    s.write_all(out.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
    let _ = s.shutdown(Shutdown::Write);
    // Drain what the client still sends (e.g. an upload body) so closing doesn't reset the
    // connection before it has read the answer.
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = io::copy(s, &mut io::sink());
    Ok(())
}

fn handle(sh: &Shared, mut client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let req = read_request(&mut client)?;
    let path = req.target.split('?').next().unwrap_or_default().to_string();
    let log = |what: &str| {
        sh.log
            .lock()
            .unwrap()
            .push(format!("{} {} -> {what}", req.method, req.target));
    };

    if path == "/token" {
        sh.token_requests.fetch_add(1, Ordering::SeqCst);
        let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        sh.token_queries.lock().unwrap().push(query.to_string());
        if let Some((user, pass)) = &sh.opts.creds {
            let given = req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
                .and_then(|b| base64_decode(b.trim()));
            if given.as_deref() != Some(format!("{user}:{pass}").as_bytes()) {
                log("token-refused");
                let body = json!({"errors": [{"code": "UNAUTHORIZED",
                    "message": "bad credentials for the token service"}]});
                return respond(
                    &mut client,
                    "401 Unauthorized",
                    &[
                        ("Content-Type", "application/json".into()),
                        ("WWW-Authenticate", format!("Basic realm=\"{SERVICE}\"")),
                    ],
                    body.to_string().as_bytes(),
                );
            }
        }
        let token = random_token();
        sh.tokens.lock().unwrap().insert(token.clone());
        log("token");
        let body = json!({
            "token": token,
            "access_token": token,
            "expires_in": 300,
            "issued_at": "2020-09-13T12:26:40Z",
        });
        return respond(
            &mut client,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            body.to_string().as_bytes(),
        );
    }

    if path != "/v2" && !path.starts_with("/v2/") {
        log("404");
        return respond(&mut client, "404 Not Found", &[], b"not found\n");
    }

    let authorized = !sh.opts.require_token
        || req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| {
                let t = t.trim();
                if !sh.tokens.lock().unwrap().contains(t) {
                    return false;
                }
                let mut uses = sh.token_uses.lock().unwrap();
                let n = uses.entry(t.to_string()).or_insert(0);
                *n += 1;
                sh.opts.token_max_uses.is_none_or(|max| *n <= max)
            });
    if !authorized {
        log("401");
        let mut challenge = format!(
            "Bearer realm=\"http://{}/token\",service=\"{SERVICE}\"",
            sh.addr
        );
        if let Some(name) = repo_name(&path) {
            let actions = if matches!(req.method.as_str(), "GET" | "HEAD") {
                "pull"
            } else {
                "pull,push"
            };
            challenge += &format!(",scope=\"repository:{name}:{actions}\"");
        }
        let body = json!({"errors": [{"code": "UNAUTHORIZED",
            "message": "authentication required"}]});
        return respond(
            &mut client,
            "401 Unauthorized",
            &[
                ("Content-Type", "application/json; charset=utf-8".into()),
                ("WWW-Authenticate", challenge),
            ],
            body.to_string().as_bytes(),
        );
    }

    log("forwarded");
    let blob_get = req.method == "GET" && is_blob_path(&path);
    if blob_get {
        let range = req.header("range").map(str::to_string);
        sh.blob_log.lock().unwrap().push((path, range));
    }
    forward(sh, req, client, blob_get)
}

/// Send `req` (minus Authorization, with `Connection: close`) and the rest of the client's
/// bytes to the upstream; stream its answer back verbatim until EOF (throttled and cut short
/// as the options say).
fn forward(sh: &Shared, req: Request, mut client: TcpStream, blob_get: bool) -> io::Result<()> {
    let up_addr = sh
        .upstream
        .parse()
        .map_err(|e| io::Error::other(format!("upstream {}: {e}", sh.upstream)))?;
    let mut up = match TcpStream::connect_timeout(&up_addr, IO_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            return respond(
                &mut client,
                "502 Bad Gateway",
                &[],
                format!("upstream: {e}\n").as_bytes(),
            )
        }
    };
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{} {} {}\r\n", req.method, req.target, req.version);
    for (k, v) in &req.headers {
        if [
            "authorization",
            "connection",
            "proxy-connection",
            "keep-alive",
        ]
        .iter()
        .any(|h| k.eq_ignore_ascii_case(h))
        {
            continue;
        }
        head += &format!("{k}: {v}\r\n");
    }
    head += "Connection: close\r\n\r\n";
    up.write_all(head.as_bytes())?;
    let upload_cut = req.method == "PATCH"
        && sh.opts.cut_upload_after.is_some()
        && sh.patches_seen.fetch_add(1, Ordering::SeqCst) >= sh.opts.upload_cut_skip
        && sh
            .upload_cuts_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if upload_cut {
        sh.log
            .lock()
            .unwrap()
            .push(format!("{} {} -> cut", req.method, req.target));
        // Forward the first bytes of the body only, then hang up on both sides.
        // Never wait for more than the body holds: a body shorter than the budget is
        // forwarded whole, then cut before any answer.
        let body_len = req
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        let budget = sh.opts.cut_upload_after.unwrap_or(0).min(body_len);
        let first = req.rest.len().min(budget as usize);
        up.write_all(&req.rest[..first])?;
        let left = budget - first as u64;
        let _ = io::copy(&mut (&client).take(left), &mut up);
        let _ = up.flush();
        // Let the upstream take in what it got before the cut.
        std::thread::sleep(Duration::from_millis(100));
        let _ = up.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    up.write_all(&req.rest)?;

    // Client -> upstream (request bodies) in a helper thread. Never half-close the upstream:
    // Go's server cancels a request whose client hung up.
    let mut client_r = client.try_clone()?;
    let mut up_w = up.try_clone()?;
    let pump = std::thread::spawn(move || {
        let _ = io::copy(&mut client_r, &mut up_w);
    });
    let res = relay_response(sh, &mut up, &mut client, blob_get);
    let _ = client.flush();
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.shutdown(Shutdown::Both);
    let _ = pump.join();
    res
}

/// Copy the upstream's answer to the client: the header block(s) verbatim, then the body with
/// pacing and the cut applied.
fn relay_response(
    sh: &Shared,
    up: &mut TcpStream,
    client: &mut TcpStream,
    blob_get: bool,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Header blocks: skip past interim 1xx answers to the final one.
    let status = loop {
        let Some(end) = find(&buf, b"\r\n\r\n") else {
            let n = up.read(&mut chunk)?;
            if n == 0 {
                // Upstream hung up mid-headers: pass on what there is.
                return client.write_all(&buf);
            }
            buf.extend_from_slice(&chunk[..n]);
            continue;
        };
        let block: Vec<u8> = buf.drain(..end + 4).collect();
        client.write_all(&block)?;
        let status: u16 = String::from_utf8_lossy(&block)
            .split(' ')
            .nth(1)
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if !(100..200).contains(&status) {
            break status;
        }
    };

    // Body: `buf` holds its first bytes.
    let cut = blob_get
        && matches!(status, 200 | 206)
        && sh.opts.cut_after.is_some()
        && sh
            .cuts_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let mut budget = if cut { sh.opts.cut_after } else { None };
    let rate = sh.opts.bytes_per_sec.map(|r| r.max(1));
    let step = if rate.is_some() {
        THROTTLE_CHUNK
    } else {
        chunk.len()
    };
    let started = Instant::now();
    let mut sent: u64 = 0;
    loop {
        if buf.is_empty() {
            let n = up.read(&mut chunk[..step])?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let mut take = buf.len().min(step);
        if let Some(left) = budget {
            take = take.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        if let Some(rate) = rate {
            // Don't get ahead of `rate`: this piece goes out at sent / rate seconds.
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        client.write_all(&buf[..take])?;
        buf.drain(..take);
        sent += take as u64;
        if let Some(left) = &mut budget {
            *left -= take as u64;
            if *left == 0 {
                // The cut: everything so far reaches the client, then the connection ends.
                client.flush()?;
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
    }
}

/// `GET /v2/<name>/blobs/<digest>` (not `.../blobs/uploads/...`).
fn is_blob_path(path: &str) -> bool {
    path.starts_with("/v2/")
        && repo_name(path).is_some()
        && path
            .rsplit_once("/blobs/")
            .is_some_and(|(_, d)| d.contains(':') && !d.contains('/'))
}

/// `/v2/<name>/(manifests|blobs|tags)/...` -> `<name>`; `None` for `/v2/` and `/v2/_catalog`.
fn repo_name(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    ["/manifests/", "/blobs/", "/tags/", "/referrers/"]
        .iter()
        .filter_map(|m| rest.rfind(m))
        .max()
        .map(|i| rest[..i].to_string())
        .filter(|n| !n.is_empty())
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("read /dev/urandom");
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::{is_blob_path, repo_name};

    #[test]
    fn names_from_paths() {
        assert_eq!(
            repo_name("/v2/library/busybox/manifests/latest").as_deref(),
            Some("library/busybox")
        );
        assert_eq!(repo_name("/v2/a/blobs/sha256:00").as_deref(), Some("a"));
        assert_eq!(repo_name("/v2/a/b/blobs/uploads/").as_deref(), Some("a/b"));
        assert_eq!(repo_name("/v2/a/tags/list").as_deref(), Some("a"));
        assert_eq!(repo_name("/v2/"), None);
        assert_eq!(repo_name("/v2/_catalog"), None);
    }

    #[test]
    fn blob_paths() {
        assert!(is_blob_path("/v2/a/b/blobs/sha256:00ff"));
        assert!(!is_blob_path("/v2/a/blobs/uploads/"));
        assert!(!is_blob_path("/v2/a/blobs/uploads/x:y"));
        assert!(!is_blob_path("/v2/a/manifests/sha256:00"));
        assert!(!is_blob_path("/v2/blobs/sha256:00"));
    }
}
