//! What foreground `run` and `exec` share: block the signals a terminal or service manager
//! sends and take them from a signalfd, then wait for the process while forwarding them (and
//! proxying its terminal, if we hold the pty master).

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::error::{Context, Result};
use crate::tty_proxy;

/// Signals forwarded to the process (everything a terminal or service manager sends).
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

/// How a foreground caller treats the signals it gets and its stdin.
#[derive(Debug, Clone, Copy)]
pub struct Foreground {
    /// Forward signals to the process (runc's behaviour). Without, a terminal's hangup,
    /// interrupt, quit or terminate signal makes the caller stop waiting and let go of the
    /// pty (docker's client with `-t`): the process gets the pty's hangup, nothing else.
    pub forward_signals: bool,
    /// Copy our stdin to the process's terminal (docker's `-i`).
    pub stdin: bool,
}

impl Default for Foreground {
    fn default() -> Self {
        Foreground {
            forward_signals: true,
            stdin: true,
        }
    }
}

/// The signals that end a caller that does not forward them.
const ENDING: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
];

/// SIGCHLD and the forwarded signals, blocked and read from a signalfd; the previous mask
/// comes back on drop.
pub(crate) struct Signals {
    pub sfd: SignalFd,
    old: SigSet,
}

impl Signals {
    pub fn block() -> Result<Signals> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        for s in FORWARDED {
            mask.add(*s);
        }
        let mut old = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old))
            .ctx(|| "block signals".into())?;
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .ctx(|| "signalfd".into());
        match sfd {
            Ok(sfd) => Ok(Signals { sfd, old }),
            Err(e) => {
                let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                Err(e)
            }
        }
    }

    /// Wait until `reap(pid)` gives an exit code, forwarding signals to `pid`; with a pty
    /// `master` and our terminal in `raw` mode, copy bytes both ways meanwhile.
    pub fn wait(
        &self,
        pid: Pid,
        terminal: Option<(&OwnedFd, &tty_proxy::RawMode)>,
        reap: fn(Pid) -> Option<i32>,
    ) -> i32 {
        self.wait_with(pid, terminal, reap, Foreground::default())
    }

    /// [`Signals::wait`] with a policy for signals and stdin. A caller that does not forward
    /// signals and holds the pty returns 128+N on an ending signal N, without waiting.
    pub fn wait_with(
        &self,
        pid: Pid,
        terminal: Option<(&OwnedFd, &tty_proxy::RawMode)>,
        reap: fn(Pid) -> Option<i32>,
        fg: Foreground,
    ) -> i32 {
        if let Some((m, raw)) = terminal {
            let mut code = None;
            let ended = std::cell::Cell::new(None);
            tty_proxy::pump_with(
                m,
                self.sfd.as_fd(),
                raw.is_tty(),
                fg.stdin,
                || {
                    if fg.forward_signals {
                        self.forward_pending(pid, Some(m));
                    } else if let Some(sig) = self.take_pending(Some(m)) {
                        ended.set(Some(128 + sig as i32));
                    }
                },
                || {
                    if code.is_none() {
                        code = reap(pid).or(ended.get());
                    }
                    code.is_some()
                },
            );
            if let Some(c) = code {
                return c;
            }
        }
        loop {
            if let Some(code) = reap(pid) {
                return code;
            }
            let mut fds = [nix::poll::PollFd::new(
                self.sfd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return 255,
            }
            self.forward_pending(pid, None);
        }
    }

    /// Read queued signals without forwarding them (SIGWINCH resizes the pty); the first
    /// ending signal among them, if any.
    fn take_pending(&self, master: Option<&OwnedFd>) -> Option<Signal> {
        let mut ending = None;
        while let Ok(Some(info)) = self.sfd.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            if sig == Signal::SIGWINCH {
                if let Some(m) = master {
                    tty_proxy::sync_size(m);
                }
            } else if ENDING.contains(&sig) && ending.is_none() {
                ending = Some(sig);
            }
        }
        ending
    }

    /// Forward queued signals to `pid`; SIGWINCH resizes the pty instead when we proxy one.
    fn forward_pending(&self, pid: Pid, master: Option<&OwnedFd>) {
        while let Ok(Some(info)) = self.sfd.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match (sig, master) {
                (Signal::SIGCHLD, _) => {}
                (Signal::SIGWINCH, Some(m)) => tty_proxy::sync_size(m),
                _ => {
                    let _ = kill(pid, sig);
                }
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}
