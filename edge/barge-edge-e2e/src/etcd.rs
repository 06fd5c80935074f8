//! [`Etcd`]: Debian's etcd 3.4 on free loopback ports with a temp data dir, healthy before
//! `start` returns, killed on drop.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::util::{free_port, http_get, poll, Proc};

pub struct Etcd {
    proc: Proc,
    pub client: SocketAddr,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// Start etcd and wait until `/health` says so (a few tries with new ports, should
    /// another process take a port between the probe and etcd's bind).
    pub fn start() -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix("etcd")
            .tempdir()
            .expect("etcd temp dir");
        let mut last = String::new();
        for attempt in 0..4 {
            let client: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let peer = free_port();
            let data = dir.path().join(format!("data{attempt}"));
            let mut cmd = Command::new("etcd");
            cmd.arg("--name")
                .arg("e2e")
                .arg("--data-dir")
                .arg(&data)
                .arg("--listen-client-urls")
                .arg(format!("http://{client}"))
                .arg("--advertise-client-urls")
                .arg(format!("http://{client}"))
                .arg("--listen-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-cluster")
                .arg(format!("e2e=http://127.0.0.1:{peer}"))
                .arg("--log-level")
                .arg("warn");
            let mut proc = Proc::spawn(cmd, &dir.path().join(format!("etcd{attempt}.log")));
            let healthy = poll(Duration::from_secs(20), || {
                if !proc.running() {
                    return Some(false);
                }
                match http_get(client, "/health", None) {
                    Some((200, body)) if body.contains("true") => Some(true),
                    _ => None,
                }
            });
            if healthy == Some(true) {
                return Etcd { proc, client, dir };
            }
            last = proc.output();
            proc.kill();
        }
        panic!("etcd did not become healthy (is Debian's etcd-server installed?): {last}");
    }

    /// `http://127.0.0.1:PORT`, what `barge hub --etcd` takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.client)
    }

    /// etcd's own log.
    pub fn log(&self) -> String {
        self.proc.output()
    }

    /// Every key under `prefix` (through etcdctl), for checks on what the hub stored.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.url())
            .arg("get")
            .arg("--prefix")
            .arg("--keys-only")
            .arg(prefix)
            .output()
            .expect("run etcdctl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The value at `key` (through etcdctl), if any.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.url())
            .arg("get")
            .arg("--print-value-only")
            .arg(key)
            .output()
            .expect("run etcdctl");
        let v = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        (!v.is_empty()).then_some(v)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
