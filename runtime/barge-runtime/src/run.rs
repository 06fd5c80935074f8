//! `run`: create + start, then (in the foreground) forward signals, reap, and delete.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::container::{self, CreateOptions};
use crate::error::{Context, Result};
use crate::state::Store;
use crate::tty_proxy;

/// Signals `run` forwards to the container (everything a terminal or service manager sends).
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
];

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
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in FORWARDED {
        mask.add(*s);
    }
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old))
        .ctx(|| "block signals".into())?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "signalfd".into())?;

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
    let code = match (&master, &raw) {
        (Some(m), Some(raw)) => {
            let mut code = None;
            tty_proxy::pump(
                m,
                sfd.as_fd(),
                raw.is_tty(),
                || forward_pending(&sfd, init, Some(m)),
                || {
                    if code.is_none() {
                        code = reap(init);
                    }
                    code.is_some()
                },
            );
            code.unwrap_or_else(|| wait_forwarding(&sfd, init))
        }
        _ => wait_forwarding(&sfd, init),
    };
    drop(raw);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    container::delete(store, &opts.id, true)?;
    Ok(code)
}

fn wait_forwarding(sfd: &SignalFd, init: Pid) -> i32 {
    loop {
        if let Some(code) = reap(init) {
            return code;
        }
        let mut fds = [nix::poll::PollFd::new(
            sfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return 255,
        }
        forward_pending(sfd, init, None);
    }
}

/// Forward queued signals to the init; SIGWINCH resizes the pty instead when there is one.
fn forward_pending(sfd: &SignalFd, init: Pid, master: Option<&OwnedFd>) {
    while let Ok(Some(info)) = sfd.read_signal() {
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        match (sig, master) {
            (Signal::SIGCHLD, _) => {}
            (Signal::SIGWINCH, Some(m)) => tty_proxy::sync_size(m),
            _ => {
                let _ = kill(init, sig);
            }
        }
    }
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
