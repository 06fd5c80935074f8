//! Containers end to end through the `barge` binary: run, logs, exec, stop, rm, ...

use barge_testutil::engine::BargeEnv;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
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
}
