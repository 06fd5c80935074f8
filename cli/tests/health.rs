//! Health checks through `barge`: the shim probes the container on schedule and its status
//! flips starting → healthy → unhealthy → healthy as the probe's file comes and goes (seen by
//! `inspect`, `ps`, the `health_status` events of `Engine::subscribe`, and the durable record);
//! a hanging probe is killed at its timeout; the image's HEALTHCHECK applies unless
//! `--no-healthcheck`; bad flags are refused and leave no container.

use std::path::PathBuf;
use std::time::Duration;

use barge_engine::events::{Action, Filters, Next, SubscribeOptions};
use barge_engine::{Engine, EngineOptions};
use barge_testutil::engine::{alive, wait_until, BargeEnv};
use barge_testutil::stderr;
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// The engine on the test's store, in this process.
fn engine(b: &BargeEnv) -> Engine {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_barge"));
    let config = b.path().join("etc");
    Engine::open(EngineOptions {
        root: b.root(),
        runroot: b.runroot(),
        shim: bin.with_file_name("barge-shim"),
        exit_helper: bin.with_file_name("barge-exit"),
        registry: bin.with_file_name("barge-registry"),
        init: PathBuf::from("/usr/bin/tini-static"),
        network: barge_engine::network::settings::Settings::load(&config).expect("settings"),
        config,
    })
    .expect("open engine")
}

fn inspect(b: &BargeEnv, name: &str) -> Value {
    let out = b.ok(&["inspect", name]);
    let v: Value = serde_json::from_str(&out).expect("inspect JSON");
    v[0].clone()
}

fn health(b: &BargeEnv, name: &str) -> Value {
    inspect(b, name)["State"]["Health"].clone()
}

fn status_of(b: &BargeEnv, name: &str) -> String {
    health(b, name)["Status"].as_str().unwrap_or("").to_string()
}

/// `barge ps -a --format json` with `filters`: one object per container.
fn ps(b: &BargeEnv, filters: &[&str]) -> Vec<Value> {
    let mut args = vec!["ps", "-a", "--format", "json"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    b.ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).expect("ps JSON line"))
        .collect()
}

/// The STATUS text `barge ps` shows for `name`.
fn ps_status(b: &BargeEnv, name: &str) -> String {
    let l = ps(b, &[&format!("name={name}")]);
    assert_eq!(l.len(), 1, "{l:?}");
    l[0]["Status"].as_str().unwrap_or("").to_string()
}

/// The names `barge ps` lists with `filter`.
fn ps_names(b: &BargeEnv, filter: &str) -> Vec<String> {
    ps(b, &[filter])
        .iter()
        .map(|v| v["Names"].as_str().unwrap_or("").to_string())
        .collect()
}

fn wait_status(b: &BargeEnv, name: &str, want: &str) {
    let ok = wait_until(Duration::from_secs(15), || status_of(b, name) == want);
    assert!(ok, "{name} never became {want}: {}", health(b, name));
}

#[test]
fn health_flips_starting_healthy_unhealthy_healthy() {
    let b = env();
    let e = engine(&b);
    let before = barge_engine::events::now_nanos();
    // Failures don't count in the 30 s start period; once healthy, two failures in a row
    // make it unhealthy.
    let id = b.run_d(&[
        "--name",
        "flip",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "--health-start-period",
        "30s",
        "--health-start-interval",
        "200ms",
        "bb",
        "sleep",
        "1000",
    ]);
    let mut sub = e
        .subscribe(&SubscribeOptions {
            since: Some(before),
            until: None,
            filters: Filters {
                containers: vec!["flip".into()],
                actions: vec!["health_status".into()],
                ..Default::default()
            },
        })
        .expect("subscribe");
    let mut next_health = || match sub
        .next_timeout(Duration::from_secs(15))
        .expect("next event")
    {
        Next::Event(ev) => {
            assert_eq!(ev.action, Action::HealthStatus);
            assert_eq!(ev.actor.id, id);
            assert_eq!(ev.attribute("name"), Some("flip"));
            ev.to_docker_json()["Action"].as_str().unwrap().to_string()
        }
        other => panic!("no health_status event: {other:?}"),
    };
    assert_eq!(status_of(&b, "flip"), "starting");
    assert!(
        ps_status(&b, "flip").ends_with("(health: starting)"),
        "{}",
        ps_status(&b, "flip")
    );
    // Probes fail in the start period: still starting, no streak.
    assert!(wait_until(Duration::from_secs(10), || {
        health(&b, "flip")["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 2)
    }));
    let h = health(&b, "flip");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    // A success in the start period: healthy.
    b.ok(&["exec", "flip", "touch", "/tmp/ok"]);
    wait_status(&b, "flip", "healthy");
    assert_eq!(next_health(), "health_status: healthy");
    let h = health(&b, "flip");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["ExitCode"].clone(), last["Output"].clone()),
        (0.into(), "fine\n".into())
    );
    assert!(ps_status(&b, "flip").ends_with("(healthy)"));
    assert_eq!(ps_names(&b, "health=healthy"), ["flip"]);
    // The file goes: unhealthy after two failures (the start period no longer protects a
    // container that was healthy).
    b.ok(&["exec", "flip", "rm", "/tmp/ok"]);
    wait_status(&b, "flip", "unhealthy");
    assert_eq!(next_health(), "health_status: unhealthy");
    let h = health(&b, "flip");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert!(h["Log"].as_array().unwrap().len() <= 5, "{h}");
    assert!(ps_status(&b, "flip").ends_with("(unhealthy)"));
    assert!(ps_names(&b, "health=healthy").is_empty());
    assert_eq!(ps_names(&b, "health=unhealthy"), ["flip"]);
    // The record is durable: the shim's file says the same.
    let rec: Value = serde_json::from_slice(
        &std::fs::read(b.container_dir(&id).join("health.json")).expect("health.json"),
    )
    .unwrap();
    assert_eq!(rec["status"], "unhealthy");
    // Back.
    b.ok(&["exec", "flip", "touch", "/tmp/ok"]);
    wait_status(&b, "flip", "healthy");
    assert_eq!(next_health(), "health_status: healthy");
    assert_eq!(health(&b, "flip")["FailingStreak"], 0);
    // Stopped: no more probes, and no health in ps.
    b.ok(&["stop", "-t", "1", "flip"]);
    let n = health(&b, "flip")["Log"].as_array().unwrap().clone();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(health(&b, "flip")["Log"].as_array().unwrap(), &n);
    assert!(!ps_status(&b, "flip").contains("health"));
    b.ok(&["rm", "-f", "flip"]);
}

/// Host pids of processes in the pid namespace of `init` whose command line is `cmd`.
fn procs_in(init: i32, cmd: &str) -> Vec<i32> {
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).ok();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok() == ns)
                .filter(|p| {
                    let c = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmd
                })
                .filter(|p| alive(*p))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_hanging_probe_is_killed_at_its_timeout() {
    let b = env();
    b.run_d(&[
        "--name",
        "hang",
        "--health-cmd",
        "sleep 100",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "bb",
        "sleep",
        "1000",
    ]);
    wait_status(&b, "hang", "unhealthy");
    assert!(wait_until(Duration::from_secs(15), || {
        health(&b, "hang")["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 3)
    }));
    let h = health(&b, "hang");
    for r in h["Log"].as_array().unwrap() {
        assert_eq!(r["ExitCode"], -1, "{h}");
        assert_eq!(r["Output"], "Health check exceeded timeout (300ms)", "{h}");
    }
    // Three probes ran over; killed ones don't pile up (at most the one in flight).
    let init = inspect(&b, "hang")["State"]["Pid"].as_i64().unwrap() as i32;
    let probes = procs_in(init, "sleep 100");
    assert!(probes.len() <= 1, "probes left running: {probes:?}");
    b.ok(&["rm", "-f", "hang"]);
}

#[test]
fn image_healthcheck_applies_unless_disabled() {
    let b = env();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"test\", \"-f\", \"/etc/passwd\"]\n",
    )
    .unwrap();
    b.ok(&["build", "-q", "-t", "hc:1", ctx.path().to_str().unwrap()]);
    b.run_d(&["--name", "img", "hc:1", "sleep", "1000"]);
    wait_status(&b, "img", "healthy");
    assert_eq!(
        inspect(&b, "img")["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "test", "-f", "/etc/passwd"])
    );
    // The user's flags override the image's fields, keeping its test.
    b.run_d(&[
        "--name",
        "over",
        "--health-retries",
        "7",
        "hc:1",
        "sleep",
        "1000",
    ]);
    let hc = inspect(&b, "over")["Config"]["Healthcheck"].clone();
    assert_eq!(hc["Retries"], 7, "{hc}");
    assert_eq!(hc["Interval"], 200_000_000, "{hc}");
    wait_status(&b, "over", "healthy");
    // --no-healthcheck: no probe, no health.
    let id = b.run_d(&["--name", "off", "--no-healthcheck", "hc:1", "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(600));
    let v = inspect(&b, "off");
    assert!(v["State"].get("Health").is_none(), "{v}");
    assert!(!b.container_dir(&id).join("health.json").exists());
    let st = ps_status(&b, "off");
    assert!(st.starts_with("Up ") && !st.contains('('), "{st}");
    assert_eq!(ps_names(&b, "health=none"), ["off"]);
    b.ok(&["rm", "-f", "img", "over", "off"]);
}

#[test]
fn bad_health_flags_are_refused_and_leave_nothing() {
    let b = env();
    for (flags, want) in [
        (
            &["--health-cmd", "true", "--health-interval", "-1s"][..],
            "--health-interval -1s: cannot be negative",
        ),
        (
            &["--health-cmd", "true", "--health-interval", "0s"][..],
            "--health-interval 0s: must be more than 0",
        ),
        (
            &["--health-cmd", "true", "--health-timeout", "soon"][..],
            "--health-timeout: invalid duration \"soon\"",
        ),
        (
            &["--health-cmd", "true", "--health-retries", "-2"][..],
            "--health-retries -2: cannot be negative",
        ),
        (
            &["--no-healthcheck", "--health-cmd", "true"][..],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (&["--health-cmd", " "][..], "--health-cmd: empty command"),
    ] {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb", "sleep", "10"]);
        let o = b.run(&args);
        assert!(!o.status.success(), "{flags:?} was accepted");
        assert!(stderr(&o).contains(want), "{flags:?}: {}", stderr(&o));
    }
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    let o = b.run(&["ps", "--filter", "health=sick"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid filter 'health=sick'"),
        "{}",
        stderr(&o)
    );
}
