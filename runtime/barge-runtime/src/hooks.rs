//! Running OCI lifecycle hooks: the state on stdin, `timeout` honored, failures reported with
//! the hook's own output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::memfd::MFdFlags;
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Which hook list is being run (for messages and the ordering tests).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        })
    }
}

/// Run every hook of a list in order; the first failure stops the list.
pub fn run_all(kind: Kind, hooks: Option<&Vec<Hook>>, state: &str) -> Result<()> {
    for (i, h) in hooks
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        run(h, state)
            .map_err(|e| Error::Hook(format!("{kind} hook #{i} ({}): {e}", h.path().display())))?;
    }
    Ok(())
}

/// Run a list whose failures the spec only wants logged (poststart, poststop).
pub fn run_all_warn(kind: Kind, hooks: Option<&Vec<Hook>>, state: &str) {
    if let Err(e) = run_all(kind, hooks, state) {
        tracing::warn!("{e}");
    }
}

/// Run one hook with `state` on its stdin.
pub fn run(hook: &Hook, state: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Output goes to a memfd: a chatty hook can't block on a full pipe while we wait for it.
    let out_fd = nix::sys::memfd::memfd_create(c"hook-output", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd_create: {e}"))?;
    let mut out_file = File::from(out_fd);
    let dup = |f: &File| f.try_clone().map_err(|e| format!("dup output fd: {e}"));
    cmd.stdin(Stdio::piped())
        .stdout(dup(&out_file)?)
        .stderr(dup(&out_file)?);
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that doesn't read its stdin is fine (EPIPE is ignored).
        let _ = stdin.write_all(state.as_bytes());
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let pid = Pid::from_raw(child.id() as i32);
    let exited = crate::process::wait_exit(pid, timeout);
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "timed out after {}s",
            timeout.map_or(0, |t| t.as_secs())
        ));
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let _ = out_file.seek(SeekFrom::Start(0));
    let _ = out_file.take(4096).read_to_string(&mut out);
    let out = out.trim();
    Err(format!(
        "{status}{}{out}",
        if out.is_empty() { "" } else { ": " }
    ))
}
