//! The `barge-shim` process: detach from the caller, start the container, serve it until it is
//! finished for good, then clean up after it.
//!
//! Usage: `barge-shim SHIM_JSON [--attach-fd N]`. The caller reads one line from the shim's
//! stdout: `ok PID` once the container runs, or `err CODE MESSAGE` (CODE: 127 program not
//! found, 126 not executable, 125 any other failure; the container's state already says
//! exited when the line is written); the shim then closes its stdout.
//!
//! The shim appends the container's `start`, `oom`, `die` (with `exitCode`), `restart` and
//! `health_status` events to the store's journal (see `barge_events`), and runs the
//! container's health check while it runs (`prober`).
//! With `--attach-fd`, descriptor N is a connected socket served like any client of the
//! shim's socket (the caller has already written its request line into it).

mod clients;
mod events;
mod execs;
mod launch;
mod prober;
mod supervisor;
#[allow(unsafe_code)] // the crate's one syscall-facing module
mod sys;

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::ForkResult;

use barge_events::Action;

use crate::config::ShimConfig;
use crate::logs::{LogConfig, LogWriter};
use crate::state::{ShimState, Status};
use supervisor::Supervisor;

/// First restart delay, doubled after each restart up to [`MAX_DELAY`]; back to the first
/// after a run of at least [`RESET_AFTER`] (docker's values).
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
const RESET_AFTER: Duration = Duration::from_secs(10);

pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: barge-shim SHIM_JSON [--attach-fd N]");
        return 2;
    };
    let cfg = match ShimConfig::load(Path::new(path)) {
        Ok(c) => c,
        Err(e) => {
            println!("err {START_FAILED_REPLY} {e}");
            return 1;
        }
    };
    // The port sockets come first on stdin, before an attach request on the same socket.
    let passed = match receive_held(cfg.held_passed) {
        Ok(v) => v,
        Err(e) => {
            println!("err {START_FAILED_REPLY} {e}");
            return 2;
        }
    };
    let attach = match (args.get(2).map(String::as_str), args.get(3)) {
        (Some("--attach-fd"), Some(n)) => match n.parse::<i32>() {
            Ok(fd) if fd >= 0 && sys::fd_is_open(fd) => match take_fd(fd) {
                Ok(s) => Some(s),
                Err(e) => {
                    println!("err {START_FAILED_REPLY} --attach-fd {n}: {e}");
                    return 2;
                }
            },
            _ => {
                println!("err {START_FAILED_REPLY} --attach-fd {n}: not an open descriptor");
                return 2;
            }
        },
        _ => None,
    };
    if cfg.held_passed > 0 && attach.is_none() {
        // stdin was only the socket the ports came on.
        if let Err(e) = null_stdin() {
            println!("err {START_FAILED_REPLY} {e}");
            return 2;
        }
    }
    let held = match adopt_held(&cfg.held_fds) {
        Ok(mut h) => {
            h.extend(passed);
            h
        }
        Err(e) => {
            println!("err {START_FAILED_REPLY} {e}");
            return 2;
        }
    };
    // Detach: the caller's child exits at once; the grandchild is the shim.
    match sys::fork() {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            println!("err {START_FAILED_REPLY} fork the shim: {e}");
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    match setup(&cfg) {
        Ok((listener, sfd)) => serve(cfg, listener, sfd, attach, held),
        Err(e) => {
            println!("err {START_FAILED_REPLY} {e}");
            1
        }
    }
}

/// Receive `n` port sockets sent on stdin with SCM_RIGHTS (one byte per message, at most
/// [`MAX_FDS_PER_MESSAGE`] descriptors each), close-on-exec.
fn receive_held(n: usize) -> Result<Vec<std::os::fd::OwnedFd>, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut out = Vec::new();
    while out.len() < n {
        let mut byte = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; MAX_FDS_PER_MESSAGE]);
        let msg = recvmsg::<()>(0, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| format!("receive the published ports' sockets on stdin: {e}"))?;
        if msg.bytes == 0 {
            return Err(format!(
                "receive the published ports' sockets on stdin: got {} of {n}",
                out.len()
            ));
        }
        let mut got = 0;
        for c in msg
            .cmsgs()
            .map_err(|e| format!("receive the published ports' sockets: {e}"))?
        {
            if let ControlMessageOwned::ScmRights(fds) = c {
                got += fds.len();
                out.extend(fds.into_iter().map(sys::adopt_fd));
            }
        }
        if got == 0 {
            return Err("receive the published ports' sockets: a message without any".into());
        }
    }
    Ok(out)
}

/// Most descriptors one SCM_RIGHTS message carries (the kernel's SCM_MAX_FD is 253).
pub const MAX_FDS_PER_MESSAGE: usize = 200;

/// Point stdin at /dev/null.
fn null_stdin() -> Result<(), String> {
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| format!("dup2 /dev/null to stdin: {e}"))
}

/// Own the descriptors that hold the published ports, close-on-exec (the container and the
/// exit command must not inherit them).
fn adopt_held(fds: &[i32]) -> Result<Vec<std::os::fd::OwnedFd>, String> {
    let mut out = Vec::new();
    for &fd in fds {
        if fd <= 2
            || !sys::fd_is_open(fd)
            || out
                .iter()
                .any(|o: &std::os::fd::OwnedFd| std::os::fd::AsRawFd::as_raw_fd(o) == fd)
        {
            return Err(format!("held port descriptor {fd}: not an open descriptor"));
        }
        let owned = sys::adopt_fd(fd);
        nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| format!("held port descriptor {fd}: {e}"))?;
        out.push(owned);
    }
    Ok(out)
}

/// Move an inherited descriptor (possibly stdin) to a close-on-exec one; a standard
/// descriptor is pointed at /dev/null instead.
fn take_fd(fd: i32) -> Result<UnixStream, String> {
    let owned = sys::adopt_fd(fd);
    let moved = nix::fcntl::fcntl(&owned, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| format!("dup: {e}"))?;
    let moved = sys::adopt_fd(moved);
    if fd <= 2 {
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("open /dev/null: {e}"))?;
        let mut owned = owned;
        nix::unistd::dup2(&null, &mut owned).map_err(|e| format!("dup2: {e}"))?;
        std::mem::forget(owned);
    }
    Ok(UnixStream::from(moved))
}

fn setup(cfg: &ShimConfig) -> Result<(UnixListener, SignalFd), String> {
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("become subreaper: {e}"))?;
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| format!("block signals: {e}"))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    if let Some(dir) = cfg.socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    let listener = UnixListener::bind(&cfg.socket)
        .map_err(|e| format!("listen on {}: {e}", cfg.socket.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listen on {}: {e}", cfg.socket.display()))?;
    Ok((listener, sfd))
}

fn serve(
    cfg: ShimConfig,
    listener: UnixListener,
    sfd: SignalFd,
    attach: Option<UnixStream>,
    mut held: Vec<std::os::fd::OwnedFd>,
) -> i32 {
    let log_cfg = LogConfig {
        max_size: cfg.log_max_size,
        max_files: cfg.log_max_files.max(1),
    };
    let log = match LogWriter::open(&cfg.log, log_cfg) {
        Ok(l) => l,
        Err(e) => {
            println!(
                "err {START_FAILED_REPLY} open log {}: {e}",
                cfg.log.display()
            );
            return 1;
        }
    };
    let me = std::process::id() as i32;
    let state = ShimState {
        status: Status::Starting,
        shim_pid: me,
        shim_start: barge_util::process::start_time(me).unwrap_or(0),
        ..Default::default()
    };
    let mut sup = Supervisor::new(cfg, listener, sfd, log, state);
    if let Some(sock) = attach {
        sup.adopt(sock);
    }
    sup.save_state();
    let mut reported = false;
    let mut delay = FIRST_DELAY;
    loop {
        let started = Instant::now();
        let code = match launch::launch(&sup.cfg) {
            Ok((pid, stdio)) => {
                sup.state.status = Status::Running;
                sup.state.pid = pid;
                sup.state.started_at = Some(barge_util::time::now_rfc3339());
                sup.state.error = None;
                sup.state.oom_killed = false;
                sup.save_state();
                // The OOM-kill counter after the run. Its cgroup is made by this launch's
                // create and removed by the delete below, so every kill it counts is this run's;
                // a baseline read here would miss a kill in the container's first milliseconds
                // (the process already runs).
                let oom_file = events::oom_counter_file(&sup.cfg);
                events::emit(&sup.cfg, Action::Start, &[]);
                if !reported {
                    report(&format!("ok {pid}"));
                    reported = true;
                }
                let code = sup.serve(pid, stdio);
                sup.state.oom_killed = events::oom_kills(oom_file.as_ref()) > 0;
                delete_runtime_container(&sup.cfg);
                code
            }
            Err((code, e)) => {
                sup.state.error = Some(e.clone());
                if !reported {
                    // The caller sees the error; no restart for a container that never ran.
                    // Recorded before the answer: the caller acts on an exited container.
                    held.clear();
                    sup.state.status = Status::Exited;
                    sup.state.exit_code = Some(code);
                    sup.state.finished_at = Some(barge_util::time::now_rfc3339());
                    sup.save_state();
                    events::emit(&sup.cfg, Action::Die, &[("exitCode", code.to_string())]);
                    report(&format!(
                        "err {} {}",
                        reply_code(code),
                        e.replace('\n', " ")
                    ));
                    sup.announce_exit(code);
                    break;
                }
                code
            }
        };
        let stopped = sup.cfg.stop_marker.exists();
        let again = sup
            .cfg
            .restart
            .should_restart(code, sup.state.restart_count, stopped);
        sup.state.pid = 0;
        sup.state.exit_code = Some(code);
        sup.state.finished_at = Some(barge_util::time::now_rfc3339());
        sup.state.status = if again {
            Status::Restarting
        } else {
            // The ports are free once the exit is seen (a `start` right after binds them).
            held.clear();
            Status::Exited
        };
        sup.save_state();
        if sup.state.oom_killed {
            events::emit(&sup.cfg, Action::Oom, &[]);
        }
        events::emit(&sup.cfg, Action::Die, &[("exitCode", code.to_string())]);
        sup.announce_exit(code);
        if !again {
            break;
        }
        if started.elapsed() >= RESET_AFTER {
            delay = FIRST_DELAY;
        }
        sup.idle(delay);
        delay = (delay * 2).min(MAX_DELAY);
        if sup.cfg.stop_marker.exists() {
            held.clear();
            sup.state.status = Status::Exited;
            sup.save_state();
            break;
        }
        sup.state.restart_count += 1;
        events::emit(&sup.cfg, Action::Restart, &[]);
    }
    sup.close_all();
    finish(&sup.cfg);
    0
}

/// The code of an `err` answer for a start that failed with exit code `code`: 127 (program
/// not found) and 126 (not executable) as they are, 125 for any other failure.
pub const START_FAILED_REPLY: i32 = 125;

fn reply_code(code: i32) -> i32 {
    if code == 126 || code == 127 {
        code
    } else {
        START_FAILED_REPLY
    }
}

/// Write the caller's one line and let go of its pipe.
fn report(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// Remove the runtime's record of the finished container (in a child, like create).
fn delete_runtime_container(cfg: &ShimConfig) {
    match sys::fork() {
        Ok(ForkResult::Child) => {
            let ok = barge_runtime::Store::open(&cfg.runtime_root)
                .and_then(|s| barge_runtime::container::delete(&s, &cfg.id, true))
                .is_ok();
            sys::exit_now(if ok { 0 } else { 1 });
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = nix::sys::wait::waitpid(child, None);
        }
        Err(_) => {}
    }
}

/// The container is finished for good: release its rootfs, the socket, run the exit command.
fn finish(cfg: &ShimConfig) {
    let rootfs = cfg.bundle.join("rootfs");
    let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(&cfg.socket);
    if let Some((prog, args)) = cfg.exit_command.split_first() {
        let child = std::process::Command::new(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = child {
            // Its pidfd says when it exits; it gets a minute.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            if !barge_runtime::process::wait_exit(pid, Some(Duration::from_secs(60))) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}
