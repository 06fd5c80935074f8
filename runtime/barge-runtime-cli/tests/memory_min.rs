//! The smallest memory limit a container starts under (issue 14): `true` runs under a small
//! limit, and a limit far too small fails with an error that says the OOM killer stopped the
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
/// cgroup mounts) runs `true` under 512 KiB, kernel memory of its namespaces included. (The
/// debug build needs about 430 KiB on the dev machine, see bench/smallest_memory.sh.)
#[test]
fn true_runs_under_512_kib() {
    let r = rt();
    let o = r.run(&with_limit(512 * 1024), &cid("512k"));
    assert!(
        o.status.success(),
        "{:?}: {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
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
