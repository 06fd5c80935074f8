//! `run`: create + start, then (in the foreground) forward signals, reap, and delete.

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::container::{self, CreateOptions};
use crate::error::{Context, Result};
use crate::foreground::Signals;
use crate::state::Store;
use crate::tty_proxy;

/// Create and start a container. With `detach`, return once it runs (exit code 0); otherwise
/// wait for it, delete it, and return its exit code (128+N if killed by signal N).
pub fn run(store: &Store, opts: &CreateOptions, detach: bool) -> Result<i32> {
    if detach {
        container::create(store, opts)?;
        if let Err(e) = container::start(store, &opts.id) {
            let _ = container::delete(store, &opts.id, true);
            return Err(e);
        }
        return Ok(0);
    }
    // The init is forked by an intermediate process that exits: become its reaper.
    nix::sys::prctl::set_child_subreaper(true).ctx(|| "become child subreaper".into())?;
    let signals = Signals::block()?;

    // A terminal and nobody to hand it to: proxy it ourselves, as `runc run` does.
    let mut opts = opts.clone();
    let console_peer = if opts.console_socket.is_none() && wants_terminal(&opts.bundle) {
        let (ours, theirs) = UnixStream::pair().ctx(|| "console socketpair".into())?;
        opts.console_fd = Some(Arc::new(theirs.into()));
        Some(ours)
    } else {
        None
    };
    let st = container::create(store, &opts)?;
    let master = match console_peer
        .as_ref()
        .map(tty_proxy::recv_master)
        .transpose()
    {
        Ok(m) => m,
        Err(e) => {
            let _ = container::delete(store, &opts.id, true);
            return Err(e);
        }
    };
    let raw = master.as_ref().map(|m| {
        tty_proxy::sync_size(m);
        tty_proxy::RawMode::enter()
    });
    if let Err(e) = container::start(store, &opts.id) {
        drop(raw);
        let _ = container::delete(store, &opts.id, true);
        return Err(e);
    }
    let init = Pid::from_raw(st.pid);
    let terminal = master.as_ref().zip(raw.as_ref());
    let code = signals.wait(init, terminal, reap);
    drop(raw);
    drop(signals);
    container::delete(store, &opts.id, true)?;
    Ok(code)
}

/// Whether the bundle's config asks for a terminal (read before `create` parses it fully).
fn wants_terminal(bundle: &std::path::Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["process"]["terminal"].as_bool())
        .unwrap_or(false)
}

/// Reap every exited child; the init's exit code once it is among them.
fn reap(init: Pid) -> Option<i32> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => return Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}
