//! [`Hub`]: `barge hub --etcd --listen --api --state-dir` (the `barge` binary execs
//! `barge-hub`), its own temp state dir, output in a log file, killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::etcd::Etcd;
use crate::util::{barge_bin, free_port, listening, poll, Proc};

/// `STATE_DIR/admin.conf`.
#[derive(Debug, Clone, Deserialize)]
pub struct AdminConf {
    pub server: String,
    #[serde(default)]
    pub ca: Option<String>,
    /// `null` on a hub that joined an existing fleet with a fresh state dir.
    #[serde(default)]
    pub token: Option<String>,
}

/// How to start a hub.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// `--etcd-prefix` (default: the hub's own default).
    pub prefix: Option<String>,
    /// `--key-file` (the second hub of a fleet needs the first one's).
    pub key_file: Option<PathBuf>,
    /// `--listen` (default: a free port), for a test that puts a proxy in front first.
    pub listen: Option<SocketAddr>,
    /// `--advertise HOST:PORT` (what edges are told to use: a proxy's address).
    pub advertise: Option<String>,
    /// More flags (`--heartbeat-secs 1`, `--node-grace-secs 5`...).
    pub args: Vec<String>,
    /// `--api-insecure-http`: the fleet API on plain HTTP (for tests that speak raw HTTP
    /// or drive a browser to it); https with the fleet CA otherwise, as by default.
    pub insecure_http: bool,
}

pub struct Hub {
    proc: Proc,
    etcd_url: String,
    opts: HubOptions,
    pub listen: SocketAddr,
    pub api: SocketAddr,
    dir: tempfile::TempDir,
}

impl Hub {
    /// Start a hub on `etcd` with free ports and wait until both ports accept (a few tries
    /// with new ports when it exits at once, as when another process took a port first).
    pub fn start(etcd: &Etcd, opts: HubOptions) -> Hub {
        let mut dir = tempfile::Builder::new()
            .prefix("hub")
            .tempdir()
            .expect("hub temp dir");
        std::fs::create_dir_all(dir.path().join("state")).expect("hub state dir");
        let mut last = String::new();
        for _ in 0..3 {
            let listen: SocketAddr = opts
                .listen
                .unwrap_or_else(|| ([127, 0, 0, 1], free_port()).into());
            let api: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let proc = spawn(&etcd.url(), &opts, listen, api, dir.path());
            let mut hub = Hub {
                proc,
                etcd_url: etcd.url(),
                opts: opts.clone(),
                listen,
                api,
                dir,
            };
            match hub.wait_ready() {
                Ok(()) => return hub,
                Err(e) => {
                    last = e;
                    hub.proc.kill();
                    dir = hub.dir;
                }
            }
        }
        panic!("{last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let (listen, api) = (self.listen, self.api);
        let proc = &mut self.proc;
        let ok = poll(Duration::from_secs(30), || {
            if !proc.running() {
                return Some(false);
            }
            (listening(listen) && listening(api)).then_some(true)
        });
        if ok == Some(true) {
            return Ok(());
        }
        Err(format!(
            "barge hub did not come up on {listen} and {api}:\n{}",
            self.proc.output()
        ))
    }

    /// Start it again after [`Hub::kill`] (same ports, same state dir).
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc = spawn(
            &self.etcd_url,
            &self.opts,
            self.listen,
            self.api,
            self.dir.path(),
        );
        if let Err(e) = self.wait_ready() {
            panic!("{e}");
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The key file sealing the CA (default location), for a second hub.
    pub fn default_key_file(&self) -> PathBuf {
        self.opts
            .key_file
            .clone()
            .unwrap_or_else(|| self.state_dir().join("hub.key"))
    }

    /// `https://127.0.0.1:PORT`: what `barge edge join` takes.
    pub fn edge_url(&self) -> String {
        format!("https://{}", self.listen)
    }

    /// `https://127.0.0.1:PORT` (`http://` with [`HubOptions::insecure_http`]).
    pub fn api_url(&self) -> String {
        let scheme = if self.opts.insecure_http {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.api)
    }

    /// admin.conf, once the hub has written it.
    pub fn admin_conf(&self) -> AdminConf {
        let p = self.state_dir().join("admin.conf");
        let text = poll(Duration::from_secs(10), || std::fs::read_to_string(&p).ok())
            .unwrap_or_else(|| panic!("no {} after 10 s:\n{}", p.display(), self.log()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", p.display()))
    }

    pub fn admin_conf_path(&self) -> PathBuf {
        self.state_dir().join("admin.conf")
    }

    /// The hub's output so far.
    pub fn log(&self) -> String {
        self.proc.output()
    }

    /// Wait until the hub's log contains `needle` (case-insensitive).
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let n = needle.to_ascii_lowercase();
        poll(timeout, || {
            self.log().to_ascii_lowercase().contains(&n).then_some(())
        })
        .is_some()
    }

    /// SIGKILL (a crash: its etcd lease expires on its own).
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    pub fn running(&mut self) -> bool {
        self.proc.running()
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }
}

fn spawn(etcd: &str, opts: &HubOptions, listen: SocketAddr, api: SocketAddr, dir: &Path) -> Proc {
    let mut cmd = Command::new(barge_bin());
    cmd.arg("hub")
        .arg("--etcd")
        .arg(etcd)
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--api")
        .arg(api.to_string())
        .arg("--state-dir")
        .arg(dir.join("state"));
    if let Some(p) = &opts.prefix {
        cmd.arg("--etcd-prefix").arg(p);
    }
    if let Some(a) = &opts.advertise {
        cmd.arg("--advertise").arg(a);
    }
    if let Some(k) = &opts.key_file {
        cmd.arg("--key-file").arg(k);
    }
    if opts.insecure_http {
        cmd.arg("--api-insecure-http");
    }
    cmd.args(&opts.args);
    cmd.env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
    );
    Proc::spawn(cmd, &dir.join("hub.log"))
}
