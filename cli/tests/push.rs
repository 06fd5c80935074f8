//! `barge push` end to end: through the `barge` binary and its registry helper to a real local
//! registry with basic auth; what was pushed is pulled by digest into a clean store and run.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use barge_testutil::engine::BargeEnv;
use barge_testutil::registry::Registry;
use barge_testutil::{stderr, stdout};

fn failed(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure: {}", stdout(o));
    stderr(o)
}

#[test]
fn push_login_then_pull_by_digest_into_a_clean_store_and_run() {
    let reg = Registry::start_basic_auth("erin", "l0ck");
    let a = BargeEnv::new(env!("CARGO_BIN_EXE_barge"));
    let name = format!("{}/edge/bb:v1", reg.addr);
    a.ok(&["tag", "bb", &name]);

    // No credentials, then wrong ones: a clear refusal, nothing on the registry.
    let err = failed(&a.run(&["push", &name]));
    assert!(err.contains(&reg.addr) && err.contains("401"), "{err}");
    let err = failed(&a.run(&["push", "--creds", "erin:nope", &name]));
    assert!(err.contains("barge login"), "{err}");
    let m = reg.get("/v2/edge/bb/manifests/v1", &[]);
    assert_eq!(
        m.status,
        404,
        "no manifest after a refused push: {}",
        m.text()
    );
    // Not stored: named.
    let err = failed(&a.run(&["push", &format!("{}/edge/none:1", reg.addr)]));
    assert!(
        err.contains("edge/none:1") && err.contains("not found"),
        "{err}"
    );

    // With the stored login: progress lines on stderr (no terminal), docker's summary line.
    a.ok(&["login", "-u", "erin", "-p", "l0ck", &reg.addr]);
    let o = a.run(&["push", &name]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let progress = stderr(&o);
    assert!(
        progress.contains(&format!(
            "The push refers to repository [{}/edge/bb]",
            reg.addr
        )),
        "{progress}"
    );
    assert!(progress.contains(": Pushed"), "{progress}");
    let line = out.trim();
    assert!(line.starts_with("v1: digest: sha256:"), "{line}");
    let digest = line.split_whitespace().nth(2).unwrap().to_string();
    let size: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let m = reg.get(
        &format!("/v2/edge/bb/manifests/{digest}"),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
    );
    assert_eq!(m.status, 200, "{}", m.text());
    assert_eq!(m.body.len() as u64, size);

    // Again: every layer is there already; -q prints the digest only.
    let o = a.run(&["push", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Layer already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(a.ok(&["push", "-q", &name]).trim(), digest);

    // A clean store: pull by digest (with --creds-less login there too) and run it.
    let b = BargeEnv::new(env!("CARGO_BIN_EXE_barge"));
    b.ok(&["login", "-u", "erin", "-p", "l0ck", &reg.addr]);
    let by_digest = format!("{}/edge/bb@{digest}", reg.addr);
    b.ok(&["pull", &by_digest]);
    let said = b.ok(&["run", "--rm", &by_digest, "echo", "pushed and back"]);
    assert_eq!(said.trim(), "pushed and back");
}
