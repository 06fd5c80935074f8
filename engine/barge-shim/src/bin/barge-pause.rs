//! `barge-pause`: the one process a pod has, and only when its containers share a PID
//! namespace (Kubernetes' `shareProcessNamespace`, CRI `pid: POD`). Other namespaces a pod
//! shares are pinned by files; a PID namespace cannot be: once its first process (its init)
//! is gone, nothing can enter it again. So something must be that init.
//!
//! `barge-pause` (no arguments) unshares a new PID namespace, starts itself as that
//! namespace's init (`barge-pause --init`, PID 1 inside), prints the init's PID (as the
//! caller sees it) on stdout and exits at once, so the caller has no child to wait for. The
//! engine pins `/proc/PID/ns/pid` and the pod's containers join it. The init reaps whatever
//! is reparented to it (processes of exited containers' children) and exits on SIGTERM or
//! SIGINT, taking the namespace down with it.
#![forbid(unsafe_code)]

use std::process::{Command, ExitCode, Stdio};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => launch(),
        [flag] if flag == "--init" => init(),
        _ => {
            eprintln!("usage: barge-pause   (prints the PID of a new PID namespace's init)");
            ExitCode::from(2)
        }
    }
}

/// Make the namespace and its init; print the init's PID.
fn launch() -> ExitCode {
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID) {
        eprintln!("barge-pause: unshare a PID namespace: {e}");
        return ExitCode::FAILURE;
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("barge-pause: find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The first child after unshare is PID 1 of the new namespace.
    match Command::new(&exe)
        .arg("--init")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => {
            println!("{}", child.id());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("barge-pause: start {} --init: {e}", exe.display());
            ExitCode::FAILURE
        }
    }
}

/// PID 1 of the pod's PID namespace: reap, and end on SIGTERM/SIGINT.
fn init() -> ExitCode {
    // Its own session: not killed with the terminal or process group that started it.
    let _ = nix::unistd::setsid();
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    // Blocked signals reach an init even without handlers (it ignores default-action ones),
    // and `wait` takes them one at a time.
    if set.thread_block().is_err() {
        return ExitCode::FAILURE;
    }
    loop {
        reap();
        match set.wait() {
            Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => return ExitCode::SUCCESS,
            Ok(_) => {}
            Err(_) => return ExitCode::FAILURE,
        }
    }
}

/// Collect every exited child without blocking.
fn reap() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
