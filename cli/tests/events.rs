//! The store's event journal as the CLI, the shims, `barge-exit` and the image store write it,
//! and `Engine::subscribe` / `Engine::wait_for` reading it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use barge_engine::container::WaitCondition;
use barge_engine::events::{Action, Event, Filters, Journal, Next, SubscribeOptions, Type};
use barge_engine::{Engine, EngineOptions};
use barge_testutil::engine::{wait_until, BargeEnv};

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

fn journal(b: &BargeEnv) -> Vec<Event> {
    Journal::in_store(&b.root()).read().expect("read journal")
}

/// The actions of one container's events, in journal order.
fn actions_of(b: &BargeEnv, id: &str) -> Vec<(Action, Event)> {
    journal(b)
        .into_iter()
        .filter(|e| e.typ == Type::Container && e.actor.id == id)
        .map(|e| (e.action, e))
        .collect()
}

fn id_of(b: &BargeEnv, name: &str) -> String {
    b.inspect(name, "{{.Id}}")
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

#[test]
fn create_start_die_destroy_in_order_with_attributes() {
    let b = env();
    let out = b.run(&[
        "run",
        "--name",
        "ev1",
        "--label",
        "role=probe",
        "bb",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let id = id_of(&b, "ev1");
    b.ok(&["rm", "ev1"]);
    let evs = actions_of(&b, &id);
    let actions: Vec<Action> = evs.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        actions,
        [Action::Create, Action::Start, Action::Die, Action::Destroy],
        "{evs:?}"
    );
    let die = &evs[2].1;
    assert_eq!(die.exit_code(), Some(3));
    for (_, e) in &evs {
        assert_eq!(e.attribute("name"), Some("ev1"));
        assert_eq!(e.attribute("image"), Some("bb"));
        assert_eq!(e.attribute("role"), Some("probe"));
    }
    // Time order, and docker's JSON on disk.
    assert!(evs.windows(2).all(|w| w[0].1.time_nano <= w[1].1.time_nano));
    let text = std::fs::read_to_string(b.root().join("events/journal.jsonl")).unwrap();
    let line = text.lines().find(|l| l.contains("\"die\"")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["status"], "die");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["from"], "bb");
    assert_eq!(v["Type"], "container");
    assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
    assert_eq!(v["scope"], "local");
    assert!(v["timeNano"].as_i64().unwrap() / 1_000_000_000 == v["time"].as_i64().unwrap());
}

#[test]
fn missing_program_is_a_127_start_failure_with_a_die_event() {
    let b = env();
    let out = b.run(&["run", "--name", "nf", "bb", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let id = id_of(&b, "nf");
    let evs = actions_of(&b, &id);
    let die = evs
        .iter()
        .find(|(a, _)| *a == Action::Die)
        .expect("die event");
    assert_eq!(die.1.exit_code(), Some(127));
    assert!(!evs.iter().any(|(a, _)| *a == Action::Start), "{evs:?}");
    // The engine's typed error, from the shim's answer.
    let e = engine(&b);
    match e.start("nf", None) {
        Err(barge_engine::Error::StartFailed { code: 127, msg }) => {
            assert!(msg.contains(&id[..12]), "{msg}")
        }
        other => panic!("expected StartFailed 127, got {other:?}"),
    }
}

#[test]
fn oom_kill_is_an_event_and_inspect_says_oom_killed() {
    let b = env();
    let out = b.run(&[
        "run",
        "--name",
        "oom",
        "-m",
        "6m",
        "bb",
        "sh",
        "-c",
        "x=$(head -c 30m /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    // The shell (the biggest process) is killed; the exit code depends on which one was.
    eprintln!("run: {out:?}");
    let id = id_of(&b, "oom");
    let actions: Vec<Action> = actions_of(&b, &id).into_iter().map(|(a, _)| a).collect();
    let oom = actions.iter().position(|a| *a == Action::Oom);
    let die = actions.iter().position(|a| *a == Action::Die);
    assert!(
        oom.is_some() && oom < die,
        "oom before die expected: {actions:?}"
    );
    assert_eq!(b.inspect("oom", "{{.State.OOMKilled}}"), "true");
    // A run without an OOM kill says false.
    b.ok(&["run", "--name", "fine", "-m", "6m", "bb", "true"]);
    assert_eq!(b.inspect("fine", "{{.State.OOMKilled}}"), "false");
}

#[test]
fn subscribe_replays_since_then_sees_a_live_start_within_a_second() {
    let b = env();
    let before = barge_engine::events::now_nanos();
    b.ok(&["create", "--name", "s1", "bb", "sleep", "30"]);
    let id = id_of(&b, "s1");
    let e = engine(&b);
    let mut sub = e
        .subscribe(&SubscribeOptions {
            since: Some(before),
            until: None,
            filters: Filters {
                containers: vec!["s1".into()],
                ..Default::default()
            },
        })
        .expect("subscribe");
    match sub.next_timeout(Duration::from_secs(5)).unwrap() {
        Next::Event(ev) => {
            assert_eq!((ev.action, ev.actor.id.as_str()), (Action::Create, &*id))
        }
        other => panic!("replay: {other:?}"),
    }
    assert_eq!(
        sub.next_timeout(Duration::from_millis(200)).unwrap(),
        Next::Timeout
    );
    // A live start, by another process.
    let started = Instant::now();
    b.ok(&["start", "s1"]);
    let after_start = started.elapsed();
    match sub.next_timeout(Duration::from_secs(1)).unwrap() {
        Next::Event(ev) => assert_eq!(ev.action, Action::Start),
        other => panic!("live start not seen: {other:?}"),
    }
    assert!(started.elapsed() < after_start + Duration::from_secs(1));
    // `until` in the past ends a replay.
    let mut past = e
        .subscribe(&SubscribeOptions {
            since: Some(before),
            until: Some(barge_engine::events::now_nanos()),
            filters: Filters {
                types: vec![Type::Container],
                actions: vec!["start".into()],
                ..Default::default()
            },
        })
        .unwrap();
    let got: Vec<Action> = past.by_ref().map(|e| e.unwrap().action).collect();
    assert_eq!(got, [Action::Start]);
    b.ok(&["rm", "-f", "s1"]);
}

#[test]
fn wait_on_a_restarting_container_returns_at_its_next_exit() {
    let b = env();
    let id = b.run_d(&["--restart", "always", "bb", "sh", "-c", "sleep 0.5; exit 5"]);
    // Twice: each `wait` returns at the next exit while the policy keeps restarting it.
    for _ in 0..2 {
        let out = b.run(&["wait", &id]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5", "{out:?}");
    }
    assert!(wait_until(Duration::from_secs(5), || {
        matches!(
            b.inspect(&id, "{{.State.Status}}").as_str(),
            "running" | "restarting"
        )
    }));
    b.ok(&["rm", "-f", &id]);
    // The shim's events: an exit, then the policy's restart and the new start; `rm -f` kills
    // (9) and removes.
    let evs = actions_of(&b, &id);
    let actions: Vec<Action> = evs.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        &actions[..5],
        [
            Action::Create,
            Action::Start,
            Action::Die,
            Action::Restart,
            Action::Start,
        ],
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&Action::Destroy), "{actions:?}");
    let kill = evs.iter().find(|(a, _)| *a == Action::Kill).expect("kill");
    assert_eq!(kill.1.attribute("signal"), Some("9"));
}

#[test]
fn wait_conditions_next_exit_and_removed() {
    let b = env();
    b.ok(&[
        "create",
        "--name",
        "w1",
        "bb",
        "sh",
        "-c",
        "sleep 0.3; exit 4",
    ]);
    assert_eq!(b.run(&["start", "-a", "w1"]).status.code(), Some(4));
    let e = engine(&b);
    // Not running: returns at once with the last exit code.
    assert_eq!(e.wait_for("w1", WaitCondition::NotRunning).unwrap(), 4);
    std::thread::scope(|s| {
        let next = s.spawn(|| engine(&b).wait_for("w1", WaitCondition::NextExit));
        let removed = s.spawn(|| engine(&b).wait_for("w1", WaitCondition::Removed));
        std::thread::sleep(Duration::from_millis(800));
        assert!(!next.is_finished(), "next-exit returned before an exit");
        b.ok(&["start", "w1"]);
        assert_eq!(next.join().unwrap().unwrap(), 4);
        assert!(!removed.is_finished(), "removed returned before rm");
        b.ok(&["wait", "w1"]);
        b.ok(&["rm", "w1"]);
        assert_eq!(removed.join().unwrap().unwrap(), 4);
    });
    assert!(matches!(
        e.wait_for("w1", WaitCondition::NotRunning),
        Err(barge_engine::Error::NoSuchContainer(_))
    ));
    assert!("bogus".parse::<WaitCondition>().is_err());
}

#[test]
fn run_rm_is_removed_by_barge_exit_with_a_destroy_event() {
    let b = env();
    let id = b.run_d(&["--rm", "bb", "true"]);
    // The destroy event is written once the container is gone.
    assert!(
        wait_until(Duration::from_secs(10), || actions_of(&b, &id)
            .iter()
            .any(|(a, _)| *a == Action::Destroy)),
        "the shim's barge-exit removed the container"
    );
    assert!(!b.container_dir(&id).exists());
    let actions: Vec<Action> = actions_of(&b, &id).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        actions,
        [Action::Create, Action::Start, Action::Die, Action::Destroy]
    );
}

#[test]
fn exec_events_foreground_and_detached() {
    let b = env();
    let id = b.run_d(&["bb", "sleep", "30"]);
    let out = b.run(&["exec", &id, "sh", "-c", "exit 2"]);
    assert_eq!(out.status.code(), Some(2));
    b.ok(&["exec", "-d", &id, "sh", "-c", "exit 6"]);
    let exec_dies = || -> Vec<Option<i32>> {
        actions_of(&b, &id)
            .into_iter()
            .filter(|(a, _)| *a == Action::ExecDie)
            .map(|(_, e)| e.exit_code())
            .collect()
    };
    // The detached one's exit is recorded by the shim, which reaps it.
    assert!(
        wait_until(Duration::from_secs(5), || exec_dies().len() == 2),
        "{:?}",
        actions_of(&b, &id)
    );
    assert_eq!(exec_dies(), [Some(2), Some(6)]);
    let actions: Vec<Action> = actions_of(&b, &id).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        &actions[2..],
        [
            Action::ExecCreate,
            Action::ExecStart,
            Action::ExecDie,
            Action::ExecCreate,
            Action::ExecStart,
            Action::ExecDie
        ]
    );
    b.ok(&["rm", "-f", &id]);
}

#[test]
fn the_network_of_a_container_that_exits_is_torn_down_by_barge_exit() {
    let b = env();
    let id = b.run_d(&["bb", "sh", "-c", "sleep 0.3"]);
    let pin = b.runroot().join("netns").join(&id);
    assert!(
        std::fs::symlink_metadata(&pin).is_ok(),
        "a network namespace pin while it runs"
    );
    // Nobody but the shim's exit command (barge-exit) tears it down.
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::symlink_metadata(&pin).is_err() && !b.container_dir(&id).join("net").exists()
        }),
        "network still up after the exit"
    );
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "exited");
    b.ok(&["rm", &id]);
}

#[test]
fn volume_and_image_events() {
    let b = env();
    b.ok(&["volume", "create", "ev-vol"]);
    b.ok(&["volume", "rm", "ev-vol"]);
    b.ok(&["tag", "bb", "bb:two"]);
    b.ok(&["rmi", "bb:two"]);
    let evs = journal(&b);
    let vol: Vec<Action> = evs
        .iter()
        .filter(|e| e.typ == Type::Volume && e.actor.id == "ev-vol")
        .map(|e| e.action)
        .collect();
    assert_eq!(vol, [Action::Create, Action::Destroy]);
    let img: Vec<(Action, Option<&str>)> = evs
        .iter()
        .filter(|e| e.typ == Type::Image && e.action != Action::Import)
        .map(|e| (e.action, e.attribute("name")))
        .collect();
    assert_eq!(
        img,
        [
            (Action::Tag, Some("docker.io/library/bb:two")),
            (Action::Untag, Some("docker.io/library/bb:two"))
        ]
    );
    // The import that made `bb` (BargeEnv::new) is there too.
    assert!(evs
        .iter()
        .any(|e| e.typ == Type::Image && e.action == Action::Import));
}
