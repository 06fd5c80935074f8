//! The health check's prober: while the container runs, the shim execs the probe in it on
//! schedule (the runtime's `exec` in a forked child, as for `barge exec`: the probe ends up the
//! shim's child, reaped by the shim's loop), collects its output (stdout and stderr, the first
//! 4 KiB), kills it when it runs over its timeout, and turns its exit into the container's
//! health ([`HealthRecord::apply`]), recorded durably in `health.json` after each probe; a
//! change of status is a `health_status: STATUS` event in the store's journal.
//!
//! The shim's poll loop drives it: [`Prober::deadline`] is when it must be tended again,
//! [`Prober::output_fd`] the descriptor to watch, [`Prober::reaped`] takes the probe's exit.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use barge_events::Action;
use barge_runtime::exec::{self as rt_exec, ExecOptions};
use barge_runtime::Store;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, pipe2, ForkResult, Pid};

use super::launch::{read_result, Failure};
use super::sys;
use crate::config::ShimConfig;
use crate::health::{
    self, output_text, HealthProbe, HealthRecord, HealthResult, MAX_OUTPUT, TIMED_OUT,
};

/// A probe that could not be started for another reason than its program (docker's 125).
const PROBE_FAILED: i32 = 125;

/// The container's health check and its record.
pub struct Prober {
    probe: HealthProbe,
    record: HealthRecord,
    /// When the container's current run started (None between runs: no probing then).
    run_start: Option<Instant>,
    /// When the next probe is due.
    next: Instant,
    running: Option<Probe>,
}

/// A probe in flight.
struct Probe {
    pid: i32,
    /// The read end of its stdout and stderr (None once at end of file).
    out: Option<OwnedFd>,
    buf: Vec<u8>,
    start: String,
    started: Instant,
    timed_out: bool,
    exit: Option<i32>,
}

impl Prober {
    /// The prober of `probe`, continuing the record already in the container's directory.
    pub fn new(cfg: &ShimConfig, probe: HealthProbe) -> Prober {
        let record = health::load(&cfg.bundle).ok().flatten().unwrap_or_default();
        Prober {
            probe,
            record,
            run_start: None,
            next: Instant::now(),
            running: None,
        }
    }

    /// The container (re)started: starting again, first probe after the (start) interval.
    pub fn begin(&mut self, cfg: &ShimConfig) {
        let now = Instant::now();
        self.record.restart();
        self.save(cfg);
        self.run_start = Some(now);
        self.next = now + self.probe.next_wait(self.record.status, Duration::ZERO);
    }

    /// The container's run ended: no more probes; one in flight is killed (it dies with the
    /// container's pid namespace anyway) and not recorded.
    pub fn end(&mut self) {
        self.run_start = None;
        if let Some(p) = self.running.take() {
            if p.exit.is_none() {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
        }
    }

    /// When the loop must call [`Prober::tend`] again (None: only on output or exit).
    pub fn deadline(&self) -> Option<Instant> {
        self.run_start?;
        match &self.running {
            Some(p) if p.exit.is_some() => Some(Instant::now()),
            Some(p) if !p.timed_out => Some(p.started + self.probe.timeout),
            Some(_) => None,
            None => Some(self.next),
        }
    }

    /// The probe's output to watch, while it has one.
    pub fn output_fd(&self) -> Option<BorrowedFd<'_>> {
        self.running.as_ref()?.out.as_ref().map(|f| f.as_fd())
    }

    /// Read what the probe wrote (the first [`MAX_OUTPUT`] bytes are kept).
    pub fn on_output(&mut self) {
        if let Some(p) = &mut self.running {
            p.drain();
        }
    }

    /// A reaped child: the probe's exit (true), or not the probe (false).
    pub fn reaped(&mut self, pid: i32, code: i32) -> bool {
        match &mut self.running {
            Some(p) if p.pid == pid && p.exit.is_none() => {
                p.exit = Some(code);
                true
            }
            _ => false,
        }
    }

    /// Start a due probe (only while the container runs: `container_runs`), kill one over
    /// its timeout, record one that exited.
    pub fn tend(&mut self, cfg: &ShimConfig, container_runs: bool) {
        let Some(run_start) = self.run_start else {
            return;
        };
        let now = Instant::now();
        match &mut self.running {
            Some(p) if p.exit.is_some() => {
                p.drain();
                let Some(p) = self.running.take() else { return };
                let result = p.result(&self.probe);
                self.take_result(cfg, result, run_start);
            }
            Some(p) if !p.timed_out && now >= p.started + self.probe.timeout => {
                p.timed_out = true;
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
            Some(_) => {}
            None if container_runs && now >= self.next => {
                let start = barge_util::time::now_rfc3339_nano();
                match spawn(cfg, &self.probe.cmd) {
                    Ok((pid, out)) => {
                        self.running = Some(Probe {
                            pid,
                            out: Some(out),
                            buf: Vec::new(),
                            start,
                            started: now,
                            timed_out: false,
                            exit: None,
                        });
                    }
                    Err((code, msg)) => {
                        let result = HealthResult {
                            start,
                            end: barge_util::time::now_rfc3339_nano(),
                            exit_code: code,
                            output: output_text(msg.as_bytes()),
                        };
                        self.take_result(cfg, result, run_start);
                    }
                }
            }
            None => {}
        }
    }

    fn take_result(&mut self, cfg: &ShimConfig, result: HealthResult, run_start: Instant) {
        let in_start_period = run_start.elapsed() < self.probe.start_period;
        let changed = self
            .record
            .apply(result, in_start_period, self.probe.retries);
        self.save(cfg);
        if let Some(status) = changed {
            super::events::emit_detail(cfg, Action::HealthStatus, status.as_str(), &[]);
        }
        self.next = Instant::now()
            + self
                .probe
                .next_wait(self.record.status, run_start.elapsed());
    }

    fn save(&self, cfg: &ShimConfig) {
        // A record that can't be written leaves the last one; the probing goes on.
        let _ = health::save(&cfg.bundle, &self.record);
    }
}

impl Probe {
    /// Read what is there without blocking; end of file closes the pipe.
    fn drain(&mut self) {
        let Some(fd) = &self.out else { return };
        let mut chunk = [0u8; 4096];
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    self.out = None;
                    return;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.out = None;
                    return;
                }
            }
        }
    }

    fn result(self, probe: &HealthProbe) -> HealthResult {
        let end = barge_util::time::now_rfc3339_nano();
        if self.timed_out {
            return HealthResult {
                start: self.start,
                end,
                exit_code: TIMED_OUT,
                output: format!(
                    "Health check exceeded timeout ({})",
                    go_duration(probe.timeout)
                ),
            };
        }
        HealthResult {
            start: self.start,
            end,
            exit_code: self.exit.unwrap_or(TIMED_OUT),
            output: output_text(&self.buf),
        }
    }
}

/// A duration as Go prints it for the usual values (`30s`, `1.5s`, `500ms`, `1m30s`).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    let (m, s) = ((secs / 60.0).floor() as u64, secs % 60.0);
    let s = format!("{s}").trim_end_matches(".0").to_string();
    if m == 0 {
        format!("{s}s")
    } else {
        format!("{m}m{s}s")
    }
}

/// Exec the probe in the container: its pid and the read end (non-blocking) of its output.
fn spawn(cfg: &ShimConfig, cmd: &[String]) -> Result<(i32, OwnedFd), Failure> {
    let fail = |m: String| (PROBE_FAILED, m);
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .map_err(|e| fail(format!("health check: pipe: {e}")))?;
    // The probe's end blocks as usual (only ours is non-blocking).
    let out_w = {
        let flags = nix::fcntl::fcntl(&out_w, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| fail(format!("health check: fcntl: {e}")))?;
        let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&out_w, nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(|e| fail(format!("health check: fcntl: {e}")))?;
        out_w
    };
    let null = std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| fail(format!("health check: open /dev/null: {e}")))?;
    let (res_r, res_w) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("health check: pipe: {e}")))?;
    let child = match sys::fork().map_err(|e| fail(format!("health check: fork: {e}")))? {
        ForkResult::Child => {
            drop(res_r);
            drop(out_r);
            let msg = match probe_in_child(cfg, cmd, &null, &out_w) {
                Ok(pid) => format!("ok {pid}"),
                Err((code, e)) => format!("err {code} {e}"),
            };
            let _ = std::fs::File::from(res_w).write_all(msg.as_bytes());
            // The probe, our child, goes to the shim (the subreaper) now.
            sys::exit_now(0);
        }
        ForkResult::Parent { child } => child,
    };
    drop(res_w);
    drop(out_w);
    drop(null);
    let pid = read_result(res_r, child)?;
    Ok((pid, out_r))
}

/// In the forked child: stdin /dev/null, stdout and stderr the pipe, then the runtime's exec
/// of the container's process (env, user, cwd) with the probe's argv.
fn probe_in_child(
    cfg: &ShimConfig,
    cmd: &[String],
    null: &OwnedFd,
    out: &OwnedFd,
) -> Result<i32, Failure> {
    let dup = |e: nix::Error| (PROBE_FAILED, format!("dup2 the probe's stdio: {e}"));
    dup2_stdin(null).map_err(dup)?;
    dup2_stdout(out).map_err(dup)?;
    dup2_stderr(out).map_err(dup)?;
    let fail = |e: barge_runtime::Error| {
        let code = e
            .exec_failure()
            .map(|f| f.exit_code())
            .unwrap_or(PROBE_FAILED);
        (code, e.to_string())
    };
    let store = Store::open(&cfg.runtime_root).map_err(fail)?;
    let st = store.load(&cfg.id).map_err(fail)?;
    let mut process = st.spec.process().clone().unwrap_or_default();
    process.set_args(Some(cmd.to_vec()));
    process.set_terminal(Some(false));
    process.set_console_size(None);
    let opts = ExecOptions {
        id: cfg.id.clone(),
        process,
        ..Default::default()
    };
    rt_exec::exec(&store, &opts).map_err(fail)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_print_like_go() {
        use std::time::Duration;
        assert_eq!(super::go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(super::go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(super::go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(super::go_duration(Duration::from_secs(90)), "1m30s");
    }
}
