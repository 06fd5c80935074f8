//! The daemon itself: its socket, version negotiation, a panicking handler, fork safety,
//! surviving SIGKILL, and sharing the store with the `barge` CLI.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// The socket is 0660, owned by root and the --group's group; never world-accessible.
#[test]
fn socket_mode_and_group() {
    // `nogroup` (gid 65534) exists on Debian; any group but root's shows the chown.
    let gid: u32 = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == "nogroup").then(|| f[2].parse().unwrap())
        })
        .expect("group nogroup");
    let d = Daemon::start_with(&["--group", "nogroup"]);
    let m = std::fs::metadata(&d.sock).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o660, "socket mode");
    assert_eq!((m.uid(), m.gid()), (0, gid), "socket owner");
    let v = d.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), "1.47");
}

/// A handler that panics answers 500 and the daemon goes on serving.
#[test]
fn panicking_handler_is_a_500() {
    let d = Daemon::start();
    let (status, body) = d.json("GET", "/_barge/panic", b"");
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("panicked"),
        "{body}"
    );
    let (status, _) = d.json("GET", "/v1.47/_barge/panic", b"");
    assert_eq!(status, 500);
    assert_eq!(d.request("GET", "/_ping", b"").text(), "OK");
    d.docker_ok(&["ps"]);
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid()), None).is_ok());
}
