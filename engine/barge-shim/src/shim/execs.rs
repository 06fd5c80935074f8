//! Execs: the shim starts them (the runtime's `exec` in a forked child, like the
//! container's create in `launch`), so each exec process ends up the shim's child (the shim
//! is a child subreaper, and the forked child exits as soon as the process runs); the shim
//! reaps it and records its exit in `execs/<id>.state.json`. A detached exec's stdio is
//! /dev/null; an attached one's are pipes or a pty whose other ends the shim relays to its
//! client (`supervisor::attached`).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use barge_runtime::exec::{self as rt_exec, ExecOptions};
use barge_runtime::Store;
use nix::fcntl::OFlag;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, pipe2, ForkResult};

use super::launch::{read_result, Failure, START_FAILED};
use super::sys;
use crate::config::ShimConfig;
use crate::exec::{self, ExecState};
use oci_spec::runtime::Process;

/// The code of an exec that failed for another reason than its program (docker's 125: the
/// daemon's own failure).
const EXEC_FAILED: i32 = 125;

/// A running exec the shim started.
pub struct Running {
    pub id: String,
    pub state: ExecState,
}

/// The shim's ends of an attached exec's stdio: its stdout and stderr pipes, or the pty master
/// (both output streams, and input); where input goes (the stdin pipe, or the master again).
pub struct Io {
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    pub terminal: bool,
}

/// Start exec `id` of the container, detached (its stdio /dev/null); its state, running,
/// once the process runs.
pub fn start(cfg: &ShimConfig, id: &str) -> Result<Running, Failure> {
    spawn(cfg, id, None).map(|(run, _)| run)
}

/// Start exec `id` of the container with its stdio on the shim's ends: a pty when its
/// configuration asks for a terminal, else pipes (stdin a pipe with `stdin` and the exec's
/// `open_stdin`, else /dev/null), the terminal of `size` (rows, columns) from the start.
pub fn start_attached(
    cfg: &ShimConfig,
    id: &str,
    stdin: bool,
    size: Option<(u16, u16)>,
) -> Result<(Running, Io), Failure> {
    spawn(cfg, id, Some((stdin, size)))
}

/// Start exec `id`: detached (`attach` None) or attached (with stdin or not, a terminal size).
fn spawn(
    cfg: &ShimConfig,
    id: &str,
    attach: Option<(bool, Option<(u16, u16)>)>,
) -> Result<(Running, Io), Failure> {
    let fail = |m: String| (EXEC_FAILED, m);
    let ecfg = exec::load_config(&exec::config_path(&cfg.bundle, id)).map_err(fail)?;
    if ecfg.container_id != cfg.id {
        return Err(fail(format!(
            "exec {id} belongs to container {}, not {}",
            ecfg.container_id, cfg.id
        )));
    }
    if exec::load_state(&exec::state_path(&cfg.bundle, id))
        .map_err(fail)?
        .is_some()
    {
        return Err(fail(format!("exec {id} was already started")));
    }
    let terminal = attach.is_some() && ecfg.tty;
    let devnull = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| fail(format!("open /dev/null: {e}")))
    };
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")));
    let mut io = Io {
        stdout: None,
        stderr: None,
        stdin: None,
        terminal,
    };
    // The process's stdin, stdout and stderr (a terminal's are its pty).
    let mut child_fds = Vec::with_capacity(3);
    let mut console: Option<(UnixStream, Arc<OwnedFd>)> = None;
    match attach {
        Some((with_stdin, _)) if !terminal => {
            if with_stdin && ecfg.open_stdin {
                let (r, w) = pipe()?;
                child_fds.push(r);
                io.stdin = Some(w);
            } else {
                child_fds.push(devnull()?);
            }
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            child_fds.extend([out_w, err_w]);
            io.stdout = Some(out_r);
            io.stderr = Some(err_r);
        }
        _ => {
            for _ in 0..3 {
                child_fds.push(devnull()?);
            }
            if terminal {
                let (ours, theirs) =
                    UnixStream::pair().map_err(|e| fail(format!("socketpair: {e}")))?;
                console = Some((ours, Arc::new(theirs.into())));
            }
        }
    }
    let (res_r, res_w) = pipe()?;
    let theirs = console.as_ref().map(|(_, t)| t.clone());
    let mut process = ecfg.process.clone();
    process.set_terminal(Some(terminal));
    if let Some((_, Some((rows, cols)))) = attach.filter(|_| terminal) {
        let b = oci_spec::runtime::BoxBuilder::default()
            .height(rows)
            .width(cols)
            .build()
            .map_err(|e| fail(format!("terminal size {rows}x{cols}: {e}")))?;
        process.set_console_size(Some(b));
    }
    let child = match sys::fork().map_err(|e| fail(format!("fork: {e}")))? {
        ForkResult::Child => {
            drop(res_r);
            let msg = match run_in_child(cfg, process, &child_fds, theirs) {
                Ok(pid) => format!("ok {pid}"),
                Err((code, e)) => format!("err {code} {e}"),
            };
            let _ = std::fs::File::from(res_w).write_all(msg.as_bytes());
            // The exec process, our child, goes to the shim (the subreaper) now.
            sys::exit_now(0);
        }
        ForkResult::Parent { child } => child,
    };
    drop(res_w);
    drop(child_fds);
    drop(theirs);
    // With a terminal the process sends its pty master before it runs the program; a failure
    // before that closes the socket, and the result tells why.
    let master = match console {
        Some((ours, theirs)) => {
            drop(theirs);
            match barge_runtime::tty_proxy::recv_master(&ours) {
                Ok(m) => Some(m),
                Err(e) => {
                    return Err(match read_result(res_r, child) {
                        Err((code, m)) => (
                            if code == START_FAILED {
                                EXEC_FAILED
                            } else {
                                code
                            },
                            m,
                        ),
                        Ok(pid) => {
                            // It runs without a terminal we can reach: end it.
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                            fail(e.to_string())
                        }
                    });
                }
            }
        }
        None => None,
    };
    let me = std::process::id() as i32;
    let now = barge_runtime::time::now_rfc3339();
    let result = read_result(res_r, child).map_err(|(code, m)| {
        // read_result's own failures carry the container's start code.
        (
            if code == START_FAILED {
                EXEC_FAILED
            } else {
                code
            },
            m,
        )
    });
    let state = match &result {
        Ok(pid) => ExecState {
            running: true,
            pid: *pid,
            pid_start: start_time(*pid),
            reaper_pid: me,
            reaper_start: start_time(me),
            started_at: Some(now),
            ..Default::default()
        },
        Err((code, e)) => ExecState {
            exit_code: Some(*code),
            started_at: Some(now.clone()),
            finished_at: Some(now),
            error: Some(e.clone()),
            ..Default::default()
        },
    };
    // A record that can't be written is reported; the process runs on (the shim still reaps
    // it).
    let saved = exec::save(&exec::state_path(&cfg.bundle, id), &state);
    result?;
    saved.map_err(fail)?;
    // Here, not by the engine after the answer: the shim's exec_die must come after it.
    super::events::emit(
        cfg,
        barge_events::Action::ExecStart,
        &[("execID", id.to_string())],
    );
    if let Some(m) = master {
        let dup = m
            .try_clone()
            .map_err(|e| fail(format!("dup pty master: {e}")))?;
        io.stdout = Some(m);
        io.stdin = Some(dup);
    }
    Ok((
        Running {
            id: id.to_string(),
            state,
        },
        io,
    ))
}

fn start_time(pid: i32) -> u64 {
    barge_runtime::state::proc_stat(pid)
        .map(|s| s.0)
        .unwrap_or(0)
}

/// In the forked child: the process's stdio on 0, 1, 2 (/dev/null for a detached exec: docker
/// discards its output), then the runtime's exec.
fn run_in_child(
    cfg: &ShimConfig,
    process: Process,
    fds: &[OwnedFd],
    console: Option<Arc<OwnedFd>>,
) -> Result<i32, Failure> {
    if let [i, o, e] = fds {
        let dup = |e: nix::Error| (EXEC_FAILED, format!("dup2 the exec's stdio: {e}"));
        dup2_stdin(i).map_err(dup)?;
        dup2_stdout(o).map_err(dup)?;
        dup2_stderr(e).map_err(dup)?;
    }
    let fail = |e: barge_runtime::Error| {
        let code = e
            .exec_failure()
            .map(|f| f.exit_code())
            .unwrap_or(EXEC_FAILED);
        (code, e.to_string())
    };
    let store = Store::open(&cfg.runtime_root).map_err(fail)?;
    let opts = ExecOptions {
        id: cfg.id.clone(),
        process,
        console_fd: console,
        ..Default::default()
    };
    rt_exec::exec(&store, &opts).map_err(fail)
}

/// Record that a started exec's process exited with `code`.
pub fn finished(cfg: &ShimConfig, run: &mut Running, code: i32) {
    run.state.running = false;
    run.state.exit_code = Some(code);
    run.state.finished_at = Some(barge_runtime::time::now_rfc3339());
    let _ = exec::save(&exec::state_path(&cfg.bundle, &run.id), &run.state);
    super::events::emit(
        cfg,
        barge_events::Action::ExecDie,
        &[("execID", run.id.clone()), ("exitCode", code.to_string())],
    );
}
