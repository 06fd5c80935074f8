//! Resource limits, observed from inside the container (its cgroup namespace shows its own
//! cgroup at /sys/fs/cgroup/<controller>) and through their effects. Run as root on the
//! project's cgroup v1 hybrid machines; the v2 equivalents run in the qemu VM (cgroup_v2_vm.rs).
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use barge_testutil::{ok, stderr, stdout, Bundle, Runtime};
use serde_json::{json, Value};

fn rt() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_barge-runtime"))
}

/// A container id unique to this test process (cgroups are named after ids).
fn cid(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn with_resources(script: &str, resources: Value) -> Bundle {
    let mut b = Bundle::sh(script);
    b.config["linux"]["resources"] = resources;
    b.write();
    b
}

/// A bundle-writable directory mounted at /out in the container.
fn mount_out(b: &mut Bundle) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/out", "type": "bind", "source": dir.path(), "options": ["bind"]
    }));
    b.write();
    dir
}

fn wait_for_file(path: &std::path::Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(s) = fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    // The fork loop runs in a child shell, which gives up at the first failed fork; its
    // sleeps stay. `read` is a builtin, so the check itself needs no fork.
    let b = with_resources(
        "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done'; \
         read n < /sys/fs/cgroup/pids/pids.current; read m < /sys/fs/cgroup/pids/pids.max; \
         echo current=$n max=$m",
        json!({"pids": {"limit": 6}}),
    );
    let r = rt();
    let out = r.run(&b, &cid("forkloop"));
    let text = stdout(&out);
    // This shell and the 4 sleeps that fit beside it and the child shell.
    assert!(text.contains("current=5 max=6"), "{text}\n{}", stderr(&out));
    assert!(stderr(&out).contains("can't fork"), "{}", stderr(&out));
}

#[test]
fn cpu_quota_shares_and_cpuset_land_in_the_kernel_and_throttle() {
    // A busy loop for ~0.3 s under a 10% quota must be throttled.
    let b = with_resources(
        "cd /sys/fs/cgroup; cat cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares \
         cpuset/cpuset.cpus; \
         i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
         grep nr_throttled cpu/cpu.stat; grep -c processor /proc/cpuinfo >/dev/null",
        json!({"cpu": {"quota": 10000, "period": 100000, "shares": 512, "cpus": "0"}}),
    );
    let out = ok(&rt().run(&b, &cid("cpu")));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("10000"), "{out}");
    assert_eq!(lines.next(), Some("100000"), "{out}");
    assert_eq!(lines.next(), Some("512"), "{out}");
    assert_eq!(lines.next(), Some("0"), "{out}");
    let throttled: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("nr_throttled "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no nr_throttled in {out}"));
    assert!(
        throttled > 0,
        "busy loop never throttled under a 10% quota: {out}"
    );
}

#[test]
fn memory_settings_land_in_the_kernel() {
    let b = with_resources(
        "cd /sys/fs/cgroup/memory; cat memory.limit_in_bytes memory.memsw.limit_in_bytes \
         memory.soft_limit_in_bytes memory.swappiness",
        json!({"memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432,
                          "swappiness": 10}}),
    );
    let out = ok(&rt().run(&b, &cid("mem")));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["67108864", "134217728", "33554432", "10"],
        "{out}"
    );
}

/// Opens `node` in the container shell for reading (`<`) or writing (`>`), printing the verdict.
fn try_open(node: &str, how: &str) -> String {
    format!("(exec 3{how}{node}) 2>/dev/null && echo '{node}{how}ok' || echo '{node}{how}denied'; ")
}

#[test]
fn device_rules_allow_listed_access_and_deny_the_rest() {
    // /dev/fuse (10:229) and /dev/loop-control (10:237) open fine on the host as root.
    let script = format!(
        "mknod /dev/xfuse c 10 229; mknod /dev/xloop c 10 237; {}{}{}{}",
        try_open("/dev/xfuse", "<"),
        try_open("/dev/xfuse", ">"),
        try_open("/dev/xloop", "<"),
        try_open("/dev/null", ">"),
    );
    let mut b = with_resources(
        &script,
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}
        ]}),
    );
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
    }
    b.write();
    let out = ok(&rt().run(&b, &cid("devices")));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "/dev/xfuse<ok",
            "/dev/xfuse>denied",
            "/dev/xloop<denied",
            "/dev/null>ok"
        ],
        "{out}"
    );
}

/// The first disk with a size, as (major, minor), e.g. vda on the project's VMs.
fn some_disk() -> (u32, u32) {
    let mut names: Vec<_> = fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("zram") && !n.starts_with("ram"))
        .collect();
    names.sort();
    for n in names {
        let size: u64 = fs::read_to_string(format!("/sys/block/{n}/size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if size == 0 {
            continue;
        }
        let dev = fs::read_to_string(format!("/sys/block/{n}/dev")).unwrap();
        let (a, b) = dev.trim().split_once(':').unwrap();
        return (a.parse().unwrap(), b.parse().unwrap());
    }
    panic!("no disk in /sys/block");
}

#[test]
fn blkio_throttle_lands_in_the_kernel() {
    let (maj, min) = some_disk();
    let b = with_resources(
        "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device \
         /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device",
        json!({"blockIO": {
            "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": 100}]
        }}),
    );
    let out = ok(&rt().run(&b, &cid("blkio")));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [format!("{maj}:{min} 1048576"), format!("{maj}:{min} 100")],
        "{out}"
    );
}

/// On hybrid hosts hugetlb lives only in the unified tree: the runtime delivers it there.
#[test]
fn hugetlb_limit_lands_in_the_unified_tree() {
    let b = with_resources(
        "cat /sys/fs/cgroup/unified/hugetlb.2MB.max",
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    );
    let out = ok(&rt().run(&b, &cid("hugetlb")));
    assert_eq!(out.trim(), "4194304");
}

/// The container's directory in the v1 memory hierarchy, as the host sees it.
fn host_memory_dir(pid: i32) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = text
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .unwrap();
    PathBuf::from(format!("/sys/fs/cgroup/memory{path}"))
}

fn init_pid(r: &Runtime, id: &str) -> i32 {
    let st: Value = serde_json::from_str(&ok(&r.exec(&["state", id]))).unwrap();
    st["pid"].as_i64().unwrap() as i32
}

#[test]
fn update_raises_the_memory_limit_of_a_running_container() {
    // Each request allocates 48 MiB in dd; under 32 MiB the kernel kills dd.
    let mut b = with_resources(
        "while :; do if [ -e /out/go ]; then rm /out/go; \
         dd if=/dev/zero of=/dev/null bs=48M count=1 2>/dev/null && r=ok || r=killed; \
         echo $r > /out/t; mv /out/t /out/result; fi; sleep 0.02; done",
        json!({"memory": {"limit": 33554432}}),
    );
    let out = mount_out(&mut b);
    let r = rt();
    let id = cid("update");
    let bundle = b.path().to_string_lossy().into_owned();
    ok(&r.exec(&["run", "-d", "--bundle", &bundle, &id]));
    let attempt = || {
        let _ = fs::remove_file(out.path().join("result"));
        fs::write(out.path().join("go"), "").unwrap();
        wait_for_file(&out.path().join("result"), Duration::from_secs(20))
    };
    assert_eq!(attempt().trim(), "killed");
    ok(&r.exec(&["update", "--memory", "128m", &id]));
    let dir = host_memory_dir(init_pid(&r, &id));
    assert_eq!(
        fs::read_to_string(dir.join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        "134217728"
    );
    assert_eq!(attempt().trim(), "ok");
    // A resources file works too, and the state remembers the new limit.
    let file = b.path().join("res.json");
    fs::write(
        &file,
        r#"{"memory":{"limit":100663296},"pids":{"limit":50}}"#,
    )
    .unwrap();
    ok(&r.exec(&["update", "-r", &file.to_string_lossy(), &id]));
    assert_eq!(
        fs::read_to_string(dir.join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        "100663296"
    );
    let state_file = r.root().join(&id).join("state.json");
    let saved: Value = serde_json::from_str(&fs::read_to_string(state_file).unwrap()).unwrap();
    let res = &saved["spec"]["linux"]["resources"];
    assert_eq!(res["memory"]["limit"], 100663296, "{res}");
    assert_eq!(res["pids"]["limit"], 50, "{res}");
    ok(&r.exec(&["delete", "--force", &id]));
}

#[test]
fn update_refuses_bad_values_and_unknown_containers() {
    let r = rt();
    let id = cid("updbad");
    let b = Bundle::sh("sleep 30");
    let bundle = b.path().to_string_lossy().into_owned();
    ok(&r.exec(&["run", "-d", "--bundle", &bundle, &id]));
    let dir = host_memory_dir(init_pid(&r, &id));
    let before = fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap();
    for (args, needle) in [
        (vec!["update", "--memory", "12x", &id], "--memory"),
        (vec!["update", "--cpu-quota", "-7", &id], "cpu.quota"),
        (vec!["update", "--memory", "1m", "nope-ctr"], "nope-ctr"),
    ] {
        let out = r.exec(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap(),
        before
    );
    ok(&r.exec(&["delete", "--force", &id]));
}
