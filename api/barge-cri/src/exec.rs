//! ExecSync: run a command in a container to its end (or its timeout) and answer its
//! output and exit code, through the engine's attached exec (the shim runs it and relays
//! its output as frames; the daemon never forks).

use std::io::Read;
use std::time::{Duration, Instant};

use barge_engine::container::Streams;
use barge_engine::exec::ExecOptions;
use barge_engine::frames::{parse_header, EXIT, STDERR, STDOUT};
use barge_engine::Engine;
use tonic::Status;

use crate::proto::ExecSyncResponse;
use crate::status::{engine, CriResult};

/// At most this much of each stream is kept (as containerd and CRI-O cap it); the rest is
/// read and dropped.
pub const OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

/// Run `cmd` in container `id`; `timeout` 0: no limit. On timeout the process is killed and
/// the call fails with DeadlineExceeded.
pub fn exec_sync(
    e: &Engine,
    id: &str,
    cmd: Vec<String>,
    timeout: i64,
) -> CriResult<ExecSyncResponse> {
    let rec = crate::container::find(e, id)?;
    if cmd.is_empty() {
        return Err(Status::invalid_argument("ExecSync: no command"));
    }
    if timeout < 0 {
        return Err(Status::invalid_argument(format!(
            "ExecSync: negative timeout {timeout}"
        )));
    }
    let exec_id = engine(e.exec_create(
        &rec.id,
        &ExecOptions {
            cmd: cmd.clone(),
            ..Default::default()
        },
    ))?;
    let mut sock = engine(e.exec_start_attached(
        &exec_id,
        Streams {
            stdin: false,
            stdout: true,
            stderr: true,
        },
    ))?;
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_secs(timeout as u64));
    let mut out = ExecSyncResponse::default();
    let mut exit = None;
    let timed_out = |at: Option<Instant>| at.is_some_and(|d| Instant::now() >= d);
    loop {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = sock.set_read_timeout(Some(left));
        }
        let mut h = [0u8; 8];
        match sock.read_exact(&mut h) {
            Ok(()) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(_) => break,
        }
        let (stream, len) = parse_header(&h);
        let mut buf = vec![0u8; len];
        if sock.read_exact(&mut buf).is_err() {
            break;
        }
        let keep = |dst: &mut Vec<u8>, data: &[u8]| {
            let room = OUTPUT_LIMIT.saturating_sub(dst.len());
            dst.extend_from_slice(&data[..data.len().min(room)]);
        };
        match stream {
            STDOUT => keep(&mut out.stdout, &buf),
            STDERR => keep(&mut out.stderr, &buf),
            EXIT => {
                exit = String::from_utf8_lossy(&buf).trim().parse::<i32>().ok();
                break;
            }
            _ => {}
        }
    }
    match exit {
        Some(code) => {
            out.exit_code = code;
            Ok(out)
        }
        None if timed_out(deadline) => {
            // Kill what still runs: the exec's process (SIGKILL), then the socket goes.
            if let Ok(i) = e.exec_inspect(&exec_id) {
                if i.running && i.pid > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(i.pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            Err(Status::deadline_exceeded(format!(
                "ExecSync {cmd:?} in {}: timeout {timeout}s exceeded",
                rec.id
            )))
        }
        None => {
            // The stream ended without an exit frame: the exec's record has the code.
            match e.exec_inspect(&exec_id).ok().and_then(|i| i.exit_code) {
                Some(code) => {
                    out.exit_code = code;
                    Ok(out)
                }
                None => Err(Status::internal(format!(
                    "ExecSync {cmd:?} in {}: the exec ended without an exit code",
                    rec.id
                ))),
            }
        }
    }
}
