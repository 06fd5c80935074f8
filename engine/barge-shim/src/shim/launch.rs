//! One start of the container: the runtime's create and start run in a forked child (so the
//! shim itself never touches the runtime's memory and stays small); the container's init is
//! reparented to the shim, its subreaper.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use barge_runtime::container::{self, CreateOptions};
use barge_runtime::Store;
use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, pipe2, ForkResult};

use super::sys;
use crate::config::ShimConfig;

/// The shim's ends of a running container's stdio.
pub struct Stdio {
    /// Where the container's output comes from: stdout and stderr pipes, or the pty master
    /// (both output streams, and input).
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Where input goes: the stdin pipe's write end, or (terminal) the pty master again.
    pub stdin: Option<OwnedFd>,
    pub terminal: bool,
}

/// Why a start failed: the exit code to record (docker's: 127 for a program not found, 126 for
/// one that can't be executed, 128 for any other failure) and the message.
pub type Failure = (i32, String);

/// The code recorded for a start that failed for another reason than the program.
pub const START_FAILED: i32 = 128;

fn failure_code(e: &barge_runtime::Error) -> i32 {
    e.exec_failure()
        .map(|f| f.exit_code())
        .unwrap_or(START_FAILED)
}

/// Create and start the container; returns its init pid and the shim's ends of its stdio.
pub fn launch(cfg: &ShimConfig) -> Result<(i32, Stdio), Failure> {
    let err = |what: &str, e: nix::Error| (START_FAILED, format!("{what}: {e}"));
    let (res_r, res_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| err("pipe", e))?;
    // Child ends (given to the container) and shim ends.
    let mut child_fds: Vec<OwnedFd> = Vec::new();
    let mut stdio = Stdio {
        stdout: None,
        stderr: None,
        stdin: None,
        terminal: cfg.terminal,
    };
    let mut console: Option<(UnixStream, Arc<OwnedFd>)> = None;
    let devnull = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| (START_FAILED, format!("open /dev/null: {e}")))
    };
    if cfg.terminal {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| (START_FAILED, format!("socketpair: {e}")))?;
        console = Some((ours, Arc::new(theirs.into())));
        for _ in 0..3 {
            child_fds.push(devnull()?);
        }
    } else {
        let (in_r, in_w) = if cfg.stdin {
            let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| err("pipe", e))?;
            (r, Some(w))
        } else {
            (devnull()?, None)
        };
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| err("pipe", e))?;
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| err("pipe", e))?;
        child_fds.extend([in_r, out_w, err_w]);
        stdio.stdin = in_w;
        stdio.stdout = Some(out_r);
        stdio.stderr = Some(err_r);
    }
    let opts = CreateOptions {
        id: cfg.id.clone(),
        bundle: cfg.bundle.clone(),
        console_fd: console.as_ref().map(|(_, t)| t.clone()),
        ..Default::default()
    };
    let child = match sys::fork().map_err(|e| err("fork", e))? {
        ForkResult::Child => {
            drop(res_r);
            let mut res_w = std::fs::File::from(res_w);
            let msg = match run_in_child(cfg, &opts, &child_fds) {
                Ok(pid) => format!("ok {pid}"),
                Err((code, e)) => format!("err {code} {e}"),
            };
            let _ = res_w.write_all(msg.as_bytes());
            sys::exit_now(0);
        }
        ForkResult::Parent { child } => child,
    };
    drop(res_w);
    drop(child_fds);
    drop(opts);
    let master = match console {
        Some((ours, theirs)) => {
            drop(theirs);
            match barge_runtime::tty_proxy::recv_master(&ours) {
                Ok(m) => Some(m),
                Err(e) => {
                    let msg = read_result(res_r, child);
                    return Err(match msg {
                        Err(m) => m,
                        Ok(_) => (START_FAILED, e.to_string()),
                    });
                }
            }
        }
        None => None,
    };
    let pid = read_result(res_r, child)?;
    if let Some(m) = master {
        let dup = m
            .try_clone()
            .map_err(|e| (START_FAILED, format!("dup pty master: {e}")))?;
        stdio.stdout = Some(m);
        stdio.stdin = Some(dup);
    }
    Ok((pid, stdio))
}

pub(super) fn read_result(res_r: OwnedFd, child: nix::unistd::Pid) -> Result<i32, Failure> {
    let mut msg = String::new();
    let r = std::fs::File::from(res_r).read_to_string(&mut msg);
    let _ = waitpid(child, None);
    let fail = |m: String| (START_FAILED, m);
    r.map_err(|e| fail(format!("read the result of create: {e}")))?;
    match msg.split_once(' ') {
        Some(("ok", pid)) => pid
            .trim()
            .parse()
            .map_err(|_| fail(format!("bad pid from create: {pid:?}"))),
        Some(("err", e)) => Err(match e.split_once(' ') {
            Some((code, m)) => (code.parse().unwrap_or(START_FAILED), m.to_string()),
            None => fail(e.to_string()),
        }),
        _ => Err(fail("create failed without a message".into())),
    }
}

/// In the forked child: put the container's stdio on 0, 1, 2, then create and start.
fn run_in_child(cfg: &ShimConfig, opts: &CreateOptions, fds: &[OwnedFd]) -> Result<i32, Failure> {
    let fail = |e: barge_runtime::Error| (failure_code(&e), e.to_string());
    if let [i, o, e] = fds {
        let dup = |what: &str, e: nix::Error| (START_FAILED, format!("dup2 {what}: {e}"));
        dup2_stdin(i).map_err(|e| dup("stdin", e))?;
        dup2_stdout(o).map_err(|e| dup("stdout", e))?;
        dup2_stderr(e).map_err(|e| dup("stderr", e))?;
    }
    let store = Store::open(&cfg.runtime_root).map_err(fail)?;
    let st = container::create(&store, opts).map_err(fail)?;
    if let Err(e) = container::start(&store, &cfg.id) {
        let _ = container::delete(&store, &cfg.id, true);
        return Err(fail(e));
    }
    Ok(st.pid)
}
