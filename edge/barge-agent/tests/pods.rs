//! The agent running pods through the engine, driven by a fake hub over real TLS and the
//! real protocol, checked from inside the containers with `barge exec`:
//! - a synced Pod (with a ConfigMap as env) runs; an identical re-sync (new revision, same
//!   content) leaves the very same container process; a changed ConfigMap replaces the pod;
//!   a Delete removes it; statuses come back with Kubernetes phases;
//! - exec (stdout, stderr, exit code, stdin) and logs through the tunnel;
//! - offline reboot: agent, shims and containers killed, mounts and the run root gone, the
//!   agent started with no hub reachable -> the cached pod runs again.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use barge_edge_proto::object::{Object, PodPhase};
use barge_edge_proto::wire::{Change, EdgeMsg, HubMsg, PodReport};
use barge_testutil::engine::{wait_until, BargeEnv};
use common::{agent_log, bin_dir, edge_cmd, Agent, FakeHub};
use serde_json::json;

fn env() -> BargeEnv {
    BargeEnv::new(bin_dir().join("barge").to_str().unwrap())
}

fn pod(rev: i64) -> Object {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": rev.to_string(),
                     "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "bb",
            "command": ["sh", "-c", "echo started; exec sleep 1000"],
            "env": [{"name": "GREETING", "valueFrom":
                {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}]}]}
    }))
    .unwrap()
}

fn config_map(rev: i64, greeting: &str) -> Object {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "resourceVersion": rev.to_string()},
        "data": {"greeting": greeting}
    }))
    .unwrap()
}

fn put(o: Object) -> Change {
    Change::Put {
        object: Box::new(o),
    }
}

/// Join `hub` as n1 and start the agent.
fn join_and_run(b: &BargeEnv, hub: &FakeHub) -> Agent {
    let out = edge_cmd(
        b.path(),
        &[
            "join",
            &format!("https://{}", hub.addr),
            "--token",
            &hub.ca.token(),
            "--name",
            "n1",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = Agent::start(b.path());
    let hello = hub.wait(Duration::from_secs(20), |m| {
        matches!(m, EdgeMsg::Hello { .. })
    });
    assert!(hello.is_some(), "no Hello: {}", agent_log(b.path()));
    agent
}

/// Send a Sync and wait for its Ack.
fn sync(hub: &FakeHub, dir: &Path, revision: i64, changes: Vec<Change>) {
    hub.send(HubMsg::Sync {
        revision,
        full: false,
        changes,
    });
    let ack = hub.wait(
        Duration::from_secs(20),
        |m| matches!(m, EdgeMsg::Ack { revision: r } if *r == revision),
    );
    assert!(ack.is_some(), "no Ack {revision}: {}", agent_log(dir));
}

/// The first status report of pod web for which `f` is true.
fn web_status(hub: &FakeHub, dir: &Path, f: impl FnMut(&PodReport) -> bool) -> PodReport {
    pod_status(hub, dir, "web", f)
}

/// The first status report of pod `name` for which `f` is true.
fn pod_status(
    hub: &FakeHub,
    dir: &Path,
    name: &str,
    mut f: impl FnMut(&PodReport) -> bool,
) -> PodReport {
    let mut found = None;
    hub.wait(Duration::from_secs(60), |m| {
        if let EdgeMsg::PodStatus { pods, .. } = m {
            if let Some(p) = pods
                .iter()
                .find(|p| p.key.name == name && p.key.namespace == "default" && f(p))
            {
                found = Some(p.clone());
                return true;
            }
        }
        false
    });
    found.unwrap_or_else(|| panic!("no such status for {name}: {}", agent_log(dir)))
}

/// What a tunnel stream sent: (stdout, stderr, exit code, error).
fn stream_result(
    hub: &FakeHub,
    dir: &Path,
    id: u32,
) -> (String, String, Option<i32>, Option<String>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut end = None;
    hub.wait(Duration::from_secs(30), |m| match m {
        EdgeMsg::Data { stream, fd, data } if *stream == id => {
            let bytes = barge_edge_proto::wire::unb64(data).unwrap();
            if *fd == 2 { &mut err } else { &mut out }.extend_from_slice(&bytes);
            false
        }
        EdgeMsg::StreamEnd {
            stream,
            exit_code,
            error,
        } if *stream == id => {
            end = Some((*exit_code, error.clone()));
            true
        }
        _ => false,
    });
    let (code, error) =
        end.unwrap_or_else(|| panic!("stream {id} did not end: {}", agent_log(dir)));
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        code,
        error,
    )
}

fn tunnel_exec(id: u32, pod: &str, cmd: &[&str], stdin: bool) -> HubMsg {
    HubMsg::Exec {
        stream: id,
        namespace: "default".into(),
        pod: pod.into(),
        container: String::new(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        stdin,
        tty: false,
    }
}

/// Exec and logs through the tunnel, as the hub asks for them.
fn check_tunnels(hub: &FakeHub, dir: &Path) {
    hub.send(tunnel_exec(
        1,
        "web",
        &["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"],
        false,
    ));
    let (out, err, code, error) = stream_result(hub, dir, 1);
    assert_eq!(
        (out.as_str(), err.as_str(), code, error),
        ("hello\n", "oops\n", Some(3), None)
    );

    hub.send(tunnel_exec(2, "web", &["cat"], true));
    hub.send(HubMsg::Data {
        stream: 2,
        fd: 0,
        data: barge_edge_proto::wire::b64(b"abc\n"),
    });
    hub.send(HubMsg::Data {
        stream: 2,
        fd: 0,
        data: String::new(),
    });
    let (out, _, code, _) = stream_result(hub, dir, 2);
    assert_eq!((out.as_str(), code), ("abc\n", Some(0)));

    hub.send(HubMsg::Logs {
        stream: 3,
        namespace: "default".into(),
        pod: "web".into(),
        container: "c".into(),
        follow: false,
        tail: None,
        timestamps: false,
    });
    let (out, _, code, error) = stream_result(hub, dir, 3);
    assert_eq!((out.as_str(), code, error), ("started\n", Some(0), None));

    // Following the log of a container that says nothing more: a Cancel ends the stream
    // (the agent's blocking thread is not left waiting for output that never comes).
    hub.send(HubMsg::Logs {
        stream: 5,
        namespace: "default".into(),
        pod: "web".into(),
        container: "c".into(),
        follow: true,
        tail: None,
        timestamps: false,
    });
    assert!(hub
        .wait(Duration::from_secs(30), |m| matches!(
            m,
            EdgeMsg::Data { stream: 5, .. }
        ))
        .is_some());
    hub.send(HubMsg::Cancel { stream: 5 });
    let (_, _, code, error) = stream_result(hub, dir, 5);
    assert_eq!((code, error.as_deref()), (None, Some("cancelled")));

    hub.send(tunnel_exec(4, "nope", &["true"], false));
    let (_, _, code, error) = stream_result(hub, dir, 4);
    assert_eq!(code, None);
    assert!(
        error
            .as_deref()
            .unwrap_or("")
            .contains("not running on this node"),
        "{error:?}"
    );
}

fn exec(b: &BargeEnv, cmd: &str) -> String {
    b.ok(&["exec", "web-c", "sh", "-c", cmd]).trim().to_string()
}

/// The container's init pid as the host sees it.
fn pid(b: &BargeEnv) -> i64 {
    b.inspect("web-c", "{{.State.Pid}}").parse().unwrap()
}

#[test]
fn edged_applies_keeps_unchanged_and_replaces_changed_pods() {
    let b = env();
    let hub = FakeHub::start();
    let _agent = join_and_run(&b, &hub);

    let flaky: Object = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "flaky", "namespace": "default", "resourceVersion": "10"},
        "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "bb",
            "command": ["sh", "-c", "sleep 0.3; exit 1"]}]}
    }))
    .unwrap();
    // A pod of the same name in another namespace: its own pod on the device.
    let other_web: Object = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "prod", "resourceVersion": "10"},
        "spec": {"containers": [{"name": "c", "image": "bb",
            "command": ["sh", "-c", "echo prod; exec sleep 1000"]}]}
    }))
    .unwrap();
    sync(
        &hub,
        b.path(),
        10,
        vec![
            put(config_map(9, "hello")),
            put(pod(10)),
            put(flaky),
            put(other_web),
        ],
    );
    // Both webs Running (their reports may come in one message or in several).
    let (mut st, mut prod_running) = (None, false);
    hub.wait(Duration::from_secs(60), |m| {
        if let EdgeMsg::PodStatus { pods, .. } = m {
            for p in pods {
                let running = p.status.phase == PodPhase::Running;
                match p.key.namespace.as_str() {
                    "prod" if p.key.name == "web" && running => prod_running = true,
                    "default"
                        if p.key.name == "web" && running && p.status.observed_revision == 10 =>
                    {
                        st = Some(p.clone())
                    }
                    _ => {}
                }
            }
        }
        st.is_some() && prod_running
    });
    assert!(
        prod_running,
        "prod/web not Running: {}",
        agent_log(b.path())
    );
    let st = st.unwrap_or_else(|| panic!("default/web not Running: {}", agent_log(b.path())));
    let prod_out = b.ok(&["exec", "web_prod-c", "cat", "/proc/1/cmdline"]);
    assert!(prod_out.contains("sleep"), "{prod_out}");
    assert_eq!(st.status.container_statuses[0].restart_count, 0);
    // A container that keeps failing: its restarts are counted.
    pod_status(&hub, b.path(), "flaky", |p| {
        p.status
            .container_statuses
            .first()
            .is_some_and(|c| c.restart_count >= 2)
    });
    assert_eq!(st.status.container_statuses.len(), 1);
    assert_eq!(st.status.container_statuses[0].name, "c");
    assert_eq!(st.status.container_statuses[0].state, "running");
    assert_eq!(exec(&b, "echo $GREETING"), "hello");
    let pid1 = pid(&b);
    let pod_id = st.status.pod_id.clone().unwrap();
    // The pod carries the agent's labels.
    let labels = b.ok(&["pod", "inspect", "web"]);
    assert!(labels.contains("io.barge.edge.owner"), "{labels}");
    check_tunnels(&hub, b.path());

    // Same content, new revision (a Deployment's scale change does this): untouched.
    sync(&hub, b.path(), 11, vec![put(pod(11))]);
    let st = web_status(&hub, b.path(), |p| p.status.observed_revision == 11);
    assert_eq!(st.status.phase, PodPhase::Running);
    assert_eq!(st.status.pod_id.as_deref(), Some(pod_id.as_str()));
    assert_eq!(
        pid(&b),
        pid1,
        "the pod was restarted on an identical re-sync"
    );
    assert_eq!(exec(&b, "echo $GREETING"), "hello");

    // The ConfigMap changed: the pod is replaced and sees the new value.
    sync(&hub, b.path(), 12, vec![put(config_map(12, "bonjour"))]);
    let st = web_status(&hub, b.path(), |p| {
        p.status.phase == PodPhase::Running && p.status.pod_id.as_deref() != Some(&pod_id)
    });
    assert!(st.status.pod_id.is_some());
    assert_eq!(exec(&b, "echo $GREETING"), "bonjour");
    assert_ne!(pid(&b), pid1);

    // Deleted in the cloud: removed here, reported gone.
    sync(
        &hub,
        b.path(),
        13,
        vec![Change::Delete {
            key: pod(0).key(),
            revision: 13,
        }],
    );
    let gone = hub.wait(
        Duration::from_secs(60),
        |m| matches!(m, EdgeMsg::PodStatus { gone, .. } if gone.iter().any(|k| k.name == "web")),
    );
    assert!(
        gone.is_some(),
        "web not reported gone: {}",
        agent_log(b.path())
    );
    assert!(
        wait_until(Duration::from_secs(30), || !b
            .ok(&["pod", "ls", "--format", "json"])
            .contains("\"web\"")),
        "pod web still there"
    );
}

/// What a power cut takes away: every process of the store (agent, shims, containers),
/// every mount under the test's directory, the containers' cgroups, the run root.
fn power_cut(b: &BargeEnv, agent: &mut Agent) {
    agent.kill();
    let ids: Vec<String> = b
        .ok(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!ids.is_empty());
    let mut cgroups = Vec::new();
    let mut pids = Vec::new();
    for id in &ids {
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.container_dir(id).join("state.json")).unwrap())
                .unwrap();
        let shim = st["shim_pid"].as_i64().unwrap_or(0) as i32;
        let init = st["pid"].as_i64().unwrap_or(0) as i32;
        if let Ok(rt) = std::fs::read(b.runroot().join("runtime").join(id).join("state.json")) {
            let v: serde_json::Value = serde_json::from_slice(&rt).unwrap();
            for p in v["cgroup"]["paths"].as_array().cloned().unwrap_or_default() {
                cgroups.push(std::path::PathBuf::from(p.as_str().unwrap()));
            }
        }
        for p in [shim, init] {
            if p > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
                pids.push(p);
            }
        }
    }
    assert!(
        wait_until(Duration::from_secs(10), || pids
            .iter()
            .all(|p| !barge_testutil::engine::alive(*p))),
        "processes survived SIGKILL"
    );
    let mut points: Vec<std::path::PathBuf> = barge_util::mountinfo::read_self()
        .unwrap()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(b.path()))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
    for cg in cgroups.iter().rev() {
        let _ = std::fs::remove_dir(cg);
    }
    std::fs::remove_dir_all(b.runroot()).unwrap();
}

#[test]
fn offline_reboot_restores_cached_pods_without_a_hub() {
    let b = env();
    let hub = FakeHub::start();
    let mut agent = join_and_run(&b, &hub);
    sync(
        &hub,
        b.path(),
        5,
        vec![put(config_map(4, "hello")), put(pod(5))],
    );
    web_status(&hub, b.path(), |p| p.status.phase == PodPhase::Running);
    let before = exec(&b, "echo $GREETING; cat /proc/1/stat | cut -d' ' -f22");
    let pid1 = pid(&b);

    // SIGTERM stops the agent, not the pods.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = agent.0.wait().unwrap();
    assert!(
        st.success(),
        "agent exit on SIGTERM: {st:?}: {}",
        agent_log(b.path())
    );
    assert_eq!(pid(&b), pid1, "SIGTERM touched the pod");
    assert_eq!(exec(&b, "echo $GREETING"), "hello");
    let mut agent = Agent::start(b.path());
    assert!(
        hub.wait(Duration::from_secs(20), |m| matches!(
            m,
            EdgeMsg::Hello { revision: 5, .. }
        ))
        .is_some(),
        "no Hello after the restart: {}",
        agent_log(b.path())
    );
    // A restarted agent finds its pod by its labels and leaves it alone.
    web_status(&hub, b.path(), |p| p.status.phase == PodPhase::Running);
    assert_eq!(pid(&b), pid1, "the restarted agent replaced the pod");

    // The hub goes away for good, then the power is cut.
    drop(hub);
    power_cut(&b, &mut agent);
    assert!(
        b.run(&["exec", "web-c", "true"]).status.code() != Some(0),
        "the container survived the power cut"
    );

    // Boot: the agent alone, no hub reachable.
    let _agent = Agent::start(b.path());
    assert!(
        wait_until(Duration::from_secs(60), || {
            b.run(&["exec", "web-c", "sh", "-c", "echo $GREETING"])
                .stdout
                .starts_with(b"hello")
        }),
        "web did not come back: {}",
        agent_log(b.path())
    );
    let pid2 = pid(&b);
    assert_ne!(pid1, pid2);
    assert!(barge_testutil::engine::alive(pid2 as i32));
    let after = exec(&b, "echo $GREETING; cat /proc/1/stat | cut -d' ' -f22");
    assert_ne!(before, after, "same process as before the reboot?");
    let log = agent_log(b.path());
    assert!(
        log.contains("starting pod web") || log.contains("making pod web"),
        "{log}"
    );
    assert!(log.contains("no hub reachable"), "{log}");
    // The restore's duration is logged (the bench reads it; no timing goal in a test).
    assert!(log.contains("cached pods restored in "), "{log}");
    eprintln!(
        "{}",
        log.lines()
            .rfind(|l| l.contains("cached pods restored"))
            .unwrap_or("")
    );
}
