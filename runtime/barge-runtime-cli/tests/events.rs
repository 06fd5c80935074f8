//! `events` (statistics and OOM notifications) and `ps` through the `barge-runtime` command line
//! (run as root), checked against what the host shows in /proc and what the container did.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use barge_testutil::{children, ok, stderr, stdout, Bundle, Runtime};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_barge-runtime");

/// How long a container may take to reach the state a test waits for.
const SETTLE: Duration = Duration::from_secs(20);

fn rt() -> Runtime {
    Runtime::new(BIN)
}

/// A container id unique to this test process (cgroups are named after it).
fn cid(name: &str) -> String {
    format!("ev-{name}-{}", std::process::id())
}

fn bundle_arg(b: &Bundle) -> String {
    b.path().to_string_lossy().into_owned()
}

/// create + start; returns the init pid from `state`.
#[track_caller]
fn start(rt: &Runtime, b: &Bundle, id: &str) -> i32 {
    ok(&rt.exec(&["create", "--bundle", &bundle_arg(b), id]));
    ok(&rt.exec(&["start", id]));
    let st: Value = serde_json::from_str(&ok(&rt.exec(&["state", id]))).expect("state JSON");
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().expect("pid in state") as i32;
    assert!(pid > 0, "{st}");
    pid
}

#[track_caller]
fn assert_fails_naming(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "expected failure, got success\nstdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    for n in needles {
        assert!(err.contains(n), "stderr does not mention {n:?}:\n{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

fn proc_stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the comm, starting at field 3 (state).
    Some(
        s[s.rfind(')')? + 2..]
            .split(' ')
            .map(str::to_string)
            .collect(),
    )
}

fn alive(pid: i32) -> bool {
    barge_util::process::alive(pid)
}

/// `pid` and all its descendants.
fn tree(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let kids = children(all[i]);
        all.extend(kids);
        i += 1;
    }
    all.sort_unstable();
    all
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn cmdline(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
        .trim()
        .to_string()
}

/// Wait until init has `n` direct children named `name`; returns them.
#[track_caller]
fn wait_children(pid: i32, name: &str, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let kids: Vec<i32> = children(pid)
            .into_iter()
            .filter(|&k| comm(k) == name)
            .collect();
        if kids.len() == n {
            return kids;
        }
        assert!(
            Instant::now() < deadline,
            "init {pid} never got {n} {name:?} children (has {:?})",
            children(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A /proc/PID/status field in kB, as bytes.
fn status_bytes(pid: i32, field: &str) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// CPU time of `pid` plus its reaped children, from /proc/PID/stat (ns, rounded down).
fn cpu_ns_with_children(pid: i32) -> u64 {
    let f = proc_stat_fields(pid).unwrap();
    // utime, stime, cutime, cstime are fields 14-17: indexes 11-14 from field 3.
    let ticks: u64 = f[11..15].iter().map(|v| v.parse::<u64>().unwrap()).sum();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap() as u64;
    ticks * 1_000_000_000 / hz
}

// ---------------------------------------------------------------------------------------------
// A runtime command running in the background (events streaming).
// ---------------------------------------------------------------------------------------------

struct Background {
    child: Child,
    out: File,
    err: File,
}

impl Background {
    fn spawn(rt: &Runtime, args: &[&str]) -> Self {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let mut cmd: Command = rt.cmd(args);
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap());
        let child = cmd.spawn().expect("spawn runtime");
        Self { child, out, err }
    }

    fn read(f: &mut File) -> String {
        let mut v = String::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut v).unwrap();
        v
    }

    fn stdout(&mut self) -> String {
        Self::read(&mut self.out)
    }

    /// Wait (bounded) for exit.
    fn wait(&mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "events did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
                    self.stdout(),
                    Self::read(&mut self.err)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        (status, self.stdout(), Self::read(&mut self.err))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn with_memory_limit(b: &mut Bundle, bytes: u64) {
    b.config["linux"]["resources"]["memory"] = json!({ "limit": bytes });
    b.write();
}

fn bind_rw(b: &mut Bundle, src: &Path, dest: &str) {
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": dest, "type": "bind",
        "source": src.to_string_lossy(), "options": ["rbind", "rw"]
    }));
    b.write();
}

// ---------------------------------------------------------------------------------------------
// events --stats
// ---------------------------------------------------------------------------------------------

#[test]
fn stats_report_memory_pids_and_cpu_of_the_container() {
    let r = rt();
    let id = cid("stats");
    // Hold 20 MB in the shell, burn CPU in a child for a second, then keep two sleepers.
    let b = Bundle::sh(
        "x=$(head -c 20000000 /dev/zero | tr '\\0' a); \
         timeout 1 sh -c 'while :; do :; done'; \
         sleep 100 & sleep 100 & wait; echo ${#x}",
    );
    let pid = start(&r, &b, &id);
    wait_children(pid, "sleep", 2);
    let procs = tree(pid);
    assert_eq!(procs.len(), 3, "processes {procs:?}");
    let rss_anon = status_bytes(pid, "RssAnon");
    assert!(
        rss_anon >= 20_000_000,
        "the shell holds only {rss_anon} bytes"
    );
    let cpu_seen = cpu_ns_with_children(pid);
    assert!(cpu_seen > 0, "the container burned no CPU time per /proc");

    let out = ok(&r.exec(&["events", "--stats", &id]));
    let lines = parse_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    let ev = &lines[0];
    assert_eq!(ev["type"], "stats", "{ev}");
    assert_eq!(ev["id"], id.as_str(), "{ev}");
    let data = &ev["data"];

    let usage = data["memory"]["usage"]["usage"]
        .as_u64()
        .expect("memory usage");
    assert!(usage >= 20_000_000, "memory usage {usage} < 20 MB: {data}");
    assert!(
        usage >= rss_anon,
        "memory usage {usage} < init's RssAnon {rss_anon}"
    );
    let limit = data["memory"]["usage"]["limit"].as_u64().expect("limit");
    assert!(limit >= usage, "{data}");
    assert!(
        data["memory"]["raw"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "no memory.stat in {data}"
    );

    assert_eq!(
        data["pids"]["current"].as_u64(),
        Some(procs.len() as u64),
        "pids.current vs /proc {procs:?}: {data}"
    );

    let total = data["cpu"]["usage"]["total"].as_u64().expect("cpu total");
    assert!(total > 0, "{data}");
    assert!(
        total >= cpu_seen,
        "cpu total {total} ns < {cpu_seen} ns seen in /proc/{pid}/stat"
    );
    let user = data["cpu"]["usage"]["user"].as_u64().expect("cpu user");
    let kernel = data["cpu"]["usage"]["kernel"].as_u64().expect("cpu kernel");
    assert!(user + kernel > 0, "{data}");
    let percpu: u64 = data["cpu"]["usage"]["percpu"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).sum())
        .unwrap_or(total);
    // The per-cpu counters are read a moment before or after the total.
    assert!(
        percpu.abs_diff(total) < total / 2 + 1,
        "percpu {percpu} vs total {total}"
    );

    ok(&r.exec(&["delete", "--force", &id]));
    assert!(!alive(pid));
}

// ---------------------------------------------------------------------------------------------
// OOM
// ---------------------------------------------------------------------------------------------

#[test]
fn streaming_events_report_an_oom_and_end_with_the_container() {
    let r = rt();
    let id = cid("oom");
    let shared = tempfile::tempdir().unwrap();
    // Waits for the trigger so that the OOM comes after `events` is listening.
    let mut b = Bundle::sh(
        "until [ -e /shared/go ]; do sleep 0.02; done; \
         dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$? > /shared/result; sleep 1",
    );
    with_memory_limit(&mut b, 16 << 20);
    bind_rw(&mut b, shared.path(), "/shared");
    let pid = start(&r, &b, &id);

    let mut ev = Background::spawn(&r, &["events", "--interval", "100ms", &id]);
    // The first stats line means the OOM watcher is registered.
    let deadline = Instant::now() + SETTLE;
    while !ev.stdout().contains("\"type\":\"stats\"") {
        assert!(
            Instant::now() < deadline,
            "no stats from events: {}",
            ev.stdout()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    fs::write(shared.path().join("go"), "").unwrap();

    // The stream ends by itself once the container's init exits.
    let (status, out, err) = ev.wait(SETTLE);
    assert!(status.success(), "events failed: {status}\n{err}");
    assert!(!alive(pid), "events ended while init {pid} lives");
    let result = fs::read_to_string(shared.path().join("result")).unwrap_or_default();
    assert_eq!(result.trim(), "dd=137", "dd was not OOM-killed");

    let events = parse_lines(&out);
    let ooms: Vec<&Value> = events.iter().filter(|e| e["type"] == "oom").collect();
    assert!(!ooms.is_empty(), "no oom event in:\n{out}");
    for e in &ooms {
        assert_eq!(**e, json!({"type": "oom", "id": id}), "{out}");
    }
    let stats: Vec<&Value> = events.iter().filter(|e| e["type"] == "stats").collect();
    assert!(
        stats
            .iter()
            .all(|s| s["id"] == id.as_str() && s["data"]["memory"].is_object()),
        "{out}"
    );
    assert_eq!(
        ooms.len() + stats.len(),
        events.len(),
        "unknown events:\n{out}"
    );
    // Stats after the OOM show the limit being hit.
    let last = stats.last().expect("stats lines");
    assert_eq!(
        last["data"]["memory"]["usage"]["limit"],
        16u64 << 20,
        "{last}"
    );
    assert!(
        last["data"]["memory"]["usage"]["failcnt"].as_u64() > Some(0),
        "no failcnt after the OOM: {last}"
    );

    // The container is stopped now: events refuses it, as runc does.
    let again = r.exec(&["events", &id]);
    assert_fails_naming(&again, &[&id, "stopped"]);
    ok(&r.exec(&["delete", &id]));
}

#[test]
fn init_killed_by_the_oom_killer_exits_137() {
    let r = rt();
    let id = cid("oominit");
    let mut b = Bundle::new();
    b.args(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    with_memory_limit(&mut b, 16 << 20);
    let out = r.run(&b, &id);
    assert_eq!(
        out.status.code(),
        Some(137),
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    assert!(r.leftovers().is_empty(), "state left: {:?}", r.leftovers());
}

// ---------------------------------------------------------------------------------------------
// ps
// ---------------------------------------------------------------------------------------------

#[test]
fn ps_lists_exactly_the_container_processes() {
    let r = rt();
    let id = cid("ps");
    let b = Bundle::sh("sleep 100 & sleep 101 & wait");
    let pid = start(&r, &b, &id);
    let sleepers = wait_children(pid, "sleep", 2);
    let mut want = tree(pid);
    assert_eq!(want.len(), 3, "{want:?}");

    let out = ok(&r.exec(&["ps", "--format", "json", &id]));
    let mut got: Vec<i32> = serde_json::from_str(out.trim()).expect("JSON array of pids");
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "ps json vs /proc");

    // Table: the host's `ps -ef` header and one line per container process, nothing else.
    let table = ok(&r.exec(&["ps", &id]));
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    let cols: Vec<&str> = header.split_whitespace().collect();
    let pid_col = cols.iter().position(|c| *c == "PID").expect("PID column");
    assert!(cols.contains(&"CMD"), "{header}");
    let rows: Vec<&str> = lines.collect();
    let mut row_pids: Vec<i32> = rows
        .iter()
        .map(|l| l.split_whitespace().nth(pid_col).unwrap().parse().unwrap())
        .collect();
    row_pids.sort_unstable();
    assert_eq!(row_pids, want, "table:\n{table}");
    for s in &sleepers {
        let row = rows
            .iter()
            .find(|l| l.split_whitespace().nth(pid_col) == Some(s.to_string().as_str()))
            .unwrap_or_else(|| panic!("no row for sleeper {s}:\n{table}"));
        assert!(row.contains(&cmdline(*s)), "{row} vs {}", cmdline(*s));
    }

    // ps options after the id go to the host's ps.
    let custom = ok(&r.exec(&["ps", &id, "-o", "pid,comm"]));
    let mut lines = custom.lines();
    assert_eq!(
        lines
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["PID", "COMMAND"]),
        "{custom}"
    );
    let rows: Vec<(i32, String)> = lines
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 3, "{custom}");
    assert_eq!(
        rows.iter().filter(|(_, c)| c == "sleep").count(),
        2,
        "{custom}"
    );
    assert!(rows.contains(&(pid, "sh".to_string())), "{custom}");

    ok(&r.exec(&["delete", "--force", &id]));
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_containers_and_bad_intervals_are_refused() {
    let r = rt();
    let id = cid("nosuch");
    assert_fails_naming(&r.exec(&["events", &id]), &[&id]);
    assert_fails_naming(&r.exec(&["events", "--stats", &id]), &[&id]);
    assert_fails_naming(&r.exec(&["ps", &id]), &[&id]);
    assert_fails_naming(&r.exec(&["ps", "--format", "json", &id]), &[&id]);
    for bad in ["0s", "5", "fast"] {
        let out = r.exec(&["events", "--interval", bad, &id]);
        assert_fails_naming(&out, &[bad]);
    }
    assert!(r.leftovers().is_empty(), "{:?}", r.leftovers());
}
