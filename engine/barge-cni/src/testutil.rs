//! Helpers for the unit tests: fake plugins written as shell scripts, and process checks.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// Writes an executable `#!/bin/sh` script `name` with `body` into `dir`.
pub fn fake_plugin(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Reads a PID a script wrote.
pub fn read_pid(path: &Path) -> i32 {
    let text = fs::read_to_string(path).unwrap();
    text.trim().parse().unwrap()
}

/// Whether `pid` exists and is not a zombie (zombies are dead, just not reaped yet; in a
/// container PID 1 may never reap the orphans it inherits).
pub fn is_alive(pid: i32) -> bool {
    barge_util::process::alive(pid)
}

/// Whether `pid` is gone (or a zombie) within a few seconds.
pub fn process_gone(pid: i32) -> bool {
    let give_up = Instant::now() + Duration::from_secs(3);
    while Instant::now() < give_up {
        if !is_alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}
