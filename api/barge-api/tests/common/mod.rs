//! The harness of the daemon's tests: a throw-away store (busybox imported as `bb`), a
//! `barge-daemon` serving it on a temp socket, the real docker CLI pointed at that socket, and
//! a tiny HTTP/1.1 client over the socket for requests the CLI cannot make (bad bodies,
//! half-read streams). Drop kills the daemon, then the store's own drop removes every
//! container through the `barge` CLI.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use barge_testutil::engine::{wait_until, BargeEnv};
pub use barge_testutil::{exec_bounded, stderr, stdout};

/// The docker CLI the tests drive (docker 28): `$BARGE_TEST_DOCKER`, else `docker` on PATH.
pub fn docker_bin() -> PathBuf {
    std::env::var_os("BARGE_TEST_DOCKER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("docker"))
}

/// How long one docker command may take.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// The built `barge-daemon`; `barge` and `barge-shim` sit next to it (build them first:
/// `cargo build -p barge -p barge-shim`).
pub fn daemon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_barge-daemon"))
}

pub fn barge_bin() -> PathBuf {
    daemon_bin().with_file_name("barge")
}

pub struct Daemon {
    /// The store, also usable with the `barge` CLI (`d.store.ok(&["ps"])`).
    pub store: BargeEnv,
    pub sock: PathBuf,
    child: Option<Child>,
    /// Extra daemon flags (kept for restarts).
    extra: Vec<String>,
    /// A command the daemon runs under (strace, systemd-socket-activate), and whether the
    /// socket comes from it (`--host fd://`).
    wrapper: Vec<String>,
    activated: bool,
}

impl Daemon {
    /// A store with `bb:latest` and a daemon serving it (test hooks on).
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Daemon {
        Self::start_wrapped(&[], extra, false)
    }

    /// The daemon run as `WRAPPER... barge-daemon FLAGS`; with `activated`, the wrapper
    /// passes the listening socket (`--host fd://`) and `{sock}` in it is the socket path.
    pub fn start_wrapped(wrapper: &[&str], extra: &[&str], activated: bool) -> Daemon {
        let store = BargeEnv::new(barge_bin().to_str().unwrap());
        let sock = store.path().join("docker.sock");
        let wrapper = wrapper
            .iter()
            .map(|w| w.replace("{sock}", &sock.display().to_string()))
            .collect();
        let mut d = Daemon {
            store,
            sock,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            wrapper,
            activated,
        };
        d.spawn();
        d
    }

    /// Start the daemon process (again) and wait until it answers `/_ping`.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.store.path().join("daemon.log"))
            .unwrap();
        let mut cmd = match self.wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(daemon_bin());
                c
            }
            None => Command::new(daemon_bin()),
        };
        let host = if self.activated {
            "fd://".to_string()
        } else {
            format!("unix://{}", self.sock.display())
        };
        let child = cmd
            .arg("--host")
            .arg(host)
            .arg("--root")
            .arg(self.store.root())
            .arg("--runroot")
            .arg(self.store.runroot())
            .arg("--config")
            .arg(self.store.path().join("etc"))
            .args(&self.extra)
            // No CRI server unless the test asks for one (on its own socket): the default
            // /run/barge/cri.sock is one per host.
            .args(if self.extra.iter().any(|e| e == "--cri") {
                &[][..]
            } else {
                &["--cri", "none"][..]
            })
            .env("BARGE_DAEMON_TEST_HOOKS", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn barge-daemon");
        self.child = Some(child);
        let up = wait_until(Duration::from_secs(10), || {
            self.try_request("GET", "/_ping", b"")
                .is_some_and(|r| r.status == 200)
        });
        assert!(up, "the daemon did not answer /_ping:\n{}", self.log());
    }

    /// The pid of what the harness started (the wrapper, if any).
    pub fn child_pid(&self) -> i32 {
        self.child.as_ref().expect("daemon running").id() as i32
    }

    /// The daemon's pid (under a wrapper that forks, its child).
    pub fn pid(&self) -> i32 {
        let top = self.child_pid();
        let exe = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        if exe(top).is_some_and(|e| e.ends_with("barge-daemon")) {
            return top;
        }
        barge_testutil::children(top)
            .into_iter()
            .find(|p| exe(*p).is_some_and(|e| e.ends_with("barge-daemon")))
            .unwrap_or(top)
    }

    /// The daemon's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.store.path().join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL the daemon (containers keep running under their shims), and its wrapper: a
    /// killed strace would leave its tracee running.
    pub fn kill(&mut self) {
        if self.child.is_none() {
            return;
        }
        let daemon = self.pid();
        if let Some(mut c) = self.child.take() {
            if daemon != c.id() as i32 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(daemon),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM the daemon and wait for it (at most 10 s, then SIGKILL); its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if Instant::now() > end {
                let _ = c.kill();
                return c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `docker ARGS` against this daemon (own config dir: no user credentials).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(docker_bin());
        c.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.store.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run `docker ARGS` (bounded).
    pub fn docker(&self, args: &[&str]) -> Output {
        exec_bounded(self.docker_cmd(args), DOCKER_TIMEOUT)
    }

    /// Run `docker ARGS`, asserting success; stdout.
    #[track_caller]
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            o.status,
            stdout(&o),
            stderr(&o),
            self.log()
        );
        stdout(&o)
    }

    /// `docker ARGS` with `input` on its stdin (bounded).
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.docker_cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn docker");
        let mut sin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let w = std::thread::spawn(move || {
            let _ = sin.write_all(&input);
        });
        let out = wait_output(child, DOCKER_TIMEOUT);
        let _ = w.join();
        out
    }

    /// `docker inspect -f TEMPLATE NAME`, trimmed.
    pub fn inspect(&self, name: &str, template: &str) -> String {
        self.docker_ok(&["inspect", "-f", template, name])
            .trim()
            .to_string()
    }

    /// A connection to the API socket.
    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.sock).expect("connect to the daemon");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    fn try_request(&self, method: &str, path: &str, body: &[u8]) -> Option<Response> {
        let s = UnixStream::connect(&self.sock).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        request_on(s, method, path, body)
    }

    /// One HTTP/1.1 request (`Connection: close`), the whole response.
    #[track_caller]
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        self.try_request(method, path, body)
            .unwrap_or_else(|| panic!("{method} {path}: no response\n{}", self.log()))
    }

    /// `request` with a JSON answer.
    #[track_caller]
    pub fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let r = self.request(method, path, body);
        let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
        (r.status, v)
    }

    /// The daemon's open fds.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The daemon's threads.
    pub fn thread_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait for `child` with its output, killing it after `timeout`.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = so.as_mut() {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = se.as_mut() {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send one request on `s` and read the response to EOF (de-chunked).
pub fn request_on(mut s: UnixStream, method: &str, path: &str, body: &[u8]) -> Option<Response> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    // A refused huge body may be cut short by the server: that is fine, read the answer.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

/// Parse a whole HTTP/1.1 response (chunked or not).
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < i + 2 + n {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[(i + 2 + n + 2).min(b.len())..];
    }
    out
}

/// docker's stdcopy frames: (stream, payload) pairs.
pub fn demux(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if b.len() < 8 + n {
            break;
        }
        out.push((b[0], b[8..8 + n].to_vec()));
        b = &b[8 + n..];
    }
    out
}

/// Whether `path` exists (a helper for readability).
pub fn exists(p: &Path) -> bool {
    p.exists()
}
