//! The holder of a pod's shared PID namespace (`shareProcessNamespace`): `barge-pause`, the
//! pod's only process. A PID namespace dies with its init and cannot be entered again, so
//! unlike the pod's other namespaces a pinned file is not enough: the pin lets containers
//! name the namespace, the holder keeps it usable.
//!
//! `<run>/pid` is the pin, `<run>/pause.pid` the holder's PID (checked against the pin's
//! inode before it is trusted or signalled, so a recycled PID is never killed).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::{mount, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, IoContext, Result};

/// Start the holder and pin its namespace at `<run>/pid`. Nothing is left on failure.
pub(crate) fn start(run: &Path) -> Result<()> {
    let exe = crate::helper_binary("barge-pause", "BARGE_PAUSE");
    // The launcher prints the init's PID and exits; the init (stdio on /dev/null) is
    // reparented, so this waits for the launcher only.
    let out = std::process::Command::new(&exe)
        .stdin(std::process::Stdio::null())
        .output()
        .ctx("run the pod's PID namespace holder", &exe)?;
    if !out.status.success() {
        return Err(Error::Record(format!(
            "{} failed ({}): {}",
            exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let pid: i32 = text.trim().parse().map_err(|_| {
        Error::Record(format!(
            "{} printed {:?}, not a PID",
            exe.display(),
            text.trim()
        ))
    })?;
    let res = pin(run, pid);
    if res.is_err() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = std::fs::remove_file(run.join("pid"));
        let _ = std::fs::remove_file(run.join("pause.pid"));
    }
    res
}

fn pin(run: &Path, pid: i32) -> Result<()> {
    let target = run.join("pid");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .ctx("create namespace pin", &target)?;
    let src = format!("/proc/{pid}/ns/pid");
    mount(
        Some(src.as_str()),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(Error::sys(format!(
        "bind-mount {src} on {}",
        target.display()
    )))?;
    // The run root is a tmpfs: atomic (no torn PID) is enough, durability is moot.
    barge_util::fs::write_atomic(
        &run.join("pause.pid"),
        pid.to_string().as_bytes(),
        0o644,
        barge_util::fs::Durability::Atomic,
    )
    .ctx("record the PID namespace holder", &run.join("pause.pid"))
}

/// The holder's PID if it is alive and still the init of the pinned namespace.
pub(crate) fn alive(run: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(run.join("pause.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let pinned = std::fs::metadata(run.join("pid")).ok()?;
    let live = std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?;
    (pinned.ino() == live.ino() && pinned.dev() == live.dev()).then_some(pid)
}

/// Kill the holder (the namespace's processes go with it) and forget its PID. No holder is
/// fine.
pub(crate) fn stop(run: &Path) -> Result<()> {
    if let Some(pid) = alive(run) {
        kill(Pid::from_raw(pid), Signal::SIGKILL)
            .map_err(Error::sys(format!("kill the PID namespace holder {pid}")))?;
        // Not our child: wait (bounded) for it to be gone so the pin is the last reference.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Path::new(&format!("/proc/{pid}/ns/pid")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    match std::fs::remove_file(run.join("pause.pid")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).ctx("remove", &run.join("pause.pid"))
        }
        _ => Ok(()),
    }
}
