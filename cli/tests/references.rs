//! Image names through the `barge` binary: registry-qualified names (ports, IPv6 hosts,
//! `localhost`, digests) run, list and remove like plain ones, and bad names get docker's
//! messages before anything is contacted.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use barge_testutil::engine::BargeEnv;
use barge_testutil::{stderr, stdout};

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// `REPOSITORY TAG` of every image, from `images --format json`.
fn listed(b: &BargeEnv) -> Vec<String> {
    b.ok(&["images", "--format", "json"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}",
                v["Repository"].as_str().unwrap(),
                v["Tag"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn registry_qualified_names_run_list_and_remove() {
    let b = env();
    for name in [
        "registry.local:5000/team/app:1.2",
        "127.0.0.1:5000/busybox:latest",
        "[::1]:5000/edge/app:v1",
        "localhost/app",
        "index.docker.io/library/alias:2",
    ] {
        b.ok(&["tag", "bb", name]);
        // The container really runs from it: its output comes from the image's busybox.
        let o = b.run(&["run", "--rm", "--network", "none", name, "echo", "ran"]);
        assert!(o.status.success(), "run {name}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "ran", "{name}");
    }
    let names = listed(&b);
    for row in [
        "registry.local:5000/team/app 1.2",
        "127.0.0.1:5000/busybox latest",
        "[::1]:5000/edge/app v1",
        "localhost/app latest",
        // index.docker.io is docker.io, shown as docker shows Docker Hub names.
        "alias 2",
    ] {
        assert!(names.iter().any(|l| l == row), "{row:?} not in {names:?}");
    }
    // The same names resolve for inspect and rmi (normalised the same way).
    b.ok(&["image", "inspect", "docker.io/library/alias:2"]);
    b.ok(&["rmi", "[::1]:5000/edge/app:v1"]);
    let names = listed(&b);
    assert!(!names.iter().any(|l| l.contains("[::1]")), "{names:?}");
}

#[test]
fn bad_names_get_dockers_messages() {
    let b = env();
    for (name, want) in [
        (
            "Busybox",
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        (
            "registry.local:5000/Team/app",
            "repository name (Team/app) must be lowercase",
        ),
        ("registry.local:5000/app:", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("reg.io:port/x", "invalid reference format"),
    ] {
        // No registry listens anywhere here: the name is refused before any is contacted.
        let o = b.run(&["tag", "bb", name]);
        assert!(!o.status.success(), "tag {name} succeeded");
        assert!(stderr(&o).contains(want), "tag {name}: {}", stderr(&o));
        let o = b.run(&["pull", name]);
        assert!(!o.status.success(), "pull {name} succeeded");
        assert!(stderr(&o).contains(want), "pull {name}: {}", stderr(&o));
    }
    // run: refused as a name, not looked for ("Unable to find image ... locally").
    let o = b.run(&["run", "--rm", "Busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("repository name (library/Busybox) must be lowercase"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("Unable to find"), "{}", stderr(&o));
    let long = format!("reg.io/{}", "a".repeat(250));
    let o = b.run(&["tag", "bb", &long]);
    assert!(
        stderr(&o).contains("must not be more than 255 characters"),
        "{}",
        stderr(&o)
    );
    // Nothing was named by any of them.
    assert_eq!(listed(&b), ["bb latest"]);
}
