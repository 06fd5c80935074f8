//! The shared helpers and typed errors as the user sees them: docker's time formats, exit
//! codes chosen by the kind of error, atomic writes of user files.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;

use barge_testutil::engine::BargeEnv;
use barge_testutil::stderr;
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// docker writes a volume's `CreatedAt` as RFC 3339 to the second (`…T09:01:34Z`).
#[test]
fn volume_created_at_is_rfc3339_to_the_second() {
    let b = env();
    b.ok(&["volume", "create", "when"]);
    let insp: Value = serde_json::from_str(&b.ok(&["volume", "inspect", "when"])).unwrap();
    let created = insp[0]["CreatedAt"].as_str().unwrap();
    assert_eq!(created.len(), "2026-11-23T09:01:34Z".len(), "{created}");
    assert!(
        created.ends_with('Z') && !created.contains('.'),
        "{created}"
    );
    let (secs, nanos) = barge_util::time::parse_rfc3339(created).unwrap();
    assert_eq!(nanos, 0);
    let now = barge_util::time::now().0;
    assert!((now - secs).abs() < 120, "{created} is not now");
}

/// `run`: 125 when the engine fails (here: no such image, never pulled), 127 when the program
/// is not found, 126 when it is not executable; `exec` in a container that is not running: 1.
#[test]
fn exit_codes_follow_the_kind_of_error() {
    let b = env();
    let out = b.run(&["run", "--rm", "--pull", "never", "nosuchimage:1", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("nosuchimage"), "{}", stderr(&out));

    let out = b.run(&["run", "--rm", "bb", "/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let out = b.run(&["run", "--rm", "bb", "/etc"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));

    b.ok(&["run", "--name", "done", "bb", "true"]);
    let out = b.run(&["exec", "done", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    let out = b.run(&["exec", "nosuchcontainer", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No such container: nosuchcontainer"),
        "{}",
        stderr(&out)
    );
}

/// `save -o FILE` replaces the file whole: a failed save leaves the old file as it was and no
/// temp file; a good one writes the archive with mode 0644.
#[test]
fn save_replaces_its_output_atomically() {
    let b = env();
    let dir = b.path().join("out");
    fs::create_dir(&dir).unwrap();
    let file = dir.join("img.tar");
    fs::write(&file, b"old").unwrap();
    let out = b.run(&["save", "-o", file.to_str().unwrap(), "nosuchimage:1"]);
    assert!(!out.status.success());
    assert_eq!(fs::read(&file).unwrap(), b"old");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp file left");

    b.ok(&["save", "-o", file.to_str().unwrap(), "bb"]);
    let data = fs::read(&file).unwrap();
    assert!(data.len() > 1024, "archive of {} bytes", data.len());
    assert_eq!(&data[257..262], b"ustar", "not a tar archive");
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o644);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp file left");
}
