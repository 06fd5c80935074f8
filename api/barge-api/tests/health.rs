//! Health checks through the Docker API: the docker 28 CLI sees a container's health flip
//! (`inspect`, `ps` STATUS, `ps --filter health=`, `events`), a bad `Healthcheck` in a create
//! body is a 400 that leaves no container, and docker-compose 1.29 starts a service that
//! `depends_on: {db: {condition: service_healthy}}` only once db is healthy.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)] // the harness exports more than this file uses
mod common;

use std::time::Duration;

use common::*;

fn wait_health(d: &Daemon, name: &str, want: &str) {
    let ok = wait_until(Duration::from_secs(20), || {
        d.inspect(name, "{{.State.Health.Status}}") == want
    });
    assert!(
        ok,
        "{name} never became {want}: {}",
        d.inspect(name, "{{json .State.Health}}")
    );
}

fn ps_names(d: &Daemon, filter: &str) -> String {
    d.docker_ok(&["ps", "--filter", filter, "--format", "{{.Names}}"])
        .trim()
        .to_string()
}

#[test]
fn docker_cli_sees_health_flip() {
    let d = Daemon::start();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "bb",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 1000",
    ]);
    wait_health(&d, "web", "healthy");
    assert_eq!(ps_names(&d, "health=healthy"), "web");
    let status = d.docker_ok(&["ps", "--format", "{{.Status}}"]);
    assert!(status.trim().ends_with("(healthy)"), "{status}");
    d.docker_ok(&["exec", "web", "rm", "/tmp/ok"]);
    wait_health(&d, "web", "unhealthy");
    assert_eq!(ps_names(&d, "health=unhealthy"), "web");
    assert_eq!(ps_names(&d, "health=healthy"), "");
    let h: serde_json::Value =
        serde_json::from_str(&d.inspect("web", "{{json .State.Health}}")).unwrap();
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 1);
    let status = d.docker_ok(&["ps", "--format", "{{.Status}}"]);
    assert!(status.trim().ends_with("(unhealthy)"), "{status}");
    d.docker_ok(&["exec", "web", "touch", "/tmp/ok"]);
    wait_health(&d, "web", "healthy");
    let cfg = d.inspect("web", "{{json .Config.Healthcheck}}");
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(
        cfg["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /tmp/ok"])
    );
    assert_eq!(cfg["Interval"], 200_000_000);
    // docker's event actions, in order (replayed up to now).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let until = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    let events = d.docker_ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &until,
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]);
    let got: Vec<&str> = events.lines().collect();
    assert_eq!(
        got,
        [
            "health_status: healthy",
            "health_status: unhealthy",
            "health_status: healthy"
        ],
        "{events}"
    );
    d.docker_ok(&["rm", "-f", "web"]);
}

#[test]
fn a_bad_healthcheck_in_a_create_body_is_refused() {
    let d = Daemon::start();
    for (hc, want) in [
        (r#"{"Test":["CMD","true"],"Interval":-1}"#, "Interval"),
        (r#"{"Test":["CMD","true"],"Timeout":500}"#, "Timeout"),
        (r#"{"Test":["BOGUS","true"]}"#, "NONE, CMD or CMD-SHELL"),
        (r#"{"Test":["CMD","true"],"Retries":-3}"#, "Retries"),
        (r#"{"Test":["CMD-SHELL"]}"#, "CMD-SHELL"),
    ] {
        let body = format!(r#"{{"Image":"bb","Cmd":["sleep","10"],"Healthcheck":{hc}}}"#);
        let (code, v) = d.json("POST", "/containers/create", body.as_bytes());
        assert_eq!(code, 400, "{hc}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("Healthcheck") && msg.contains(want),
            "{hc}: {msg}"
        );
    }
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
}

fn compose(d: &Daemon, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new("docker-compose");
    c.current_dir(dir)
        .args(["-p", "hproj"])
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.store.path().join("docker-config"))
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .stdin(std::process::Stdio::null());
    exec_bounded(c, DOCKER_TIMEOUT)
}

#[test]
fn compose_waits_for_a_healthy_dependency() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/compose_health/docker-compose.yml"),
        dir.path().join("docker-compose.yml"),
    )
    .unwrap();
    let o = compose(&d, dir.path(), &["up", "-d"]);
    assert!(
        o.status.success(),
        "docker-compose up: {}\n{}\ndaemon log:\n{}",
        stdout(&o),
        stderr(&o),
        d.log()
    );
    let db = "hproj_db_1";
    let app = "hproj_app_1";
    assert_eq!(d.inspect(db, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(d.inspect(app, "{{.State.Status}}"), "running");
    // db is healthy two seconds after it starts at the earliest: app started after that.
    let started = |name: &str| {
        let t = d.inspect(name, "{{.State.StartedAt}}");
        barge_util::time::parse_rfc3339(&t)
            .map(|(s, n)| s as f64 + n as f64 / 1e9)
            .unwrap_or_else(|| panic!("{name} StartedAt {t:?}"))
    };
    let gap = started(app) - started(db);
    assert!(
        gap >= 2.0,
        "app started {gap:.2}s after db, before it was healthy"
    );
    let o = compose(&d, dir.path(), &["down", "-t", "1"]);
    assert!(o.status.success(), "docker-compose down: {}", stderr(&o));
}
