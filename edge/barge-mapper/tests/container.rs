//! The mapper as a container: scripts/mapper-image.sh makes its image in a throw-away barge
//! store, `barge run --network host` runs it, and it reports a Modbus register over MQTT.
//! Needs root and the `barge` binary (`cargo build -p barge`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use barge_testutil::engine::BargeEnv;
use common::*;

/// `target/<profile>/barge`, next to this test's binary's directory.
fn barge_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("barge");
    assert!(
        bin.exists(),
        "{} missing: build it first (cargo build -p barge)",
        bin.display()
    );
    bin
}

/// Removes the container on drop (also when the test fails).
struct Container<'a>(&'a BargeEnv, &'a str);

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let ps = self.0.run(&["ps", "-a"]);
            let logs = self.0.run(&["logs", self.1]);
            eprintln!(
                "ps -a:\n{}\nlogs {}:\n{}{}",
                String::from_utf8_lossy(&ps.stdout),
                self.1,
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        let _ = self.0.run(&["rm", "-f", self.1]);
    }
}

// Multi-threaded: the barge commands block their thread while the test agent runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mapper_image_reports_a_modbus_register_from_a_container() {
    let env = BargeEnv::new(barge_bin().to_str().unwrap());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mapper-image.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("barge-mapper:test")
        .arg(env!("CARGO_BIN_EXE_barge-mapper"))
        .env("BARGE", &env.bin)
        .env("BARGE_ROOT", env.root())
        .env("BARGE_RUNROOT", env.runroot())
        .env("BARGE_CONFIG", env.path().join("etc"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mapper-image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let broker = Mosquitto::start(free_port());
    let server = ModbusServer::start(free_port());
    let mut agent = Agent::start(
        broker.port,
        "edge-1",
        vec![modbus_device("pump", server.port)],
    )
    .await;
    let url = broker.url();
    let _c = Container(&env, "mapper");
    env.run_d(&[
        "--name",
        "mapper",
        "--network",
        "host",
        "barge-mapper:test",
        "--mqtt",
        &url,
        "--node",
        "edge-1",
        "--protocol",
        "modbus",
    ]);
    agent.wait_state("pump", "online", 30).await;
    let got = agent.wait_actual("pump", "temperature", 20, |_| true).await;
    assert_eq!(got, "23.5");
    // The container logged through the mapper's logger (to its stderr).
    let logs = env.run(&["logs", "mapper"]);
    let err = String::from_utf8_lossy(&logs.stderr);
    assert!(
        err.contains("barge-mapper info: device pump: online"),
        "{err}"
    );
}
