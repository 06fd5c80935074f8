//! [`Fleet`]: `barge fleet --config FILE ...` (the `barge` binary execs `barge-fleet`), with
//! `-o json` output parsed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::util::barge_bin;

/// One pod as `fleet get pods -o json` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    pub namespace: String,
    pub name: String,
    /// `spec.nodeName` (empty when not placed).
    pub node: String,
    /// `status.phase`.
    pub phase: String,
    pub resource_version: String,
}

pub struct Fleet {
    config: PathBuf,
    /// Holds a config file written by [`Fleet::with_server`].
    _dir: Option<tempfile::TempDir>,
}

impl Fleet {
    /// The CLI with `--config PATH` (a hub's admin.conf).
    pub fn new(config: &Path) -> Fleet {
        Fleet {
            config: config.to_path_buf(),
            _dir: None,
        }
    }

    /// The CLI against another API server with the same credentials (a second hub of the
    /// fleet: its own admin.conf has no token).
    pub fn with_server(&self, server: &str) -> Fleet {
        let text = std::fs::read_to_string(&self.config)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.config.display()));
        let mut conf: Value = serde_json::from_str(&text).expect("admin.conf is JSON");
        conf["server"] = Value::String(server.to_string());
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("admin.conf");
        std::fs::write(&path, conf.to_string()).expect("write admin.conf copy");
        Fleet {
            config: path,
            _dir: Some(dir),
        }
    }

    pub fn config(&self) -> &Path {
        &self.config
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(barge_bin());
        c.arg("fleet").arg("--config").arg(&self.config).args(args);
        c
    }

    /// `barge fleet --config C ARGS` (bounded in time).
    pub fn run(&self, args: &[&str]) -> Output {
        barge_testutil::exec_bounded(self.cmd(args), Duration::from_secs(60))
    }

    /// Run and return stdout, panicking with the output on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "barge fleet {args:?} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `ARGS -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "json"]);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("fleet {a:?}: not JSON ({e}): {out}"))
    }

    /// `apply -f FILE` with `yaml` written to a temp file.
    pub fn apply(&self, yaml: &str) -> String {
        let f = tempfile::Builder::new()
            .suffix(".yaml")
            .tempfile()
            .expect("temp yaml");
        std::fs::write(f.path(), yaml).expect("write yaml");
        let p = f.path().to_str().expect("UTF-8 temp path").to_string();
        self.ok(&["apply", "-f", &p])
    }

    /// `token create [--ttl TTL]`: the join token printed on stdout.
    pub fn token(&self, ttl: Option<&str>) -> String {
        let mut a = vec!["token", "create"];
        if let Some(t) = ttl {
            a.extend_from_slice(&["--ttl", t]);
        }
        let t = self.ok(&a).trim().to_string();
        assert!(t.starts_with("K10"), "token create printed {t:?}");
        t
    }

    /// `get pods -o json` rows (the default namespace).
    pub fn pods(&self) -> Vec<PodRow> {
        let v = self.json(&["get", "pods"]);
        rows(&v)
    }

    /// `get nodes -o json` items.
    pub fn nodes(&self) -> Vec<Value> {
        let v = self.json(&["get", "nodes"]);
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// The Ready condition's status of a node (`True`, `False`, `Unknown`), if listed.
    pub fn node_ready(&self, name: &str) -> Option<String> {
        self.nodes()
            .into_iter()
            .find(|n| n["metadata"]["name"] == name)
            .and_then(|n| {
                n["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready")
                    .and_then(|c| c["status"].as_str().map(str::to_string))
            })
    }
}

/// A `List`'s pods as rows.
pub fn rows(list: &Value) -> Vec<PodRow> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| PodRow {
                    namespace: p["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string(),
                    name: p["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    node: p["spec"]["nodeName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    phase: p["status"]["phase"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    resource_version: p["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}
