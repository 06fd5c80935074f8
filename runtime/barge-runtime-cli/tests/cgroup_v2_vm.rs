//! barge-runtime on a real cgroup v2 kernel.
//!
//! The development and CI hosts run a hybrid (v1 + unified) layout, so this boots Debian's cloud
//! kernel under QEMU (TCG) with `ci/cgroupv2-vm/run.sh`, which runs this build of barge-runtime
//! in the VM and prints one `V2CHECK <name> PASS|FAIL <detail>` line per check. Each check must
//! have passed; the console log is shown otherwise. About 10 s once the kernel is cached
//! (`target/cgroupv2-vm/`), plus a few seconds for the one-off kernel download.
//!
//! Needs Debian's `qemu-system-x86`, `cpio` and `busybox-static` (installed by scripts/setup.sh);
//! without them the test fails, naming the package, instead of being skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The checks `ci/cgroupv2-vm/checks.sh` runs in the VM, from the `CHECKS=(...)` line of
/// run.sh (one list for both).
fn checks(run_sh: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run_sh).expect("read run.sh");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("CHECKS=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("CHECKS=(...) in run.sh");
    let names: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert!(names.len() >= 13, "too few checks in run.sh: {names:?}");
    names
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

#[test]
fn runtime_checks_pass_on_a_cgroup_v2_kernel() {
    for (tool, package) in [("qemu-system-x86_64", "qemu-system-x86"), ("cpio", "cpio")] {
        assert!(
            on_path(tool),
            "{tool} not found: apt-get install {package} (this test boots a cgroup v2 VM)"
        );
    }
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox not found: apt-get install busybox-static"
    );

    let script = workspace_root().join("ci/cgroupv2-vm/run.sh");
    let tmp = tempfile::tempdir().expect("temp dir");
    let log = tmp.path().join("console.log");
    let out = Command::new("bash")
        .arg(&script)
        .env("BARGE_RUNTIME", env!("CARGO_BIN_EXE_barge-runtime"))
        .env("CGV2_LOG", &log)
        .env_remove("CGV2_VERBOSE")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let console =
        std::fs::read_to_string(&log).unwrap_or_else(|e| format!("(no console log: {e})"));
    let report = format!(
        "{} exited with {}\n--- stdout\n{}\n--- stderr\n{}\n--- console log\n{console}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );

    for check in checks(&script) {
        let prefix = format!("V2CHECK {check} ");
        let line = console.lines().find(|l| l.starts_with(&prefix));
        match line {
            Some(l) => assert!(
                l.starts_with(&format!("{prefix}PASS")),
                "check {check} failed: {l}\n\n{report}"
            ),
            None => panic!("check {check} printed no V2CHECK line\n\n{report}"),
        }
    }
    assert!(
        console.lines().any(|l| l == "V2DONE"),
        "the VM did not finish (no V2DONE)\n\n{report}"
    );
    assert!(out.status.success(), "run.sh failed\n\n{report}");
}
