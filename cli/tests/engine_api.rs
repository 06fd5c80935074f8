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
            exit_helper: std::path::Path::new(env!("CARGO_BIN_EXE_barge"))
                .with_file_name("barge-exit"),
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

fn engine_of(b: &barge_testutil::engine::BargeEnv) -> Arc<Engine> {
    let config = b.dir.path().join("etc");
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_barge"));
    Arc::new(
        Engine::open(EngineOptions {
            root: b.root(),
            runroot: b.runroot(),
            shim: bin.with_file_name("barge-shim"),
            exit_helper: bin.with_file_name("barge-exit"),
            registry: env!("CARGO_BIN_EXE_barge-registry").into(),
            init: "/usr/bin/tini-static".into(),
            network: barge_engine::network::settings::Settings::defaults(&config),
            config,
        })
        .expect("open engine"),
    )
}

/// Listing with filters (both JSON forms), the list entry, logs as a stream, a stats sample
/// and its docker document, top, disk usage and a container prune, all through the engine
/// on containers the CLI ran.
#[test]
fn list_logs_stats_top_df_and_prune_through_the_engine() {
    use barge_engine::filters::Filters;
    use barge_engine::list::ListOptions;
    use barge_engine::logs::{LogOptions, Stream};

    let b = barge_testutil::engine::BargeEnv::new(env!("CARGO_BIN_EXE_barge"));
    let up = b.run_d(&["--name", "up", "--network", "none", "bb", "sleep", "30"]);
    let out = b.run(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "echo hi; echo err >&2; dd if=/dev/zero of=/big bs=1k count=300 2>/dev/null; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let engine = engine_of(&b);

    let names = |filters: &str| -> Vec<String> {
        engine
            .list_containers(&ListOptions {
                filters: Filters::parse_json(filters).unwrap(),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|l| l.record.name)
            .collect()
    };
    assert_eq!(names(r#"{"status":["exited"]}"#), ["done"]);
    assert_eq!(names(r#"{"status":{"running":true}}"#), ["up"]);
    assert_eq!(names(r#"{"exited":["3"],"name":["do"]}"#), ["done"]);
    assert_eq!(names(""), ["up"]);

    let listed = engine
        .list_containers(&ListOptions::default())
        .unwrap()
        .remove(0);
    let entry = barge_engine::docker::list::entry(
        &engine,
        &listed.record,
        &listed.status,
        barge_engine::docker::time::now(),
    );
    assert_eq!(entry["Names"][0], "/up");
    assert_eq!(entry["State"], "running");
    assert!(
        entry["Status"].as_str().unwrap().starts_with("Up "),
        "{entry}"
    );
    assert_eq!(entry["Command"], "sleep 30");

    let mut out = String::new();
    let mut err = String::new();
    for c in engine.logs("done", &LogOptions::default()).unwrap() {
        let c = c.unwrap();
        let s = String::from_utf8_lossy(&c.data).into_owned();
        match c.stream {
            Stream::Stdout => out.push_str(&s),
            Stream::Stderr => err.push_str(&s),
        }
    }
    assert_eq!((out.as_str(), err.as_str()), ("hi\n", "err\n"));

    let s1 = engine.stats_sample("up").unwrap();
    let s2 = engine.stats_sample(&up).unwrap();
    assert_eq!(s2.pids_current, 1);
    assert!(s2.online_cpus >= 1 && s2.system_cpu > s1.system_cpu / 2);
    assert!(s2.memory_usage > 0 && s2.memory_limit > 0);
    let doc = barge_engine::docker::stats::stats_json(&up, "up", Some(&s1), &s2);
    assert_eq!(doc["name"], "/up");
    assert_eq!(doc["pids_stats"]["current"], 1);
    assert!(doc["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(doc["precpu_stats"]["cpu_usage"]["total_usage"].is_u64());
    assert!(matches!(
        engine.stats_sample("done"),
        Err(barge_engine::Error::BadState { .. })
    ));

    let top = engine.top("up", &[]).unwrap();
    assert!(top.titles.iter().any(|t| t == "PID"), "{top:?}");
    assert_eq!(top.processes.len(), 1, "{top:?}");
    assert!(
        top.processes[0].last().unwrap().contains("sleep 30"),
        "{top:?}"
    );
    let top = engine
        .top("up", &["-o".to_string(), "pid,comm".to_string()])
        .unwrap();
    assert_eq!(top.titles, ["PID", "COMMAND"]);
    assert_eq!(top.processes[0][1], "sleep");

    let du = engine.disk_usage().unwrap();
    assert_eq!(du.images.len(), 1);
    assert_eq!(du.images[0].containers, 2);
    let done = du.containers.iter().find(|c| c.name == "done").unwrap();
    assert!(done.size_rw >= 300 * 1024, "{done:?}");
    let row = du.containers_row();
    assert_eq!((row.total, row.active), (2, 1));
    let df = b.ok(&["system", "df"]);
    assert!(
        df.lines()
            .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>() == ["Containers", "2", "1"]),
        "{df}"
    );

    let pruned = engine.prune_containers().unwrap();
    assert_eq!(pruned.deleted.len(), 1);
    assert!(pruned.space_reclaimed >= 300 * 1024, "{pruned:?}");
    assert!(b.run(&["inspect", "done"]).status.code() == Some(1));
    b.ok(&["rm", "-f", "up"]);
}

/// `--label-file` and `--label` (which wins) go through the engine's option parsing into
/// the container's labels; bad option text is refused naming the flag.
#[test]
fn label_file_security_and_log_options_reach_the_config() {
    let b = barge_testutil::engine::BargeEnv::new(env!("CARGO_BIN_EXE_barge"));
    let f = b.dir.path().join("labels");
    std::fs::write(&f, "# comment\ntier=back\nowner=ops\n").unwrap();
    b.ok(&[
        "create",
        "--name",
        "lab",
        "--label-file",
        f.to_str().unwrap(),
        "--label",
        "tier=front",
        "--security-opt",
        "no-new-privileges",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=2",
        "bb",
    ]);
    let labels: serde_json::Value =
        serde_json::from_str(&b.inspect("lab", "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels, serde_json::json!({"owner": "ops", "tier": "front"}));
    assert_eq!(
        b.inspect("lab", "{{json .HostConfig.SecurityOpt}}"),
        r#"["no-new-privileges"]"#
    );
    assert_eq!(
        b.inspect("lab", "{{.HostConfig.LogConfig.Config.max-size}}"),
        "1048576"
    );
    for (args, flag) in [
        (
            vec!["--label-file", "/nonexistent/labels"],
            "/nonexistent/labels",
        ),
        (vec!["--log-opt", "max-file=0"], "--log-opt"),
        (vec!["--security-opt", "selinux=x"], "--security-opt"),
    ] {
        let mut a = vec!["create"];
        a.extend(args);
        a.push("bb");
        let out = b.run(&a);
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        assert!(barge_testutil::stderr(&out).contains(flag), "{out:?}");
    }
}
