//! Detached execs: the shim starts them (the runtime's `exec` in a forked child, like the
//! container's create in `launch`), so each exec process ends up the shim's child (the shim
//! is a child subreaper, and the forked child exits as soon as the process runs); the shim
//! reaps it and records its exit in `execs/<id>.state.json`.

use std::io::Write;
use std::os::fd::OwnedFd;

use barge_runtime::exec::{self as rt_exec, ExecOptions};
use barge_runtime::Store;
use nix::fcntl::OFlag;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, pipe2, ForkResult};

use super::launch::{read_result, Failure};
use super::sys;
use crate::config::ShimConfig;
use crate::exec::{self, ExecConfig, ExecState};

/// The code of an exec that failed for another reason than its program (docker's 125: the
/// daemon's own failure).
const EXEC_FAILED: i32 = 125;

/// A running exec the shim started.
pub struct Running {
    pub id: String,
    pub state: ExecState,
}

/// Start exec `id` of the container; its state, running, once the process runs.
pub fn start(cfg: &ShimConfig, id: &str) -> Result<Running, Failure> {
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
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| fail(format!("open /dev/null: {e}")))?;
    let (res_r, res_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))?;
    let child = match sys::fork().map_err(|e| fail(format!("fork: {e}")))? {
        ForkResult::Child => {
            drop(res_r);
            let msg = match run_in_child(cfg, &ecfg, &null) {
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
    drop(null);
    let me = std::process::id() as i32;
    let now = barge_util::time::now_rfc3339();
    let result = read_result(res_r, child);
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
    Ok(Running {
        id: id.to_string(),
        state,
    })
}

fn start_time(pid: i32) -> u64 {
    barge_util::process::start_time(pid).unwrap_or(0)
}

/// In the forked child: stdio to /dev/null (docker discards a detached exec's output), then
/// the runtime's exec.
fn run_in_child(cfg: &ShimConfig, ecfg: &ExecConfig, null: &OwnedFd) -> Result<i32, Failure> {
    let dup = |e: nix::Error| (EXEC_FAILED, format!("dup2 /dev/null: {e}"));
    dup2_stdin(null).map_err(dup)?;
    dup2_stdout(null).map_err(dup)?;
    dup2_stderr(null).map_err(dup)?;
    let fail = |e: barge_runtime::Error| {
        let code = e
            .exec_failure()
            .map(|f| f.exit_code())
            .unwrap_or(EXEC_FAILED);
        (code, e.to_string())
    };
    let store = Store::open(&cfg.runtime_root).map_err(fail)?;
    let mut process = ecfg.process.clone();
    process.set_terminal(Some(false));
    let opts = ExecOptions {
        id: cfg.id.clone(),
        process,
        ..Default::default()
    };
    rt_exec::exec(&store, &opts).map_err(fail)
}

/// Record that a started exec's process exited with `code`.
pub fn finished(cfg: &ShimConfig, run: &mut Running, code: i32) {
    run.state.running = false;
    run.state.exit_code = Some(code);
    run.state.finished_at = Some(barge_util::time::now_rfc3339());
    let _ = exec::save(&exec::state_path(&cfg.bundle, &run.id), &run.state);
}
