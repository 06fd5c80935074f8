//! `run`: create + start, then (in the foreground) forward signals, reap, and delete.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::container::{self, CreateOptions};
use crate::error::{Context, Result};
use crate::state::Store;

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

    let st = container::create(store, opts)?;
    if let Err(e) = container::start(store, &opts.id) {
        let _ = container::delete(store, &opts.id, true);
        return Err(e);
    }
    let init = Pid::from_raw(st.pid);
    let code = wait_forwarding(&sfd, init);
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
        while let Ok(Some(info)) = sfd.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            if sig != Signal::SIGCHLD {
                let _ = kill(init, sig);
            }
        }
    }
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
