//! The shim's event loop: container output to the log and attached clients, client input to
//! the container, reaping, exit recording and the restart policy.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

mod attached;

use super::clients::{Client, Kind, OUT_HIGH_WATER};
use super::launch::Stdio;
use crate::config::ShimConfig;
use crate::logs::{LogWriter, Stream};
use crate::protocol::{self, Request};
use crate::state::{self, ShimState, Status};

/// How long output is still collected after the init exited (processes outside the
/// container's pid namespace may hold its pipes).
const DRAIN: Duration = Duration::from_secs(2);

pub struct Supervisor {
    pub cfg: ShimConfig,
    pub listener: UnixListener,
    pub clients: Vec<Client>,
    pub sfd: SignalFd,
    pub log: LogWriter,
    pub state: ShimState,
    /// A `wake` request arrived (the stop marker may have appeared).
    woken: bool,
    /// Execs started and not reaped yet.
    execs: Vec<super::execs::Running>,
    /// Attached execs and their clients.
    sessions: Vec<attached::Session>,
    /// The health check, when the container has one.
    health: Option<super::prober::Prober>,
}

/// The I/O of one run of the container.
struct Run {
    pid: i32,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    terminal: bool,
    stdin_buf: Vec<u8>,
    close_stdin: bool,
    exit: Option<i32>,
    deadline: Option<Instant>,
}

impl Run {
    fn idle() -> Run {
        Run {
            pid: 0,
            stdout: None,
            stderr: None,
            stdin: None,
            terminal: false,
            stdin_buf: Vec::new(),
            close_stdin: false,
            exit: None,
            deadline: None,
        }
    }

    fn finished(&self) -> bool {
        self.exit.is_some()
            && ((self.stdout.is_none() && self.stderr.is_none())
                || self.deadline.is_some_and(|d| Instant::now() >= d))
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Signal,
    Listener,
    Out(Stream),
    Stdin,
    Client(usize),
    /// An attached exec's output, stdin, client (by session).
    ExecOut(usize, Stream),
    ExecStdin(usize),
    ExecClient(usize),
    /// The health check's probe output.
    Probe,
}

fn cfg_health(cfg: &ShimConfig) -> Option<super::prober::Prober> {
    let probe = cfg.health.clone()?;
    Some(super::prober::Prober::new(cfg, probe))
}

impl Supervisor {
    pub fn new(
        cfg: ShimConfig,
        listener: UnixListener,
        sfd: SignalFd,
        log: LogWriter,
        state: ShimState,
    ) -> Supervisor {
        Supervisor {
            listener,
            clients: Vec::new(),
            sfd,
            log,
            state,
            woken: false,
            execs: Vec::new(),
            sessions: Vec::new(),
            health: cfg_health(&cfg),
            cfg,
        }
    }

    pub fn save_state(&self) {
        // A state that can't be written is reported by whoever reads the stale one; the
        // container keeps running either way.
        let _ = state::save(&self.cfg.state, &self.state);
    }

    /// Serve one run of the container until it exited and its output is drained; returns
    /// its exit code (128+N when killed by signal N).
    pub fn serve(&mut self, pid: i32, stdio: Stdio) -> i32 {
        let mut run = Run {
            pid,
            stdout: stdio.stdout,
            stderr: stdio.stderr,
            stdin: stdio.stdin,
            terminal: stdio.terminal,
            ..Run::idle()
        };
        for fd in [&run.stdout, &run.stderr, &run.stdin].into_iter().flatten() {
            let _ = set_nonblocking(fd.as_fd());
        }
        if let Some(h) = &mut self.health {
            h.begin(&self.cfg);
        }
        while !run.finished() {
            let timeout = run
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            self.step(&mut run, timeout);
        }
        if let Some(h) = &mut self.health {
            h.end();
        }
        let code = run.exit.unwrap_or(255);
        let _ = self.log.flush_partial();
        code
    }

    /// Wait `delay` (the restart backoff) while serving clients; returns early when woken.
    pub fn idle(&mut self, delay: Duration) {
        let end = Instant::now() + delay;
        let mut run = Run::idle();
        self.woken = false;
        while !self.woken {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.step(&mut run, Some(left));
        }
    }

    /// Tell clients the container exited: attached ones get an EXIT frame and are closed,
    /// waiters get the code. Waits up to two seconds for them to take their output.
    pub fn announce_exit(&mut self, code: i32) {
        for c in &mut self.clients {
            match c.kind {
                Kind::Attach { .. } => {
                    c.push_frame(protocol::EXIT, code.to_string().as_bytes());
                    c.closing = true;
                }
                Kind::Wait => {
                    c.push_raw(format!("{code}\n").as_bytes());
                    c.closing = true;
                }
                Kind::Pending | Kind::ExecAttach { .. } => {}
            }
        }
        let end = Instant::now() + Duration::from_secs(2);
        loop {
            for c in &mut self.clients {
                c.flush();
            }
            self.clients.retain(|c| !c.dead);
            let busy: Vec<usize> = (0..self.clients.len())
                .filter(|i| self.clients[*i].pending_out() > 0)
                .collect();
            let left = end.saturating_duration_since(Instant::now());
            if busy.is_empty() || left.is_zero() {
                break;
            }
            let mut fds: Vec<PollFd> = busy
                .iter()
                .map(|i| PollFd::new(self.clients[*i].sock.as_fd(), PollFlags::POLLOUT))
                .collect();
            let _ = poll(&mut fds, timeout_of(Some(left)));
        }
        self.clients.retain(|c| c.kind == Kind::Pending);
    }

    /// Close every client (the shim is leaving), after up to two seconds for attached execs
    /// to end (they die with the container's pid namespace) and their clients to get their
    /// exit codes.
    pub fn close_all(&mut self) {
        let end = Instant::now() + DRAIN;
        let mut run = Run::idle();
        while self.has_sessions() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.step(&mut run, Some(left));
        }
        self.sessions.clear();
        self.clients.clear();
    }

    fn step(&mut self, run: &mut Run, timeout: Option<Duration>) {
        let backpressure = self
            .clients
            .iter()
            .any(|c| c.pending_out() > OUT_HIGH_WATER);
        let stdin_full = run.stdin_buf.len() > OUT_HIGH_WATER;
        let mut slots = vec![Slot::Signal, Slot::Listener];
        let mut fds = vec![
            PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
        ];
        if !backpressure {
            if let Some(fd) = &run.stdout {
                slots.push(Slot::Out(Stream::Stdout));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            if let Some(fd) = &run.stderr {
                slots.push(Slot::Out(Stream::Stderr));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        if let (Some(fd), false) = (&run.stdin, run.stdin_buf.is_empty()) {
            slots.push(Slot::Stdin);
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
        }
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev = PollFlags::empty();
            if !c.input_closed && !stdin_full {
                ev |= PollFlags::POLLIN;
            }
            if c.pending_out() > 0 {
                ev |= PollFlags::POLLOUT;
            }
            slots.push(Slot::Client(i));
            fds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        self.poll_sessions(&mut slots, &mut fds);
        if let Some(fd) = self.health.as_ref().and_then(|h| h.output_fd()) {
            slots.push(Slot::Probe);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let health_deadline = self.health.as_ref().and_then(|h| h.deadline());
        let timeout = [self.sessions_deadline(), health_deadline]
            .into_iter()
            .flatten()
            .fold(timeout, |t, d| {
                let left = d.saturating_duration_since(Instant::now());
                Some(t.map_or(left, |t| t.min(left)))
            });
        match poll(&mut fds, timeout_of(timeout)) {
            Ok(0) | Err(Errno::EINTR) => {
                drop(fds);
                self.tend_sessions();
                self.tend_health(run);
                return;
            }
            Ok(_) => {}
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
        let ready: Vec<(Slot, PollFlags)> = slots
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);
        for (slot, rev) in ready {
            match slot {
                Slot::Signal => self.on_signal(run),
                Slot::Listener => self.accept(),
                Slot::Out(s) => self.on_output(run, s),
                Slot::Stdin => write_stdin(run),
                Slot::Client(i) => self.on_client(run, i, rev),
                Slot::ExecOut(i, s) => self.on_exec_output(i, s),
                Slot::ExecStdin(i) => self.on_exec_stdin(i),
                Slot::ExecClient(i) => self.on_exec_client(i, rev),
                Slot::Probe => {
                    if let Some(h) = &mut self.health {
                        h.on_output();
                    }
                }
            }
        }
        self.clients.retain(|c| !c.dead);
        self.tend_sessions();
        self.tend_health(run);
        if run.close_stdin && run.stdin_buf.is_empty() && !run.terminal {
            run.stdin = None;
        }
    }

    fn on_signal(&mut self, run: &mut Run) {
        while let Ok(Some(_)) = self.sfd.read_signal() {}
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) => self.reaped(run, p, code),
                Ok(WaitStatus::Signaled(p, sig, _)) => self.reaped(run, p, 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Start, time out or record the health check's probe (probes only while the container
    /// runs).
    fn tend_health(&mut self, run: &Run) {
        let runs = run.pid != 0 && run.exit.is_none();
        if let Some(h) = &mut self.health {
            h.tend(&self.cfg, runs);
        }
    }

    fn reaped(&mut self, run: &mut Run, pid: Pid, code: i32) {
        if let Some(h) = &mut self.health {
            if h.reaped(pid.as_raw(), code) {
                return;
            }
        }
        if let Some(i) = self.execs.iter().position(|e| e.state.pid == pid.as_raw()) {
            let mut e = self.execs.swap_remove(i);
            super::execs::finished(&self.cfg, &mut e, code);
            self.session_reaped(pid.as_raw(), code);
            return;
        }
        if run.pid != 0 && pid.as_raw() == run.pid && run.exit.is_none() {
            run.exit = Some(code);
            run.deadline = Some(Instant::now() + DRAIN);
            // Nobody will read the container's stdin any more.
            run.stdin = None;
            run.stdin_buf.clear();
        }
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            if let Ok(c) = Client::new(sock) {
                self.clients.push(c);
            }
        }
    }

    fn on_output(&mut self, run: &mut Run, stream: Stream) {
        let fd = match stream {
            Stream::Stdout => &run.stdout,
            Stream::Stderr => &run.stderr,
        };
        let Some(fd) = fd else { return };
        let mut buf = [0u8; 32768];
        let n = match nix::unistd::read(fd, &mut buf) {
            Ok(n) => n,
            Err(Errno::EAGAIN | Errno::EINTR) => return,
            // EIO: the pty's other side is closed.
            Err(_) => 0,
        };
        if n == 0 {
            match stream {
                Stream::Stdout => run.stdout = None,
                Stream::Stderr => run.stderr = None,
            }
            return;
        }
        let data = &buf[..n];
        let _ = self.log.write(stream, data);
        let id = match stream {
            Stream::Stdout => protocol::STDOUT,
            Stream::Stderr => protocol::STDERR,
        };
        for c in &mut self.clients {
            if c.wants_stream(id) {
                c.push_frame(id, data);
                c.flush();
            }
        }
    }

    fn on_client(&mut self, run: &mut Run, i: usize, rev: PollFlags) {
        let Some(c) = self.clients.get_mut(i) else {
            return;
        };
        if rev.contains(PollFlags::POLLOUT) {
            c.flush();
        }
        if rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let inc = c.read();
            if let Some(Request::ExecAttach { id, size, .. }) = inc.request {
                self.start_session(run, i, (id, size), inc.input, inc.input_eof);
                return;
            }
            // Only the container's own attached clients give it input.
            let container_input = matches!(c.kind, Kind::Attach { .. });
            if container_input && !inc.input.is_empty() && run.stdin.is_some() {
                run.stdin_buf.extend_from_slice(&inc.input);
                write_stdin(run);
            }
            if container_input && inc.input_eof {
                run.close_stdin = true;
            }
            match inc.request {
                Some(Request::Resize { rows, cols }) => {
                    if let (true, Some(fd)) = (run.terminal, &run.stdout) {
                        let _ = barge_runtime::tty_proxy::set_terminal_size(fd, rows, cols);
                    }
                    c.push_raw(b"ok\n");
                    c.closing = true;
                }
                Some(Request::Exec { id }) => {
                    // Only while the container runs (not during a restart delay).
                    let answer = if run.pid == 0 || run.exit.is_some() {
                        format!("err 125 container {} is not running\n", self.cfg.id)
                    } else {
                        match super::execs::start(&self.cfg, &id) {
                            Ok(e) => {
                                let line = format!("ok {}\n", e.state.pid);
                                self.execs.push(e);
                                line
                            }
                            Err((code, msg)) => {
                                format!("err {code} {}\n", msg.replace('\n', " "))
                            }
                        }
                    };
                    // `self.clients[i]` again: starting the exec borrowed all of `self`.
                    if let Some(c) = self.clients.get_mut(i) {
                        c.push_raw(answer.as_bytes());
                        c.closing = true;
                        c.flush();
                    }
                    return;
                }
                Some(Request::ExecResize { id, rows, cols }) => {
                    let answer = self.resize_session(&id, rows, cols);
                    if let Some(c) = self.clients.get_mut(i) {
                        c.push_raw(answer.as_bytes());
                        c.closing = true;
                        c.flush();
                    }
                    return;
                }
                Some(Request::ReopenLog) => {
                    let answer = match self.log.reopen() {
                        Ok(()) => "ok\n".to_string(),
                        Err(e) => format!("err {}\n", e.to_string().replace('\n', " ")),
                    };
                    if let Some(c) = self.clients.get_mut(i) {
                        c.push_raw(answer.as_bytes());
                        c.closing = true;
                        c.flush();
                    }
                    return;
                }
                Some(Request::Wake) => {
                    self.woken = true;
                    c.push_raw(b"ok\n");
                    c.closing = true;
                }
                Some(Request::Wait) if run.pid == 0 && self.state.status == Status::Exited => {
                    let code = self.state.exit_code.unwrap_or(255);
                    c.push_raw(format!("{code}\n").as_bytes());
                    c.closing = true;
                }
                _ => {}
            }
            c.flush();
        }
        // Hung up: the peer closed its socket (a client that only shut down its writing
        // side still reads and gets no POLLHUP). Nothing can reach it any more, and poll
        // reports POLLHUP whatever events are asked for: keeping it would spin the shim.
        if rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            c.dead = true;
        }
    }
}

fn write_stdin(run: &mut Run) {
    let Some(fd) = &run.stdin else {
        run.stdin_buf.clear();
        return;
    };
    while !run.stdin_buf.is_empty() {
        match nix::unistd::write(fd, &run.stdin_buf) {
            Ok(n) => {
                run.stdin_buf.drain(..n);
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return,
            Err(_) => {
                // The container closed its stdin.
                run.stdin_buf.clear();
                run.stdin = None;
                return;
            }
        }
    }
}

fn set_nonblocking(fd: BorrowedFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

fn timeout_of(d: Option<Duration>) -> PollTimeout {
    match d {
        None => PollTimeout::NONE,
        Some(d) => {
            PollTimeout::try_from(d.as_millis().min(60_000) as i32 + 1).unwrap_or(PollTimeout::MAX)
        }
    }
}

impl Supervisor {
    /// Serve a connection the caller handed over at startup.
    /// Its request line is read right away (it was written before the shim started), so
    /// the client gets the container's output from the first byte.
    pub fn adopt(&mut self, sock: std::os::unix::net::UnixStream) {
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        if let Ok(mut c) = Client::new_blocking(sock) {
            let _ = c.read_request();
            if c.sock.set_nonblocking(true).is_ok() && !c.dead {
                self.clients.push(c);
            }
        }
    }
}
