//! Unit-test helpers: an engine over a temporary store, and containers recorded in it
//! without a process (state `created`).

use std::sync::Arc;

use tempfile::TempDir;

use crate::config::ContainerConfig;
use crate::db::ContainerRecord;
use crate::{Engine, EngineOptions};

/// An engine whose store, run root and configuration are in a new temporary directory.
pub fn engine() -> (TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("root");
    let config = dir.path().join("etc");
    let engine = Engine::open(EngineOptions {
        runroot: dir.path().join("run"),
        shim: "/nonexistent/barge-shim".into(),
        exit_helper: "/nonexistent/barge-exit".into(),
        registry: "/nonexistent/barge-registry".into(),
        init: "/nonexistent/tini".into(),
        network: crate::network::settings::Settings::defaults(&config),
        config,
        root,
    })
    .expect("open engine");
    (dir, Arc::new(engine))
}

/// Record a container `name` made `created` nanoseconds after the epoch, ready, with its
/// directory, never started.
pub fn container(
    engine: &Engine,
    name: &str,
    created: i64,
    config: ContainerConfig,
) -> ContainerRecord {
    let rec = ContainerRecord {
        id: format!(
            "{:a<64}",
            name.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        name: name.into(),
        created,
        config,
        ready: true,
    };
    engine.db.insert(&rec).expect("insert container");
    std::fs::create_dir_all(engine.paths.container(&rec.id)).expect("container dir");
    rec
}
