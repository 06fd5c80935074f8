//! Containers end to end through the `barge` binary: run, logs, exec, stop, rm, ...
//!
//! Every test checks what really happened: inside the container (/proc/self/status, files),
//! on the host (the container's cgroup files, /proc/PID, bind-mounted directories), never
//! only barge's own exit codes. Each test has its own store (`BargeEnv`), whose drop removes
//! every container it made.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use barge_testutil::engine::{alive, BargeEnv};
use barge_testutil::{exec_bounded, stderr, stdout, CMD_TIMEOUT};
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// The host pid of a running container's init.
fn pid_of(b: &BargeEnv, name: &str) -> i32 {
    let pid: i32 = b.inspect(name, "{{.State.Pid}}").parse().expect("pid");
    assert!(pid > 0, "{name} has no pid");
    pid
}

/// The value of `Key:` in a /proc status text.
fn status_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .to_string()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("not hex: {s:?}"))
}

/// The v1 cgroup directory of `pid` for `controller` (from /proc/PID/cgroup and the
/// hierarchy's mount point).
fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/PID/cgroup");
    let path = cg
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            ctrls.split(',').any(|c| c == controller).then_some(path)
        })
        .unwrap_or_else(|| panic!("no v1 {controller} cgroup for {pid}: {cg}"));
    let mi = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for l in mi.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let pf: Vec<&str> = pre.split(' ').collect();
        let sf: Vec<&str> = post.split(' ').collect();
        if sf.first() == Some(&"cgroup")
            && sf
                .get(2)
                .is_some_and(|o| o.split(',').any(|c| c == controller))
        {
            let (root, mnt) = (pf[3], pf[4]);
            let rel = path
                .strip_prefix(root)
                .unwrap_or(path)
                .trim_start_matches('/');
            return Path::new(mnt).join(rel);
        }
    }
    panic!("no mount of the v1 {controller} hierarchy");
}

fn read_trim(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A directory on the host inside the test's store dir (removed with it).
fn host_dir(b: &BargeEnv, name: &str) -> PathBuf {
    let d = b.path().join(name);
    fs::create_dir_all(&d).expect("mkdir host dir");
    d
}

/// Assert the store has no container at all (none listed, no directory).
#[track_caller]
fn assert_no_containers(b: &BargeEnv) {
    assert_eq!(b.ok(&["ps", "-aq"]), "", "a container was left");
    assert_eq!(
        b.container_dirs(),
        std::collections::BTreeSet::<String>::new(),
        "a container dir was left"
    );
}

/// Parse an RFC 3339 timestamp into nanoseconds since the epoch.
fn ts_nanos(s: &str) -> i128 {
    let (secs, nanos) =
        barge_engine::logs::parse_time("timestamp", s).unwrap_or_else(|e| panic!("{e}"));
    secs as i128 * 1_000_000_000 + nanos as i128
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// Whether `s` is docker's RFC3339Nano with a fixed 9-digit fraction, UTC.
fn is_rfc3339_nano(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 30
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            29 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

// ---- 1. run -d, ps, inspect ----

#[test]
fn ps_and_inspect_show_containers() {
    let b = env();
    let id = b.run_d(&[
        "--name",
        "web1",
        "--label",
        "tier=front",
        "--label",
        "x=1",
        "bb",
        "sh",
        "-c",
        "echo marker-7q > /marker; exec sleep 60",
    ]);
    let out = b.run(&["run", "--name", "done1", "bb", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let done_id = b.inspect("done1", "{{.Id}}");

    // inspect: state, name, labels, and a pid that is the container's init on the host.
    assert_eq!(b.inspect("web1", "{{.State.Status}}"), "running");
    assert_eq!(b.inspect("web1", "{{.State.Running}}"), "true");
    assert_eq!(b.inspect("web1", "{{.Name}}"), "/web1");
    assert_eq!(b.inspect("web1", "{{.Id}}"), id);
    let labels: Value =
        serde_json::from_str(&b.inspect("web1", "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels, serde_json::json!({"tier": "front", "x": "1"}));
    let pid = pid_of(&b, "web1");
    assert!(alive(pid));
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    assert!(
        b.wait_for(Duration::from_secs(5), || root.join("marker").exists()),
        "the container's /marker is not under /proc/{pid}/root"
    );
    assert_eq!(read_trim(&root.join("marker")), "marker-7q");
    assert!(root.join("bin/busybox").exists());
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, b"sleep\x0060\x00",
        "pid {pid} is not the container's init"
    );
    assert_eq!(b.inspect("done1", "{{.State.Status}}"), "exited");
    assert_eq!(b.inspect("done1", "{{.State.ExitCode}}"), "3");
    assert_eq!(b.inspect("done1", "{{.State.Pid}}"), "0");

    // ps: only the running one, with its name and "Up".
    let ps = b.ok(&["ps"]);
    let rows: Vec<&str> = ps.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{ps}");
    assert!(rows[0].starts_with(&id[..12]), "{ps}");
    assert!(rows[0].contains(" Up "), "{ps}");
    assert!(rows[0].trim_end().ends_with("web1"), "{ps}");
    assert_eq!(b.ok(&["ps", "-q"]), format!("{}\n", &id[..12]));
    let all_q = b.ok(&["ps", "-aq", "--no-trunc"]);
    let all: HashSet<&str> = all_q.lines().collect();
    assert_eq!(all, HashSet::from([id.as_str(), done_id.as_str()]));
    let ps_a = b.ok(&["ps", "-a"]);
    let done_row = ps_a
        .lines()
        .find(|l| l.contains("done1"))
        .expect("done1 row");
    assert!(done_row.contains("Exited (3)"), "{ps_a}");

    // ps -a --format json: one object per line.
    let json = b.ok(&["ps", "-a", "--format", "json"]);
    let objs: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(objs.len(), 2, "{json}");
    let web = objs.iter().find(|o| o["Names"] == "web1").expect("web1");
    assert_eq!(web["ID"], &id[..12]);
    assert_eq!(web["Image"], "bb");
    assert_eq!(web["State"], "running");
    assert!(web["Status"].as_str().unwrap().starts_with("Up "), "{web}");
    assert_eq!(web["Labels"], "tier=front,x=1");
    assert_eq!(
        web["Command"].as_str().unwrap().trim_matches('"'),
        "sh -c echo marker-7q > /marker; exec sleep 60"
    );
    let done = objs.iter().find(|o| o["Names"] == "done1").expect("done1");
    assert_eq!(done["State"], "exited");
    assert!(done["Status"].as_str().unwrap().starts_with("Exited (3)"));
    let created = ts_nanos(done["CreatedAt"].as_str().unwrap());
    assert!(
        (now_nanos() - created).abs() < 60_000_000_000,
        "CreatedAt {}",
        done["CreatedAt"]
    );

    // Filters.
    let q = |f: &[&str]| {
        let mut a = vec!["ps", "-q"];
        for x in f {
            a.extend(["--filter", x]);
        }
        b.ok(&a)
    };
    assert_eq!(q(&["status=exited"]), format!("{}\n", &done_id[..12]));
    assert_eq!(q(&["status=running"]), format!("{}\n", &id[..12]));
    assert_eq!(q(&["status=paused"]), "");
    assert_eq!(q(&["name=web"]), format!("{}\n", &id[..12]));
    assert_eq!(q(&["label=tier=front"]), format!("{}\n", &id[..12]));
    assert_eq!(q(&["label=tier"]), format!("{}\n", &id[..12]));
    assert_eq!(q(&["label=tier=back"]), "");
    assert_eq!(q(&["label=x=1", "name=web1"]), format!("{}\n", &id[..12]));
    assert_eq!(q(&["exited=3"]), format!("{}\n", &done_id[..12]));
}

// ---- 2. process settings ----

#[test]
fn env_workdir_user_and_hostname_reach_the_process() {
    let b = env();
    let envfile = b.path().join("env.list");
    fs::write(&envfile, "X=from file\n# a comment\n\nPASSED\n").unwrap();
    let mut cmd = b.cmd(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-e",
        "B=two words",
        "-e",
        "X=overridden",
        "--env-file",
        envfile.to_str().unwrap(),
        "-w",
        "/tmp/newdir",
        "-u",
        "user",
        "--hostname",
        "myhost",
        "bb",
        "sh",
        "-c",
        "echo \"$A|$B|$X|$PASSED\"; pwd; id -u; id -g; id -G; hostname; cat /etc/hostname; \
         grep -c myhost /etc/hosts; grep -E '^(Uid|Gid):' /proc/self/status",
    ]);
    cmd.env("PASSED", "from our env");
    let out = exec_bounded(cmd, CMD_TIMEOUT);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    // -e comes after --env-file: X from -e wins (docker's order).
    assert_eq!(lines[0], "1|two words|overridden|from our env", "{text}");
    assert_eq!(lines[1], "/tmp/newdir", "-w dir created and used");
    assert_eq!(lines[2..5], ["1000", "1000", "1000 2000"], "{text}");
    assert_eq!(lines[5..7], ["myhost", "myhost"], "{text}");
    // One line per address on the default network (IPv4 and IPv6).
    assert_eq!(lines[7], "2", "/etc/hosts names the host name: {text}");
    assert!(
        lines[8].starts_with("Uid:\t1000\t1000\t1000\t1000"),
        "{text}"
    );

    // Numeric user and group need no passwd entry.
    let out = b.ok(&[
        "run",
        "--rm",
        "-u",
        "4321:77",
        "bb",
        "sh",
        "-c",
        "grep -E '^(Uid|Gid):' /proc/self/status",
    ]);
    assert!(out.contains("Uid:\t4321\t4321\t4321\t4321"), "{out}");
    assert!(out.contains("Gid:\t77\t77\t77\t77"), "{out}");
    // A name missing from the image's passwd is refused.
    let bad = b.run(&["run", "--rm", "-u", "nosuchuser", "bb", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(stderr(&bad).contains("nosuchuser"), "{}", stderr(&bad));

    // The default hostname is the short id; the default user root, cwd /.
    let id = b.run_d(&["bb", "sh", "-c", "hostname; id -u; pwd"]);
    assert_eq!(b.ok(&["wait", &id]).trim(), "0");
    assert_eq!(b.ok(&["logs", &id]), format!("{}\n0\n/\n", &id[..12]));
}

#[test]
fn entrypoint_replaces_the_image_command() {
    let b = env();
    assert_eq!(
        b.ok(&["run", "--rm", "--entrypoint", "echo", "bb", "hi", "there"]),
        "hi there\n"
    );
    // docker: --entrypoint resets the image's CMD (`sh` here): echo gets no arguments.
    assert_eq!(b.ok(&["run", "--rm", "--entrypoint", "echo", "bb"]), "\n");
    // Without a command the image's CMD (sh) runs: it reads the script from stdin.
    let mut c = b.cmd(&["run", "--rm", "-i", "bb"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from-stdin $((6*7))\n")
        .unwrap();
    let out = wait_child(child, Duration::from_secs(20));
    assert_eq!(stdout(&out), "from-stdin 42\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

/// Wait for a spawned child with piped stdout/stderr, killing it after `timeout`.
fn wait_child(mut child: Child, timeout: Duration) -> Output {
    let end = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("child did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn read_only_rootfs_leaves_volumes_writable() {
    let b = env();
    let data = host_dir(&b, "rodata");
    let vol = format!("{}:/data", data.display());
    let script = "touch /x 2>/dev/null; echo root=$?; touch /tmp/y 2>/dev/null; echo tmp=$?; \
                  touch /data/z; echo data=$?; grep ' / ' /proc/mounts | grep -c '[ ,]ro[ ,]'";
    let out = b.run(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        &vol,
        "bb",
        "sh",
        "-c",
        script,
    ]);
    // docker: the whole root (with /tmp) is read-only; volumes are not.
    assert_eq!(
        stdout(&out),
        "root=1\ntmp=1\ndata=0\n1\n",
        "{}",
        stderr(&out)
    );
    assert!(
        data.join("z").exists(),
        "the write to the volume is not on the host"
    );
    let out = b.run(&["run", "--rm", "bb", "sh", "-c", "touch /x; echo root=$?"]);
    assert_eq!(stdout(&out), "root=0\n", "{}", stderr(&out));
}

// ---- capabilities, seccomp, no-new-privileges ----

/// docker's default capability set as /proc/PID/status shows it.
const DOCKER_DEFAULT_CAPEFF: u64 = 0xa80425fb;
const CAP_CHOWN: u64 = 1 << 0;
const CAP_NET_ADMIN: u64 = 1 << 12;
const CAP_SYS_ADMIN: u64 = 1 << 21;

fn caps_in(b: &BargeEnv, flags: &[&str]) -> (u64, u64) {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(flags);
    a.extend(["bb", "cat", "/proc/self/status"]);
    let st = b.ok(&a);
    (
        hex(&status_field(&st, "CapEff")),
        hex(&status_field(&st, "CapBnd")),
    )
}

#[test]
fn capabilities_follow_docker() {
    let b = env();
    assert_eq!(
        caps_in(&b, &[]),
        (DOCKER_DEFAULT_CAPEFF, DOCKER_DEFAULT_CAPEFF)
    );
    let (eff, bnd) = caps_in(&b, &["--cap-add", "SYS_ADMIN", "--cap-drop", "chown"]);
    let want = (DOCKER_DEFAULT_CAPEFF | CAP_SYS_ADMIN) & !CAP_CHOWN;
    assert_eq!((eff, bnd), (want, want), "{eff:x}");
    let (eff, _) = caps_in(&b, &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]);
    assert_eq!(eff, CAP_NET_ADMIN);
    assert_eq!(caps_in(&b, &["--cap-drop", "ALL"]).0, 0);
    // --privileged: every capability we have (docker: the bounding set of the daemon).
    let ours = hex(&status_field(
        &fs::read_to_string("/proc/self/status").unwrap(),
        "CapBnd",
    ));
    assert_eq!(caps_in(&b, &["--privileged"]), (ours, ours));
    assert_eq!(caps_in(&b, &["--cap-add", "ALL"]).0, ours);
    let bad = b.run(&["run", "--rm", "--cap-add", "NOT_A_CAP", "bb", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(stderr(&bad).contains("NOT_A_CAP"), "{}", stderr(&bad));
}

#[test]
fn seccomp_and_no_new_privileges() {
    let b = env();
    let st = |flags: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(flags);
        a.extend(["bb", "cat", "/proc/self/status"]);
        let s = b.ok(&a);
        (status_field(&s, "Seccomp"), status_field(&s, "NoNewPrivs"))
    };
    assert_eq!(st(&[]), ("2".into(), "0".into()), "default seccomp profile");
    assert_eq!(
        st(&["--security-opt", "seccomp=unconfined"]),
        ("0".into(), "0".into())
    );
    assert_eq!(
        st(&["--security-opt", "no-new-privileges"]),
        ("2".into(), "1".into())
    );
    assert_eq!(st(&["--privileged"]).0, "0", "--privileged is unconfined");
    // The default profile really filters: a syscall it denies fails with EPERM.
    // (unshare(CLONE_NEWUSER) is refused without CAP_SYS_ADMIN by docker's profile.)
    let out = b.run(&["run", "--rm", "bb", "unshare", "-U", "true"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "unshare -U succeeded under seccomp"
    );
    let out = b.run(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "bb",
        "unshare",
        "-U",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// ---- resources ----

#[test]
fn resource_limits_land_in_the_cgroup() {
    let b = env();
    let id = b.run_d(&[
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "bb",
        "sleep",
        "60",
    ]);
    let pid = pid_of(&b, &id);
    let mem = cgroup_dir(pid, "memory");
    let pids = cgroup_dir(pid, "pids");
    let cpu = cgroup_dir(pid, "cpu");
    for d in [&mem, &pids, &cpu] {
        assert!(
            d.to_string_lossy().contains(&id),
            "cgroup {} is not the container's",
            d.display()
        );
        let procs = read_trim(&d.join("cgroup.procs"));
        assert!(procs.lines().any(|p| p == pid.to_string()), "{procs}");
    }
    assert_eq!(read_trim(&mem.join("memory.limit_in_bytes")), "67108864");
    // docker: no --memory-swap means as much swap as memory (where swap is accounted).
    let memsw = mem.join("memory.memsw.limit_in_bytes");
    if memsw.exists() {
        assert_eq!(read_trim(&memsw), "134217728");
    }
    assert_eq!(read_trim(&pids.join("pids.max")), "20");
    assert_eq!(read_trim(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read_trim(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(b.inspect(&id, "{{.HostConfig.Memory}}"), "67108864");
    assert_eq!(b.inspect(&id, "{{.HostConfig.NanoCpus}}"), "500000000");
    // The pids limit is enforced: 30 background processes can't all start.
    let out = b.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in $(seq 30); do sleep 3 & done",
    ]);
    assert!(stderr(&out).contains("can't fork"), "{}", stderr(&out));
    let current: u32 = read_trim(&pids.join("pids.current")).parse().unwrap();
    assert!(current <= 20 && current > 10, "pids.current {current}");
    let events = read_trim(&pids.join("pids.events"));
    assert_ne!(events, "max 0", "the limit was never hit");
    // Without flags: no limits.
    let free = b.run_d(&["bb", "sleep", "60"]);
    let p2 = pid_of(&b, &free);
    assert_eq!(read_trim(&cgroup_dir(p2, "pids").join("pids.max")), "max");
    assert_eq!(
        read_trim(&cgroup_dir(p2, "cpu").join("cpu.cfs_quota_us")),
        "-1"
    );
}

#[test]
fn init_runs_as_pid_one_and_forwards_stop() {
    let b = env();
    let out = b.ok(&[
        "run",
        "--rm",
        "--init",
        "bb",
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("/sbin/docker-init\0--\0sh\0"),
        "pid 1: {:?}",
        lines[0]
    );
    assert_ne!(lines[1], "1", "the command is not pid 1 under --init");
    // tini passes SIGTERM on: a plain `sleep` stops at once, killed by SIGTERM (143).
    let id = b.run_d(&["--init", "bb", "sleep", "60"]);
    let pid = pid_of(&b, &id);
    let t = Instant::now();
    assert_eq!(b.ok(&["stop", &id]).trim(), id);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(b.inspect(&id, "{{.State.ExitCode}}"), "143");
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "exited");
    assert!(!alive(pid), "the container's init {pid} still runs");
}

#[test]
fn network_none_has_only_lo_host_shares_the_hosts() {
    let b = env();
    let ifaces = |text: &str| -> HashSet<String> {
        text.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|s| s.trim().to_string())
            .collect()
    };
    let none = ifaces(&b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "cat",
        "/proc/net/dev",
    ]));
    assert_eq!(none, HashSet::from(["lo".to_string()]));
    let bridge = ifaces(&b.ok(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "bb",
        "cat",
        "/proc/net/dev",
    ]));
    assert_eq!(
        bridge,
        HashSet::from(["lo".to_string(), "eth0".to_string()])
    );
    let host = ifaces(&fs::read_to_string("/proc/net/dev").unwrap());
    let inside = ifaces(&b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "bb",
        "cat",
        "/proc/net/dev",
    ]));
    // Other tests' containers add and remove veths meanwhile: compare the rest.
    let stable = |s: HashSet<String>| -> HashSet<String> {
        s.into_iter().filter(|i| !i.starts_with("veth")).collect()
    };
    assert_eq!(stable(inside), stable(host));
    // The network namespace is the host's one.
    let id = b.run_d(&["--network", "host", "bb", "sleep", "60"]);
    let pid = pid_of(&b, &id);
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/ns/net")).unwrap(),
        fs::read_link("/proc/self/ns/net").unwrap()
    );
    let id2 = b.run_d(&["bb", "sleep", "60"]);
    let pid2 = pid_of(&b, &id2);
    assert_ne!(
        fs::read_link(format!("/proc/{pid2}/ns/net")).unwrap(),
        fs::read_link("/proc/self/ns/net").unwrap()
    );
    let bad = b.run(&["run", "--rm", "--network", "nosuchnet", "bb", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(stderr(&bad).contains("No such network: nosuchnet"));
}

// ---- 3. volumes ----

#[test]
fn bind_mounts_rw_and_ro() {
    let b = env();
    let d = host_dir(&b, "hostdir");
    fs::write(d.join("from-host"), "hello from host\n").unwrap();
    let v = format!("{}:/data", d.display());
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        &v,
        "bb",
        "sh",
        "-c",
        "cat /data/from-host; echo written > /data/from-ctr",
    ]);
    assert_eq!(out, "hello from host\n");
    assert_eq!(fs::read_to_string(d.join("from-ctr")).unwrap(), "written\n");
    let ro = format!("{}:/data:ro", d.display());
    let out = b.run(&[
        "run",
        "--rm",
        "-v",
        &ro,
        "bb",
        "sh",
        "-c",
        "cat /data/from-host && echo nope > /data/ro-write",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "hello from host\n");
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!d.join("ro-write").exists());
    // A missing source is refused and leaves nothing behind.
    let missing = format!("{}:/data", b.path().join("nope").display());
    let out = b.run(&["run", "--rm", "-v", &missing, "bb", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert_no_containers(&b);
}

#[test]
fn named_volume_persists_and_is_protected_while_used() {
    let b = env();
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "vol1:/data",
        "bb",
        "sh",
        "-c",
        "echo kept > /data/p",
    ]);
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "vol1:/data", "bb", "cat", "/data/p"]),
        "kept\n"
    );
    let ls = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(ls, "vol1\n");
    let table = b.ok(&["volume", "ls"]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().eq(["local", "vol1"])),
        "{table}"
    );
    let insp: Value = serde_json::from_str(&b.ok(&["volume", "inspect", "vol1"])).unwrap();
    assert_eq!(insp[0]["Name"], "vol1");
    assert_eq!(insp[0]["Driver"], "local");
    let mp = PathBuf::from(insp[0]["Mountpoint"].as_str().unwrap());
    assert_eq!(fs::read_to_string(mp.join("p")).unwrap(), "kept\n");

    // In use by a container: refused, clearly; the data stays.
    let user = b.run_d(&["--name", "voluser", "-v", "vol1:/data", "bb", "sleep", "60"]);
    let out = b.run(&["volume", "rm", "vol1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("vol1") && err.contains("in use"), "{err}");
    assert!(err.contains(&user[..12]), "the error names the user: {err}");
    assert!(mp.join("p").exists());
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "vol1\n");
    b.ok(&["rm", "-f", "voluser"]);
    assert_eq!(b.ok(&["volume", "rm", "vol1"]), "vol1\n");
    assert!(!mp.exists(), "volume data left at {}", mp.display());
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    let out = b.run(&["volume", "inspect", "vol1"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("No such volume"), "{}", stderr(&out));
}

#[test]
fn rm_v_removes_anonymous_volumes_only() {
    let b = env();
    b.ok(&[
        "run",
        "--name",
        "anon1",
        "-v",
        "/anon",
        "-v",
        "named1:/named",
        "bb",
        "sh",
        "-c",
        "echo a > /anon/f; echo n > /named/f",
    ]);
    let vols = b.ok(&["volume", "ls", "-q"]);
    let anon: Vec<&str> = vols.lines().filter(|v| *v != "named1").collect();
    assert_eq!(anon.len(), 1, "{vols}");
    assert_eq!(anon[0].len(), 64, "anonymous volume name {:?}", anon[0]);
    let insp: Value = serde_json::from_str(&b.ok(&["volume", "inspect", anon[0]])).unwrap();
    let anon_dir = PathBuf::from(insp[0]["Mountpoint"].as_str().unwrap());
    assert_eq!(fs::read_to_string(anon_dir.join("f")).unwrap(), "a\n");
    // inspect lists both mounts.
    let mounts: Value = serde_json::from_str(&b.inspect("anon1", "{{json .Mounts}}")).unwrap();
    assert_eq!(mounts.as_array().unwrap().len(), 2, "{mounts}");

    b.ok(&["rm", "-v", "anon1"]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "named1\n");
    assert!(!anon_dir.exists(), "anonymous volume data left");
    // Plain rm keeps anonymous volumes (docker).
    b.ok(&["run", "--name", "anon2", "-v", "/anon", "bb", "true"]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    b.ok(&["rm", "anon2"]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]).lines().count(), 2);
}

// ---- 4. logs ----

#[test]
fn logs_tail_timestamps_and_since() {
    let b = env();
    let before = now_nanos();
    let id = b.run_d(&[
        "bb",
        "sh",
        "-c",
        "echo early1; echo early2; echo oops >&2; sleep 2; echo late",
    ]);
    assert_eq!(b.ok(&["wait", &id]).trim(), "0");
    let after = now_nanos();
    let out = b.run(&["logs", &id]);
    assert_eq!(stdout(&out), "early1\nearly2\nlate\n");
    assert_eq!(stderr(&out), "oops\n", "stderr stays stderr");
    // --tail counts lines of both streams together.
    let out = b.run(&["logs", "--tail", "2", &id]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("late\n", "oops\n")
    );
    assert_eq!(b.ok(&["logs", "--tail", "0", &id]), "");
    let out = b.run(&["logs", "-n", "1", &id]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("late\n", "")
    );

    // -t: RFC3339Nano timestamps (9 digits, UTC) between the start and the end.
    let ts = b.ok(&["logs", "-t", &id]);
    let mut stamps = Vec::new();
    for l in ts.lines() {
        let (t, msg) = l.split_once(' ').expect("timestamp and message");
        assert!(is_rfc3339_nano(t), "timestamp {t:?}");
        let n = ts_nanos(t);
        assert!(
            n >= before - 1_000_000_000 && n <= after,
            "{t} outside the run"
        );
        stamps.push((n, msg.to_string(), t.to_string()));
    }
    assert_eq!(
        stamps.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        ["early1", "early2", "late"]
    );
    let gap = stamps[2].0 - stamps[1].0;
    assert!(gap >= 1_900_000_000, "late came {gap} ns after early2");

    // --since: an absolute time (RFC 3339 and unix seconds), and a relative one.
    let late_ts = &stamps[2].2;
    assert_eq!(b.ok(&["logs", "--since", late_ts, &id]), "late\n");
    let mid = stamps[1].0 + gap / 2;
    let mid_unix = format!("{}.{:09}", mid / 1_000_000_000, mid % 1_000_000_000);
    assert_eq!(b.ok(&["logs", "--since", &mid_unix, &id]), "late\n");
    assert_eq!(
        b.ok(&["logs", "--since", "1h", &id]),
        "early1\nearly2\nlate\n"
    );
    let out = b.run(&["logs", "--since", "yesterday", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--since"), "{}", stderr(&out));
}

#[test]
fn logs_follow_ends_with_the_container() {
    let b = env();
    let id = b.run_d(&[
        "bb",
        "sh",
        "-c",
        "echo a; sleep 1; echo b; sleep 1; echo c; exit 2",
    ]);
    let t = Instant::now();
    let out = b.run(&["logs", "-f", &id]);
    let took = t.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    // Lines written after `logs -f` started are there: it followed, then ended by itself.
    assert_eq!(stdout(&out), "a\nb\nc\n");
    assert!(
        took >= Duration::from_millis(1000),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(10), "returned after {took:?}");
    assert_eq!(b.inspect(&id, "{{.State.ExitCode}}"), "2");
    // On a finished container -f returns at once.
    let t = Instant::now();
    assert_eq!(b.ok(&["logs", "-f", &id]), "a\nb\nc\n");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn log_rotation_keeps_max_file_files() {
    let b = env();
    let id = b.run_d(&[
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "bb",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo \"line $i ..................\"; i=$((i+1)); done",
    ]);
    assert_eq!(b.ok(&["wait", &id]).trim(), "0");
    let dir = b.container_dir(&id);
    let logs: Vec<(String, u64)> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("container.log"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(logs.len(), 2, "log files: {logs:?}");
    for (name, size) in &logs {
        assert!(*size <= 2048, "{name} is {size} bytes");
    }
    let out = b.ok(&["logs", &id]);
    let nums: Vec<u32> = out
        .lines()
        .map(|l| {
            l.strip_prefix("line ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("bad line {l:?}"))
        })
        .collect();
    assert_eq!(*nums.last().unwrap(), 299, "the newest line is kept");
    assert!(
        nums[0] > 0 && nums.len() < 300,
        "old lines were not dropped"
    );
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "the kept lines are not contiguous: {nums:?}"
    );
}

// ---- 5. lifecycle ----

#[test]
fn stop_term_then_kill() {
    let b = env();
    let k = host_dir(&b, "stopk");
    let v = format!("{}:/k", k.display());
    // A process that traps SIGTERM: it runs its handler, exits 0.
    let id = b.run_d(&[
        "-v",
        &v,
        "bb",
        "sh",
        "-c",
        "trap 'echo term > /k/got; exit 0' TERM; touch /k/ready; while :; do sleep 0.1; done",
    ]);
    assert!(b.wait_for(Duration::from_secs(5), || k.join("ready").exists()));
    let t = Instant::now();
    b.ok(&["stop", &id]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(fs::read_to_string(k.join("got")).unwrap(), "term\n");
    assert_eq!(b.inspect(&id, "{{.State.ExitCode}}"), "0");
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "exited");

    // A process that ignores SIGTERM (sh as pid 1): killed after -t 1 second.
    let id = b.run_d(&["bb", "sleep", "60"]);
    let pid = pid_of(&b, &id);
    let t = Instant::now();
    b.ok(&["stop", "-t", "1", &id]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "stop -t 1 took {took:?}"
    );
    assert_eq!(b.inspect(&id, "{{.State.ExitCode}}"), "137");
    assert!(!alive(pid));
    assert!(b.inspect(&id, "{{.State.FinishedAt}}").starts_with("20"));
    // Stopping a stopped container is fine.
    b.ok(&["stop", &id]);

    // --stop-signal and --stop-timeout are the defaults of `stop`.
    let id = b.run_d(&[
        "--stop-signal",
        "USR1",
        "-v",
        &v,
        "bb",
        "sh",
        "-c",
        "trap 'exit 9' USR1; touch /k/ready2; while :; do sleep 0.1; done",
    ]);
    assert!(b.wait_for(Duration::from_secs(5), || k.join("ready2").exists()));
    b.ok(&["stop", &id]);
    assert_eq!(b.inspect(&id, "{{.State.ExitCode}}"), "9");
    let id = b.run_d(&["--stop-timeout", "1", "bb", "sleep", "60"]);
    let t = Instant::now();
    b.ok(&["stop", &id]);
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(b.inspect(&id, "{{.State.ExitCode}}"), "137");
}

#[test]
fn kill_delivers_signals() {
    let b = env();
    let k = host_dir(&b, "killk");
    let v = format!("{}:/k", k.display());
    let id = b.run_d(&[
        "-v",
        &v,
        "bb",
        "sh",
        "-c",
        "trap 'echo usr1 >> /k/sig' USR1; touch /k/ready; while :; do sleep 0.1; done",
    ]);
    assert!(b.wait_for(Duration::from_secs(5), || k.join("ready").exists()));
    b.ok(&["kill", "-s", "USR1", &id]);
    assert!(
        b.wait_for(Duration::from_secs(5), || k.join("sig").exists()),
        "USR1 not delivered"
    );
    b.ok(&["kill", "--signal", "SIGUSR1", &id]);
    assert!(b.wait_for(Duration::from_secs(5), || {
        fs::read_to_string(k.join("sig")).unwrap_or_default() == "usr1\nusr1\n"
    }));
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "running");
    let pid = pid_of(&b, &id);
    // Default signal: KILL.
    b.ok(&["kill", &id]);
    assert_eq!(b.ok(&["wait", &id]).trim(), "137");
    assert!(!alive(pid));
    let out = b.run(&["kill", &id]);
    assert_eq!(out.status.code(), Some(1), "kill of a stopped container");
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    let out = b.run(&["kill", "-s", "NOPE", &id]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn restart_gives_a_new_process() {
    let b = env();
    let id = b.run_d(&["--init", "bb", "sleep", "60"]);
    let p1 = pid_of(&b, &id);
    let started1 = b.inspect(&id, "{{.State.StartedAt}}");
    b.ok(&["restart", "-t", "1", &id]);
    let p2 = pid_of(&b, &id);
    assert_ne!(p1, p2);
    assert!(!alive(p1), "the old process {p1} still runs");
    assert!(alive(p2));
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "running");
    assert_ne!(b.inspect(&id, "{{.State.StartedAt}}"), started1);
    // Restart of a stopped container starts it.
    b.ok(&["stop", &id]);
    b.ok(&["restart", &id]);
    let p3 = pid_of(&b, &id);
    assert!(alive(p3) && p3 != p2);
    // Quick restarts in a row: each new run keeps its rootfs and its shim socket (the
    // previous shim's clean-up must not hit it).
    let sock = b.runroot().join("s").join(&id);
    let mut last = p3;
    for i in 0..6 {
        b.ok(&["restart", "-t", "1", &id]);
        let p = pid_of(&b, &id);
        assert!(p != last && alive(p), "restart {i}: pid {p}");
        last = p;
        assert!(sock.exists(), "restart {i}: the shim socket is gone");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "running");
    assert!(alive(last));
    assert_eq!(
        b.ok(&["exec", &id, "cat", "/etc/hostname"]),
        format!("{}\n", &id[..12])
    );
}

#[test]
fn pause_freezes_the_container() {
    let b = env();
    let k = host_dir(&b, "pausek");
    let v = format!("{}:/k", k.display());
    let id = b.run_d(&[
        "--name",
        "pz",
        "-v",
        &v,
        "bb",
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /k/n; sleep 0.05; done",
    ]);
    let count = || {
        fs::read_to_string(k.join("n"))
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    assert!(b.wait_for(Duration::from_secs(5), || count() > 2));
    let freezer = cgroup_dir(pid_of(&b, &id), "freezer");
    b.ok(&["pause", "pz"]);
    assert_eq!(read_trim(&freezer.join("freezer.state")), "FROZEN");
    assert_eq!(b.inspect("pz", "{{.State.Status}}"), "paused");
    assert_eq!(b.inspect("pz", "{{.State.Paused}}"), "true");
    let ps = b.ok(&["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    assert_eq!(
        b.ok(&["ps", "-q", "--filter", "status=paused"]),
        format!("{}\n", &id[..12])
    );
    let frozen = count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(), frozen, "the container ran while paused");
    b.ok(&["unpause", "pz"]);
    assert_eq!(read_trim(&freezer.join("freezer.state")), "THAWED");
    assert_eq!(b.inspect("pz", "{{.State.Status}}"), "running");
    assert!(
        b.wait_for(Duration::from_secs(5), || count() > frozen + 2),
        "the container does not run after unpause"
    );
    let out = b.run(&["unpause", "pz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not paused"), "{}", stderr(&out));
    // A paused container can be stopped; a stopped one can't be paused.
    b.ok(&["pause", "pz"]);
    b.ok(&["stop", "-t", "1", "pz"]);
    assert_eq!(b.inspect("pz", "{{.State.Status}}"), "exited");
    let out = b.run(&["pause", "pz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
}

#[test]
fn wait_prints_the_exit_code() {
    let b = env();
    let id = b.run_d(&["bb", "sh", "-c", "sleep 1; exit 3"]);
    let t = Instant::now();
    let out = b.run(&["wait", &id]);
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "wait returned early"
    );
    assert_eq!(stdout(&out), "3\n");
    assert_eq!(out.status.code(), Some(0));
    // Of an exited container: at once.
    assert_eq!(b.ok(&["wait", &id]), "3\n");
    let id2 = b.run_d(&["bb", "sh", "-c", "exit 0"]);
    assert_eq!(b.ok(&["wait", &id, &id2]), "3\n0\n");
}

#[test]
fn top_and_stats_show_the_container_processes() {
    let b = env();
    let id = b.run_d(&[
        "--name",
        "tops",
        "--memory",
        "64m",
        "bb",
        "sh",
        "-c",
        "sleep 61 & sleep 62; true",
    ]);
    let pid = pid_of(&b, &id);
    assert!(b.wait_for(Duration::from_secs(5), || {
        barge_testutil::children(pid).len() == 2
    }));
    let top = b.ok(&["top", "tops"]);
    let header = top.lines().next().unwrap();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .expect("PID column");
    let pids: HashSet<i32> = top
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(pid_col)?.parse().ok())
        .collect();
    let mut want: HashSet<i32> = barge_testutil::children(pid).into_iter().collect();
    want.insert(pid);
    assert_eq!(pids, want, "{top}");
    assert!(
        top.contains("sleep 61") && top.contains("sleep 62"),
        "{top}"
    );

    let stats = b.ok(&["stats", "--no-stream"]);
    let row = stats
        .lines()
        .find(|l| l.contains("tops"))
        .unwrap_or_else(|| panic!("no row for tops: {stats}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[0], &id[..12]);
    assert_eq!(*cols.last().unwrap(), "3", "PIDS column: {row}");
    assert!(row.contains("/ 64MiB"), "memory limit not shown: {row}");
    let json = b.ok(&["stats", "--no-stream", "--format", "json", "tops"]);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["PIDs"], "3");
    assert_eq!(v["Name"], "tops");
    // top of a stopped container is refused.
    b.ok(&["stop", "-t", "1", "tops"]);
    let out = b.run(&["top", "tops"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn foreground_run_proxies_signals() {
    let b = env();
    let child = b
        .cmd(&["run", "--init", "--name", "fg", "bb", "sleep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        b.wait_for(Duration::from_secs(10), || {
            b.run(&["inspect", "-f", "{{.State.Status}}", "fg"])
                .status
                .success()
                && b.inspect("fg", "{{.State.Status}}") == "running"
        }),
        "fg never ran"
    );
    let pid = pid_of(&b, "fg");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = wait_child(child, Duration::from_secs(10));
    // The container got SIGTERM (tini passed it to sleep) and its code came back.
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert_eq!(b.inspect("fg", "{{.State.ExitCode}}"), "143");
    assert!(!alive(pid));
    assert_eq!(b.ok(&["ps", "-q"]), "");
}

/// Whoever looks while a container starts never sees it running without a live pid.
#[test]
fn running_always_has_a_pid() {
    let b = env();
    let mut seen = Vec::new();
    for i in 0..4 {
        let name = format!("st{i}");
        std::thread::scope(|s| {
            let h = s.spawn(|| b.ok(&["run", "-d", "--name", &name, "bb", "sleep", "60"]));
            while !h.is_finished() {
                let o = b.run(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", &name]);
                if o.status.success() {
                    seen.push(stdout(&o).trim().to_string());
                }
            }
            h.join().unwrap();
        });
    }
    for s in &seen {
        let (state, pid) = s.split_once(' ').unwrap();
        let pid: i32 = pid.parse().unwrap();
        match state {
            "running" => assert!(pid > 0, "running with pid {pid}: {seen:?}"),
            "created" => assert_eq!(pid, 0),
            other => panic!("state {other} while starting: {seen:?}"),
        }
    }
    assert!(!seen.is_empty());
}

// ---- 6. exec, start, create ----

#[test]
fn exec_runs_in_the_container() {
    let b = env();
    let id = b.run_d(&["--name", "ex", "-e", "CTR=1", "bb", "sleep", "60"]);
    let pid = pid_of(&b, &id);
    let out = b.ok(&[
        "exec",
        "-e",
        "FOO=bar",
        "-u",
        "user",
        "-w",
        "/home/user",
        "ex",
        "sh",
        "-c",
        "echo \"$FOO $CTR\"; id -u; id -G; pwd; echo $$; tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bar 1", "exec sees -e and the container's env");
    assert_eq!(lines[1..4], ["1000", "1000 2000", "/home/user"]);
    let inner: i32 = lines[4].parse().unwrap();
    assert!(
        inner > 1 && inner < 100,
        "pid {inner} is not a container pid"
    );
    assert_eq!(
        lines[5].trim(),
        "sleep 60",
        "pid 1 is not the container's init"
    );
    // Same namespaces as the container's init.
    let out = b.ok(&[
        "exec",
        "ex",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt",
    ]);
    let want = format!(
        "{}\n{}\n",
        fs::read_link(format!("/proc/{pid}/ns/pid"))
            .unwrap()
            .display(),
        fs::read_link(format!("/proc/{pid}/ns/mnt"))
            .unwrap()
            .display()
    );
    assert_eq!(out, want);
    // The exit code passes through.
    assert_eq!(
        b.run(&["exec", "ex", "sh", "-c", "exit 5"]).status.code(),
        Some(5)
    );
    // -d: returns at once, the process runs on.
    let t = Instant::now();
    b.ok(&[
        "exec",
        "-d",
        "ex",
        "sh",
        "-c",
        "sleep 3; echo done > /tmp/execd",
    ]);
    assert!(t.elapsed() < Duration::from_millis(2500), "exec -d waited");
    let root = PathBuf::from(format!("/proc/{pid}/root/tmp/execd"));
    assert!(!root.exists());
    assert!(b.wait_for(Duration::from_secs(8), || root.exists()));
    // Not running: refused.
    b.ok(&["stop", "-t", "1", "ex"]);
    let out = b.run(&["exec", "ex", "true"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "docker: exit 1 for a container that is not running"
    );
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
}

#[test]
fn create_then_start() {
    let b = env();
    let k = host_dir(&b, "createk");
    let v = format!("{}:/k", k.display());
    let id = b
        .ok(&[
            "create",
            "--name",
            "cr1",
            "-v",
            &v,
            "bb",
            "sh",
            "-c",
            "echo started > /k/f; echo out; echo err >&2; exit 4",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(b.inspect("cr1", "{{.State.Status}}"), "created");
    assert_eq!(
        b.ok(&["ps", "-aq", "--filter", "status=created"]),
        format!("{}\n", &id[..12])
    );
    assert_eq!(b.ok(&["ps", "-q"]), "");
    assert!(!k.join("f").exists(), "create ran the command");
    // start -a: the container's output and exit code.
    let out = b.run(&["start", "-a", "cr1"]);
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(fs::read_to_string(k.join("f")).unwrap(), "started\n");
    assert_eq!(b.inspect("cr1", "{{.State.ExitCode}}"), "4");
    // start without -a: prints the name, runs in the background.
    fs::remove_file(k.join("f")).unwrap();
    assert_eq!(b.ok(&["start", "cr1"]), "cr1\n");
    assert_eq!(b.ok(&["wait", "cr1"]), "4\n");
    assert_eq!(fs::read_to_string(k.join("f")).unwrap(), "started\n");
    // Both runs are in the log.
    assert_eq!(b.ok(&["logs", "cr1"]), "out\nout\n");
}

// ---- 7. restart policies ----

#[test]
fn on_failure_restarts_with_growing_delays() {
    let b = env();
    let id = b.run_d(&[
        "--restart",
        "on-failure:3",
        "bb",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    assert!(
        b.wait_for(Duration::from_secs(10), || {
            b.inspect(&id, "{{.State.Status}}") == "exited"
        }),
        "still {}",
        b.inspect(&id, "{{.State.Status}}")
    );
    assert_eq!(b.inspect(&id, "{{.RestartCount}}"), "3");
    assert_eq!(b.inspect(&id, "{{.State.ExitCode}}"), "1");
    assert_eq!(
        b.inspect(
            &id,
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );
    let logs = b.ok(&["logs", "-t", &id]);
    let times: Vec<i128> = logs
        .lines()
        .map(|l| {
            let (t, msg) = l.split_once(' ').unwrap();
            assert_eq!(msg, "run");
            ts_nanos(t)
        })
        .collect();
    assert_eq!(times.len(), 4, "runs: {logs}");
    let gaps: Vec<i128> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Backoff 100 ms, 200 ms, 400 ms (plus the time to start a container each time).
    for (g, min) in gaps.iter().zip([100, 200, 400]) {
        assert!(
            *g >= min * 1_000_000,
            "gaps {gaps:?} ns: one is below {min} ms"
        );
    }
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "gaps do not grow: {gaps:?} ns"
    );
    // A container that succeeds is not restarted by on-failure.
    let ok = b.run_d(&["--restart", "on-failure", "bb", "sh", "-c", "echo once"]);
    assert_eq!(b.ok(&["wait", &ok]).trim(), "0");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(b.inspect(&ok, "{{.RestartCount}}"), "0");
    assert_eq!(b.ok(&["logs", &ok]), "once\n");
}

#[test]
fn always_restarts_until_stopped() {
    let b = env();
    let id = b.run_d(&[
        "--restart",
        "always",
        "bb",
        "sh",
        "-c",
        "echo run; sleep 0.3",
    ]);
    let runs = || b.ok(&["logs", &id]).lines().count();
    assert!(
        b.wait_for(Duration::from_secs(10), || runs() >= 3),
        "always did not restart a container that exited 0"
    );
    b.ok(&["stop", "-t", "1", &id]);
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "exited");
    let (n, count) = (runs(), b.inspect(&id, "{{.RestartCount}}"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        b.inspect(&id, "{{.State.Status}}"),
        "exited",
        "restarted after stop"
    );
    assert_eq!(runs(), n, "ran again after stop");
    assert_eq!(b.inspect(&id, "{{.RestartCount}}"), count);
    assert_eq!(b.ok(&["ps", "-q"]), "");

    // A long-running one: stop, no restart; start brings it back.
    let id = b.run_d(&["--restart", "always", "--init", "bb", "sleep", "60"]);
    let pid = pid_of(&b, &id);
    b.ok(&["stop", &id]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "exited");
    assert!(!alive(pid));
    b.ok(&["start", &id]);
    assert!(alive(pid_of(&b, &id)));

    // Stopped while waiting out a restart delay: stays stopped.
    let id = b.run_d(&["--restart", "always", "bb", "sh", "-c", "echo r; exit 1"]);
    assert!(
        b.wait_for(Duration::from_secs(10), || {
            b.inspect(&id, "{{.RestartCount}}").parse::<u32>().unwrap() >= 3
                && b.inspect(&id, "{{.State.Status}}") == "restarting"
        }),
        "never seen restarting"
    );
    let t = Instant::now();
    b.ok(&["stop", &id]);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "exited");
    let n = b.ok(&["logs", &id]).lines().count();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        b.ok(&["logs", &id]).lines().count(),
        n,
        "restarted after stop"
    );
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "exited");
}

// ---- 8. terminals ----

/// `script -qec CMDLINE /dev/null` with this store's environment: CMDLINE runs on a pty and
/// script exits with its code.
fn script(b: &BargeEnv, cmdline: &str) -> Output {
    let mut c = Command::new("script");
    c.args(["-qec", cmdline, "/dev/null"])
        .env("BARGE_ROOT", b.root())
        .env("BARGE_RUNROOT", b.runroot())
        .env("BARGE_CONFIG", b.path().join("etc"))
        .stdin(Stdio::null());
    exec_bounded(c, Duration::from_secs(30))
}

#[test]
fn run_it_gets_a_terminal_and_passes_the_exit_code() {
    let b = env();
    let bin = b.bin.display().to_string();
    let out = script(
        &b,
        &format!(
            "{bin} run -it --rm bb sh -c 'tty; stty size; [ -t 0 ] && echo stdin-tty; exit 3'"
        ),
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text} {}", stderr(&out));
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let tty = lines
        .iter()
        .find(|l| l.starts_with("/dev/"))
        .expect("tty line");
    assert!(
        tty.strip_prefix("/dev/pts/")
            .is_some_and(|n| n.parse::<u32>().is_ok()),
        "tty: {text:?}"
    );
    assert!(lines.contains(&"stdin-tty"), "{text:?}");
    assert_eq!(b.ok(&["ps", "-aq"]), "", "--rm left the container");
    // Without -t there is no terminal.
    let out = b.run(&["run", "--rm", "bb", "sh", "-c", "tty; true"]);
    assert_eq!(stdout(&out), "not a tty\n");
}

/// A pty whose slave is the stdio of a spawned barge command.
struct Pty {
    master: fs::File,
    seen: Vec<u8>,
}

impl Pty {
    fn spawn(mut cmd: Command) -> (Pty, Child) {
        let ws = nix::pty::Winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().expect("spawn on pty");
        drop(cmd); // our copies of the slave
        let master = fs::File::from(pty.master);
        let flags = nix::fcntl::fcntl(master.as_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        nix::fcntl::fcntl(
            master.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(
                nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK,
            ),
        )
        .unwrap();
        (
            Pty {
                master,
                seen: Vec::new(),
            },
            child,
        )
    }

    fn send(&mut self, data: &[u8]) {
        self.master.write_all(data).expect("write to pty");
    }

    /// Read until the output contains `needle` (true) or `timeout` passes (false).
    fn expect(&mut self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if String::from_utf8_lossy(&self.seen).contains(needle) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_attach_reconnects() {
    let b = env();
    let (mut pty, mut child) = Pty::spawn(b.cmd(&["run", "-it", "--name", "det", "bb", "sh"]));
    pty.send(b"tty; echo ma''rk1\n");
    assert!(
        pty.expect("mark1", Duration::from_secs(15)),
        "no output from the container: {:?}",
        pty.text()
    );
    assert!(pty.text().contains("/dev/pts/"), "{:?}", pty.text());
    let pid = pid_of(&b, "det");
    pty.send(b"\x10\x11");
    let code = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "barge run did not detach: {:?}", pty.text());
    assert_eq!(b.inspect("det", "{{.State.Status}}"), "running");
    assert!(alive(pid), "the container died on detach");

    // attach: the same shell; its exit code comes back.
    let (mut pty, mut child) = Pty::spawn(b.cmd(&["attach", "det"]));
    std::thread::sleep(Duration::from_millis(300));
    pty.send(b"echo again-$$''-ok\n");
    assert!(
        pty.expect("again-1-ok", Duration::from_secs(15)),
        "attach: {:?}",
        pty.text()
    );
    pty.send(b"exit 7\n");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)),
        Some(7),
        "{:?}",
        pty.text()
    );
    assert_eq!(b.inspect("det", "{{.State.ExitCode}}"), "7");
    assert!(!alive(pid));
}

// ---- 9. bad input ----

#[test]
fn unknown_image_fails_cleanly() {
    let b = env();
    let out = b.run(&["run", "--pull", "never", "nosuch", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("No such image: nosuch"),
        "{}",
        stderr(&out)
    );
    assert_no_containers(&b);
    // Missing locally, and its registry is unreachable (nothing listens on port 1).
    let out = b.run(&["run", "127.0.0.1:1/nosuch:latest", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("Unable to find image '127.0.0.1:1/nosuch:latest' locally"),
        "{err}"
    );
    assert!(err.contains("pull 127.0.0.1:1/nosuch:latest"), "{err}");
    assert_no_containers(&b);
    let out = b.run(&["create", "--pull", "never", "nosuch"]);
    assert_eq!(out.status.code(), Some(125));
    assert_no_containers(&b);
}

#[test]
fn bad_flag_values_are_refused_naming_the_flag() {
    let b = env();
    for (args, needle) in [
        (vec!["--memory", "lots"], "--memory"),
        (vec!["--restart", "sometimes"], "sometimes"),
        (vec!["--restart", "on-failure:x"], "on-failure:x"),
        // (docker: `--cpus 0` is no limit; the range is 0.01 to the CPU count)
        (vec!["--cpus", "-0.5"], "range of CPUs"),
        (vec!["--cpus", "many"], "--cpus"),
        (vec!["-v", "rel:path"], "rel:path"),
        (vec!["-v", "/a:/b:bogus"], "bogus"),
        (vec!["--log-opt", "max-file=0"], "max-file"),
        (vec!["--security-opt", "nonsense"], "nonsense"),
        (vec!["--pull", "sometimes"], "--pull"),
        (vec!["--name", "a/b"], "a/b"),
        (vec!["--stop-signal", "SIGNOPE"], "SIGNOPE"),
        (vec!["--restart", "always", "--rm"], "--rm"),
        // Refused by the engine half-way through create (after the rootfs is made).
        (vec!["-u", "nosuchuser"], "nosuchuser"),
        (vec!["--cap-add", "NOPE"], "NOPE"),
        (vec!["-v", "/nonexistent-src:/x"], "does not exist"),
        (vec!["--network", "nosuchnet"], "nosuchnet"),
        (vec!["-p", "80:x"], "80:x"),
        (vec!["--network", "none", "-p", "80"], "port publishing"),
        (vec!["--dns", "not-an-ip"], "not-an-ip"),
        (vec!["--add-host", "nocolon"], "nocolon"),
    ] {
        let mut a = vec!["run"];
        a.extend(&args);
        a.extend(["bb", "true"]);
        let out = b.run(&a);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert_no_containers(&b);
    // Nothing half-made anywhere: no snapshot, mount or runtime state left.
    assert_eq!(
        b.ok(&["system", "check", "--dry-run"]).trim(),
        "No problems found"
    );
    let mounts = barge_testutil::host_mounts_containing(&b.path().display().to_string());
    assert!(mounts.is_empty(), "{mounts:?}");
}

#[test]
fn missing_command_exits_127_and_not_executable_126() {
    let b = env();
    let out = b.run(&["run", "--rm", "bb", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("nosuchcmd"), "{}", stderr(&out));
    let out = b.run(&["run", "--rm", "bb", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert_no_containers(&b);
}

#[test]
fn name_clash_names_the_holder() {
    let b = env();
    let id = b.run_d(&["--name", "clash", "bb", "sleep", "60"]);
    let out = b.run(&["run", "--name", "clash", "bb", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(err.contains("\"/clash\" is already in use"), "{err}");
    assert!(
        err.contains(&id),
        "the error does not name the holder: {err}"
    );
    assert_eq!(b.ok(&["ps", "-aq", "--no-trunc"]), format!("{id}\n"));
    assert_eq!(b.container_dirs(), [id.clone()].into());
    assert_eq!(b.inspect("clash", "{{.State.Status}}"), "running");
    let out = b.run(&["create", "--name", "clash", "bb", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(b.container_dirs(), [id].into());
}

#[test]
fn rm_of_a_running_container_needs_force() {
    let b = env();
    let id = b.run_d(&["--name", "busy", "bb", "sleep", "60"]);
    let pid = pid_of(&b, &id);
    let out = b.run(&["rm", "busy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("running") && err.contains("force"), "{err}");
    assert!(alive(pid), "rm without -f stopped the container");
    assert_eq!(b.inspect("busy", "{{.State.Status}}"), "running");
    assert!(b.container_dir(&id).is_dir());
    // -f kills and removes.
    assert_eq!(b.ok(&["rm", "-f", "busy"]), "busy\n");
    assert!(b.wait_for(Duration::from_secs(5), || !alive(pid)));
    assert_no_containers(&b);
    let rootfs_mounts = barge_testutil::host_mounts_containing(&id);
    assert!(rootfs_mounts.is_empty(), "{rootfs_mounts:?}");
}

#[test]
fn unknown_container_is_reported() {
    let b = env();
    for cmd in [
        vec!["start", "nope"],
        vec!["stop", "nope"],
        vec!["logs", "nope"],
        vec!["rm", "nope"],
        vec!["kill", "nope"],
        vec!["inspect", "nope"],
        vec!["wait", "nope"],
        vec!["exec", "nope", "true"],
        vec!["restart", "nope"],
    ] {
        let out = b.run(&cmd);
        assert_ne!(out.status.code(), Some(0), "{cmd:?}");
        assert!(
            stderr(&out).contains("No such container: nope"),
            "{cmd:?}: {}",
            stderr(&out)
        );
    }
    // Several names: the good one is handled, the bad one reported, exit 1.
    let id = b.run_d(&["--name", "good", "bb", "sleep", "60"]);
    let out = b.run(&["stop", "-t", "1", "good", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "good\n");
    assert_eq!(b.inspect(&id, "{{.State.Status}}"), "exited");
}

// ---- 10. many at once ----

#[test]
fn twenty_parallel_runs() {
    let b = env();
    let outs: Vec<Output> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| s.spawn(|| b.run(&["run", "-d", "bb", "sleep", "60"])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Whatever failed must have left nothing: what ps shows is exactly what succeeded.
    let mut ids = HashSet::new();
    let mut failures = Vec::new();
    for o in &outs {
        if o.status.success() {
            ids.insert(stdout(o).trim().to_string());
        } else {
            failures.push(stderr(o));
        }
    }
    let ok_runs = outs.len() - failures.len();
    assert_eq!(ids.len(), ok_runs, "ids are not unique");
    let json = b.ok(&["ps", "-a", "--no-trunc", "--format", "json"]);
    let rows: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed: HashSet<String> = rows
        .iter()
        .map(|r| r["ID"].as_str().unwrap().into())
        .collect();
    assert_eq!(listed, ids, "ps -a: {json}");
    assert!(rows.iter().all(|r| r["State"] == "running"), "{json}");
    let names: HashSet<&str> = rows.iter().map(|r| r["Names"].as_str().unwrap()).collect();
    assert_eq!(names.len(), ok_runs, "names are not unique");
    for id in &ids {
        assert!(alive(pid_of(&b, id)), "{id} is not running");
    }
    assert_eq!(b.container_dirs().len(), ok_runs);
    assert_eq!(
        b.ok(&["system", "check", "--dry-run"]).trim(),
        "No problems found"
    );
    assert!(failures.is_empty(), "parallel runs failed: {failures:?}");
}

#[test]
fn run_passes_output_and_exit_code() {
    let b = env();
    let out = b.run(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(b.ok(&["ps", "-aq"]), "", "--rm left a container");
    // -d --rm: removed by its shim when it exits.
    let id = b.run_d(&["--rm", "bb", "sh", "-c", "sleep 0.5"]);
    assert!(b.container_dir(&id).is_dir());
    assert!(
        b.wait_for(Duration::from_secs(10), || b.ok(&["ps", "-aq"]).is_empty()
            && b.container_dirs().is_empty()),
        "run -d --rm: the container stayed"
    );
}
