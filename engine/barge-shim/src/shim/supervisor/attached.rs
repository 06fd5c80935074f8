//! Attached execs (`exec-attach`): the shim relays an exec's output to the client that started
//! it (frames, as `attach` does for the container), the client's input to the exec's stdin,
//! and ends with the exec's exit code. Each runs in a [`Session`] of its own, served by the
//! same poll loop as the container, so the container and other clients are never held up.

use std::os::fd::AsFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::super::clients::{Client, Kind, OUT_HIGH_WATER};
use super::super::execs;
use super::{set_nonblocking, write_stdin, Run, Slot, Supervisor, DRAIN};
use crate::logs::Stream;
use crate::protocol;

/// One attached exec: its I/O (a [`Run`], as the container's) and its client, until the
/// client got the exit code or hung up.
pub struct Session {
    id: String,
    run: Run,
    /// None once it hung up.
    client: Option<Client>,
    stdout: bool,
    stderr: bool,
    exit_sent: bool,
}

impl Session {
    fn done(&self) -> bool {
        self.run.exit.is_some() && self.client.is_none()
    }
}

impl Supervisor {
    /// Start exec `id` for client `i` (which sent `exec-attach`) and move the client into
    /// the exec's session; a failure is answered `err CODE MESSAGE` and the client closed.
    pub(super) fn start_session(
        &mut self,
        run: &Run,
        i: usize,
        (id, size): (String, Option<(u16, u16)>),
        input: Vec<u8>,
        input_eof: bool,
    ) {
        let Some(Kind::ExecAttach {
            stdin,
            stdout,
            stderr,
        }) = self.clients.get(i).map(|c| c.kind)
        else {
            return;
        };
        let started = if run.pid == 0 || run.exit.is_some() {
            Err((125, format!("container {} is not running", self.cfg.id)))
        } else {
            execs::start_attached(&self.cfg, &id, stdin, size)
        };
        let Some(c) = self.clients.get_mut(i) else {
            return;
        };
        let (exec, io) = match started {
            Ok(s) => s,
            Err((code, msg)) => {
                c.push_raw(format!("err {code} {}\n", msg.replace('\n', " ")).as_bytes());
                c.closing = true;
                c.flush();
                return;
            }
        };
        c.push_raw(format!("ok {}\n", exec.state.pid).as_bytes());
        let client = c.hand_over().ok();
        if client.is_none() {
            // No descriptor left to serve it with: the client is as good as gone.
            c.closing = true;
        }
        let mut r = Run {
            pid: exec.state.pid,
            stdout: io.stdout,
            stderr: io.stderr,
            stdin: io.stdin,
            terminal: io.terminal,
            ..Run::idle()
        };
        for fd in [&r.stdout, &r.stderr, &r.stdin].into_iter().flatten() {
            let _ = set_nonblocking(fd.as_fd());
        }
        if r.stdin.is_some() {
            r.stdin_buf = input;
            write_stdin(&mut r);
        }
        r.close_stdin = input_eof;
        self.execs.push(exec);
        let mut s = Session {
            id,
            run: r,
            client,
            stdout,
            stderr,
            exit_sent: false,
        };
        match &mut s.client {
            Some(c) => c.flush(),
            // Hung up at once (see `tend_sessions`).
            None => {
                let _ = kill(Pid::from_raw(s.run.pid), Signal::SIGHUP);
                s.run.stdout = None;
                s.run.stderr = None;
                s.run.stdin = None;
            }
        }
        self.sessions.push(s);
    }

    /// `exec-resize ID ROWS COLS`: the answer line.
    pub(super) fn resize_session(&self, id: &str, rows: u16, cols: u16) -> String {
        let master = self
            .sessions
            .iter()
            .find(|s| s.id == id && s.run.terminal && s.run.exit.is_none())
            .and_then(|s| s.run.stdout.as_ref());
        match master {
            Some(fd) => match barge_runtime::tty_proxy::set_terminal_size(fd, rows, cols) {
                Ok(()) => "ok\n".into(),
                Err(e) => format!("err 125 exec {id}: {e}\n"),
            },
            None => format!("err 125 no running exec {id} with a terminal\n"),
        }
    }

    /// The descriptors the sessions wait on.
    pub(super) fn poll_sessions<'a>(&'a self, slots: &mut Vec<Slot>, fds: &mut Vec<PollFd<'a>>) {
        for (i, s) in self.sessions.iter().enumerate() {
            let r = &s.run;
            let backpressure = s
                .client
                .as_ref()
                .is_some_and(|c| c.pending_out() > OUT_HIGH_WATER);
            if !backpressure {
                if let Some(fd) = &r.stdout {
                    slots.push(Slot::ExecOut(i, Stream::Stdout));
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
                if let Some(fd) = &r.stderr {
                    slots.push(Slot::ExecOut(i, Stream::Stderr));
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
            }
            if let (Some(fd), false) = (&r.stdin, r.stdin_buf.is_empty()) {
                slots.push(Slot::ExecStdin(i));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            }
            if let Some(c) = &s.client {
                let mut ev = PollFlags::empty();
                if !c.input_closed && r.stdin_buf.len() <= OUT_HIGH_WATER {
                    ev |= PollFlags::POLLIN;
                }
                if c.pending_out() > 0 {
                    ev |= PollFlags::POLLOUT;
                }
                slots.push(Slot::ExecClient(i));
                fds.push(PollFd::new(c.sock.as_fd(), ev));
            }
        }
    }

    /// The earliest time a session must be looked at again (its output drain ends).
    pub(super) fn sessions_deadline(&self) -> Option<Instant> {
        self.sessions
            .iter()
            .filter(|s| !s.exit_sent)
            .filter_map(|s| s.run.deadline)
            .min()
    }

    /// Output of session `i`'s process: frames to its client.
    pub(super) fn on_exec_output(&mut self, i: usize, stream: Stream) {
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        let fd = match stream {
            Stream::Stdout => &mut s.run.stdout,
            Stream::Stderr => &mut s.run.stderr,
        };
        let Some(f) = fd else { return };
        let mut buf = [0u8; 32768];
        let n = match nix::unistd::read(&*f, &mut buf) {
            Ok(n) => n,
            Err(Errno::EAGAIN | Errno::EINTR) => return,
            // EIO: the pty's other side is closed.
            Err(_) => 0,
        };
        if n == 0 {
            *fd = None;
            return;
        }
        // With a terminal everything is stdout (docker's stream 1).
        let (id, wanted) = match stream {
            Stream::Stdout => (protocol::STDOUT, s.stdout),
            Stream::Stderr => (protocol::STDERR, s.stderr),
        };
        if let (Some(c), true) = (&mut s.client, wanted) {
            c.push_frame(id, &buf[..n]);
            c.flush();
        }
    }

    pub(super) fn on_exec_stdin(&mut self, i: usize) {
        if let Some(s) = self.sessions.get_mut(i) {
            write_stdin(&mut s.run);
        }
    }

    pub(super) fn on_exec_client(&mut self, i: usize, rev: PollFlags) {
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        let Some(c) = &mut s.client else { return };
        if rev.contains(PollFlags::POLLOUT) {
            c.flush();
        }
        if rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let inc = c.read();
            if !inc.input.is_empty() && s.run.stdin.is_some() {
                s.run.stdin_buf.extend_from_slice(&inc.input);
                write_stdin(&mut s.run);
            }
            if inc.input_eof {
                s.run.close_stdin = true;
            }
        }
        if rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            c.dead = true;
        }
    }

    /// After a poll round: close input that ended, hang up the process of a client that went,
    /// send the exit code of a process that exited and whose output is drained, forget
    /// sessions that are over.
    pub(super) fn tend_sessions(&mut self) {
        for s in &mut self.sessions {
            let r = &mut s.run;
            if r.close_stdin && r.stdin_buf.is_empty() && !r.terminal {
                r.stdin = None;
            }
            if s.client.as_ref().is_some_and(|c| c.dead) {
                s.client = None;
                if r.exit.is_none() && !s.exit_sent {
                    // Nobody reads its output or types its input any more: a hangup, as a
                    // closed terminal gives (the pid is our unreaped child: not reused).
                    let _ = kill(Pid::from_raw(r.pid), Signal::SIGHUP);
                }
                r.stdout = None;
                r.stderr = None;
                r.stdin = None;
                r.stdin_buf.clear();
            }
            // The drain deadline runs only while the client takes its output: a slow client
            // loses nothing.
            if r.deadline.is_some()
                && s.client
                    .as_ref()
                    .is_some_and(|c| c.pending_out() > OUT_HIGH_WATER)
            {
                r.deadline = Some(Instant::now() + DRAIN);
            }
            if !s.exit_sent && r.finished() {
                s.exit_sent = true;
                r.stdout = None;
                r.stderr = None;
                r.stdin = None;
                if let (Some(c), Some(code)) = (&mut s.client, r.exit) {
                    c.push_frame(protocol::EXIT, code.to_string().as_bytes());
                    c.closing = true;
                    c.flush();
                }
            }
            if s.client.as_ref().is_some_and(|c| c.dead) {
                s.client = None;
            }
        }
        self.sessions.retain(|s| !s.done());
    }

    /// An exec process was reaped: its session (if any) ends once its output is drained.
    pub(super) fn session_reaped(&mut self, pid: i32, code: i32) {
        if let Some(s) = self
            .sessions
            .iter_mut()
            .find(|s| s.run.pid == pid && s.run.exit.is_none())
        {
            s.run.exit = Some(code);
            s.run.deadline = Some(Instant::now() + DRAIN);
            // Nobody will read its stdin any more (a pty's master stays: it is the output).
            if !s.run.terminal {
                s.run.stdin = None;
            }
            s.run.stdin_buf.clear();
        }
    }

    /// Whether attached execs are still being served.
    pub(super) fn has_sessions(&self) -> bool {
        !self.sessions.is_empty()
    }
}
