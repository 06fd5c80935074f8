//! Foreground `run` of a container with `process.terminal`: receive the pty master from the
//! init, put our terminal in raw mode, and copy bytes both ways until the container exits.

use std::io::{IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use crate::error::{Context, Error, Result};
use crate::sys;

/// Receive the pty master the init sent with SCM_RIGHTS.
pub fn recv_master(sock: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive the pty master".into())?;
    for c in msg.cmsgs().ctx(|| "read pty control message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                return Ok(sys::own_fd(*fd));
            }
        }
    }
    Err(Error::Container("the container sent no pty master".into()))
}

/// Our terminal in raw mode; restored on drop.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Raw mode on stdin if it is a terminal (a no-op otherwise).
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return Self { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        Self { saved: Some(saved) }
    }

    pub fn is_tty(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Copy our terminal size to the pty.
pub fn sync_size(master: &OwnedFd) {
    if let Ok((rows, cols)) = sys::get_winsize(0) {
        let _ = sys::set_winsize(master.as_raw_fd(), rows, cols);
    }
}

/// Copy stdin → master and master → stdout while data flows; returns when `done()` says the
/// container exited and its output is drained. `on_signal` handles readable `sigfd`.
pub fn pump(
    master: &OwnedFd,
    sigfd: BorrowedFd,
    stdin_is_tty: bool,
    on_signal: impl FnMut(),
    done: impl FnMut() -> bool,
) {
    pump_with(master, sigfd, stdin_is_tty, true, on_signal, done)
}

/// [`pump`], reading our stdin only with `read_stdin` (else the program's terminal gets no
/// input, as docker's `-t` without `-i`).
pub fn pump_with(
    master: &OwnedFd,
    sigfd: BorrowedFd,
    stdin_is_tty: bool,
    read_stdin: bool,
    mut on_signal: impl FnMut(),
    mut done: impl FnMut() -> bool,
) {
    let stdin = std::io::stdin();
    let mut stdin_open = read_stdin;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let exited = done();
        if exited && !master_open {
            return;
        }
        let mut fds = vec![
            PollFd::new(sigfd, PollFlags::POLLIN),
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // Once the container exited, only drain what is buffered.
        let timeout = if exited {
            PollTimeout::ZERO
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, master_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if sig_ready {
            on_signal();
        }
        if master_ready {
            match nix::unistd::read(master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => master_open = false,
                Ok(n) => {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
                Err(_) => {}
            }
        }
        if stdin_ready {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => {
                    stdin_open = false;
                    if !stdin_is_tty {
                        // End of piped input: let the program see EOF on its terminal.
                        let _ = nix::unistd::write(master, &[4]);
                    }
                }
                Ok(n) => {
                    let _ = nix::unistd::write(master, &buf[..n]);
                }
                Err(_) => {}
            }
        }
    }
}

/// The size (rows, columns) of the terminal on our stdin, if it is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    sys::get_winsize(0).ok()
}

/// Set the size of the terminal `fd` (a pty master: the container's side follows).
pub fn set_terminal_size(fd: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    sys::set_winsize(fd.as_raw_fd(), rows, cols).ctx(|| "set the terminal size".into())
}
