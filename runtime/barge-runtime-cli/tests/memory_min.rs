//! The smallest memory limit a container starts under (issue 14): `true` runs under a tight
//! limit (the exact figure is a benchmark), and a limit far too small fails with an error that says the OOM killer stopped the
//! setup and names the limit (not "container init exited before finishing setup").
//! `bench/smallest_memory.sh` bisects the exact figure against runc.

use barge_testutil::{stderr, Bundle, Runtime};
use serde_json::json;

fn rt() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_barge-runtime"))
}

fn cid(name: &str) -> String {
    format!("mem-{name}-{}", std::process::id())
}

fn with_limit(bytes: u64) -> Bundle {
    let mut b = Bundle::new();
    b.config["linux"]["resources"] = json!({"memory": {"limit": bytes}});
    b.write();
    b
}

/// The default spec (pid, network, ipc, uts, mount, cgroup namespaces; /proc, /dev, /sys,
/// cgroup mounts) runs `true` under a tight limit. On cgroup v1 the namespaces and the init's
/// fork-time kernel structures are charged to the caller (see init.rs); the rootfs mounts, the
/// pages the init dirties and the exec'd program's memory are the container's.
///
/// The smallest such limit is a benchmark (`bench/smallest_memory.sh`; goal < 256 KiB,
/// measured 204–228 KiB on a quiet machine), not this test: what the init's setup is charged
/// depends on the host's state. On a quiet machine the debug build's `true` passed 60 of 60
/// runs at 256 KiB; with four cargo builds running (load 14 on 2 cores) the same binary was
/// charged about 1.6 MiB of anonymous memory during setup (397 pages faulted in by the init,
/// seen in the cgroup's memory.stat with an 8 MiB limit) and failed every run at 1 MiB. The
/// cause is not found yet (see the README); this test checks 4 MiB, which still catches a
/// setup that charges the container for its namespaces or the runtime's whole heap.
///
/// It runs on one CPU: the memory cgroup charges through per-CPU batches ("stocks"), pages
/// freed on one CPU stay charged in that CPU's stock and are drained asynchronously when the
/// init charges on another, which OOM-killed `true` at 256 KiB in about one run in ten.
/// The bundle keeps no seccomp filter also when the suite runs again under a profile
/// (`BARGE_TEST_SECCOMP`): a filter's BPF program is kernel memory the init allocates after
/// joining the cgroup.
#[test]
fn true_runs_under_a_tight_limit() {
    pin_to_one_cpu();
    let r = rt();
    let mut b = Bundle::new();
    b.config["linux"]["resources"] = json!({"memory": {"limit": 4 * 1024 * 1024}});
    b.config["linux"]["seccomp"] = serde_json::Value::Null;
    b.write();
    let o = r.run(&b, &cid("tight"));
    assert!(
        o.status.success(),
        "{:?}: {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

/// Pins this test process (and so the runtime and container it starts) to the CPU it is on.
fn pin_to_one_cpu() {
    use nix::sched::{sched_getcpu, sched_setaffinity, CpuSet};
    let cpu = sched_getcpu().unwrap_or(0);
    let mut one = CpuSet::new();
    one.set(cpu).expect("cpu index within CpuSet");
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &one).expect("sched_setaffinity");
}

/// Far too small: the error names the OOM killer and the limit, for `run` and for `create`,
/// and nothing of the container is left behind.
#[test]
fn a_limit_far_too_small_is_reported_as_such() {
    let r = rt();
    let b = with_limit(64 * 1024);
    let o = r.run(&b, &cid("64k"));
    assert!(!o.status.success(), "ran under 64 KiB?");
    let e = stderr(&o);
    assert!(
        e.contains("killed by the OOM killer during setup")
            && e.contains("memory limit 64 KiB (linux.resources.memory.limit) is too small"),
        "{e}"
    );
    let p = b.path().to_string_lossy().into_owned();
    let o = r.exec(&["create", "--bundle", &p, &cid("64k-create")]);
    assert!(!o.status.success(), "created under 64 KiB?");
    assert!(
        stderr(&o).contains("memory limit 64 KiB (linux.resources.memory.limit) is too small"),
        "{}",
        stderr(&o)
    );
    assert!(r.leftovers().is_empty(), "left: {:?}", r.leftovers());
}

/// The init joins the container's v1 cgroups itself, right after it is forked (so its fork-time
/// kernel structures and the namespaces are charged to the caller, as with crun): it still sits
/// in every one of them before `create` returns, with a user namespace too (the `tasks` files
/// are opened before it exists), and what it allocates from then on is the container's.
#[test]
fn the_init_is_in_every_v1_cgroup_when_create_returns_with_a_user_namespace_too() {
    for userns in [false, true] {
        let r = rt();
        let mut b = with_limit(8 << 20);
        if userns {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            b.config["linux"]["uidMappings"] = map.clone();
            b.config["linux"]["gidMappings"] = map;
            b.write();
        }
        let id = cid(if userns { "cg-userns" } else { "cg" });
        let p = b.path().to_string_lossy().into_owned();
        let o = r.exec(&["create", "--bundle", &p, &id]);
        assert!(o.status.success(), "create: {}", stderr(&o));
        let st: serde_json::Value =
            serde_json::from_str(&String::from_utf8_lossy(&r.exec(&["state", &id]).stdout))
                .unwrap();
        let pid = st["pid"].as_i64().unwrap();
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let v1: Vec<(&str, &str)> = cg
            .lines()
            .filter_map(|l| l.split_once(':').map(|(_, rest)| rest))
            .filter_map(|l| l.split_once(':'))
            .filter(|(ctrl, _)| !ctrl.is_empty())
            .collect();
        assert!(v1.iter().any(|(c, _)| *c == "memory"), "{cg}");
        for (ctrl, path) in &v1 {
            if ctrl.starts_with("name=") {
                continue; // named hierarchies (systemd) are not the runtime's
            }
            assert!(
                path.ends_with(&id),
                "userns {userns}: {ctrl} at {path}\n{cg}"
            );
        }
        let mem = v1.iter().find(|(c, _)| *c == "memory").unwrap().1;
        let usage =
            std::fs::read_to_string(format!("/sys/fs/cgroup/memory{mem}/memory.usage_in_bytes"))
                .unwrap();
        assert!(usage.trim().parse::<u64>().unwrap() > 0, "{usage}");
        let o = r.exec(&["delete", "--force", &id]);
        assert!(o.status.success(), "delete: {}", stderr(&o));
    }
}
