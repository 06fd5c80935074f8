//! The typed engine API the CLI and the API daemon share (`barge_engine`), driven directly
//! against real helpers, a real registry and real containers.

use std::sync::Arc;

use barge_engine::pull::{PullOptions, PullProgress};
use barge_engine::registry::proto::{Credentials, PullEvent};
use barge_engine::{Engine, EngineOptions};
use barge_testutil::oci_image::{push_image, Image};
use barge_testutil::registry::Registry;

fn engine(dir: &std::path::Path) -> Arc<Engine> {
    let config = dir.join("etc");
    Arc::new(
        Engine::open(EngineOptions {
            root: dir.join("root"),
            runroot: dir.join("run"),
            shim: env!("CARGO_BIN_EXE_barge").into(),
            exe: env!("CARGO_BIN_EXE_barge").into(),
            registry: env!("CARGO_BIN_EXE_barge-registry").into(),
            init: "/usr/bin/tini-static".into(),
            network: barge_engine::network::settings::Settings::defaults(&config),
            config,
        })
        .expect("open engine"),
    )
}

/// A pull with given credentials (docker's X-Registry-Auth, never stored) reports docker's
/// progress steps as events; without credentials the private registry refuses it.
#[test]
fn pull_reports_progress_events_and_uses_given_credentials() {
    let reg = Registry::start_basic_auth("dave", "s3cret");
    push_image(&reg, "private/app", "2", &Image::busybox());
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let name = format!("{}/private/app:2", reg.addr);

    let e = engine
        .pull(&name, &mut PullOptions::default())
        .expect_err("pulled without credentials");
    assert!(e.to_string().contains(&reg.addr), "{e}");

    let mut events: Vec<PullEvent> = Vec::new();
    let mut sink = |e: PullEvent| events.push(e);
    let mut opts = PullOptions {
        auth: Some(Credentials {
            username: "dave".into(),
            password: "s3cret".into(),
            server: String::new(),
        }),
        progress: PullProgress::Events(&mut sink),
        ..Default::default()
    };
    let pulled = engine
        .pull(&name, &mut opts)
        .expect("pull with credentials");
    assert!(!pulled.up_to_date);
    assert!(pulled.digest.starts_with("sha256:"), "{pulled:?}");
    assert!(
        events
            .first()
            .is_some_and(|e| e.id == "2" && e.status.starts_with("Pulling from")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.status == "Pull complete"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.status == "Downloading" && e.total.is_some()),
        "{events:?}"
    );
    assert!(engine.images.resolve(&name).is_ok());
    // Given credentials are not stored.
    assert!(!dir.path().join("etc/auth.json").exists());
    assert_eq!(
        pulled.status(),
        format!("Downloaded newer image for {name}")
    );
}
