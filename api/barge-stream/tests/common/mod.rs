//! The harness: a throw-away store (busybox imported as `bb`, containers made with the
//! `barge` CLI), the engine opened on it in this multi-threaded process as the daemon opens
//! it, and a streaming server on a free loopback port.
#![allow(dead_code, clippy::unwrap_used)]

pub mod apiserver;
pub mod spdy;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use barge_engine::{Engine, EngineOptions};
use barge_stream::{StreamConfig, StreamHandle, StreamServer};
pub use barge_testutil::engine::{wait_until, BargeEnv};

/// `barge` and its helpers, built next to this test's directory (`cargo build --workspace
/// --bins` first).
pub fn barge_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("barge")
}

pub struct Env {
    pub store: BargeEnv,
    pub engine: Arc<Engine>,
    pub handle: StreamHandle,
}

pub async fn env() -> Env {
    env_with(StreamConfig::default()).await
}

pub async fn env_with(config: StreamConfig) -> Env {
    let bin = barge_bin();
    let store = BargeEnv::new(bin.to_str().unwrap());
    let cfg = store.path().join("etc");
    let engine = Arc::new(
        Engine::open(EngineOptions {
            root: store.root(),
            runroot: store.runroot(),
            shim: bin.with_file_name("barge-shim"),
            exit_helper: bin.with_file_name("barge-exit"),
            registry: bin.with_file_name("barge-registry"),
            init: PathBuf::from("/usr/bin/tini-static"),
            network: barge_engine::network::settings::Settings::load(&cfg).unwrap(),
            config: cfg,
        })
        .unwrap(),
    );
    let handle = StreamServer::start(engine.clone(), config).await.unwrap();
    Env {
        store,
        engine,
        handle,
    }
}

impl Env {
    /// `barge run -d ARGS` (no network of its own beyond loopback); the container's id.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut all = vec!["--network", "none"];
        all.extend_from_slice(args);
        self.store.run_d(&all)
    }

    /// `barge exec ID sh -c SCRIPT` output.
    pub fn sh(&self, id: &str, script: &str) -> std::process::Output {
        self.store.run(&["exec", id, "sh", "-c", script])
    }

    /// The exec records of container `id` (`execs/*.json`, states apart).
    pub fn exec_records(&self, id: &str) -> usize {
        std::fs::read_dir(self.store.container_dir(id).join("execs"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.ends_with(".json") && !n.ends_with(".state.json")
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

pub fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(b)))
}
