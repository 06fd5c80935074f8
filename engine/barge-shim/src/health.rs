//! Health checks, the formats the engine and the shim share: what the engine asks the shim to
//! probe ([`HealthProbe`], in `shim.json`), and what the shim records about it
//! ([`HealthRecord`]: `health.json` in the container's directory, replaced atomically and
//! fsynced after every probe), with docker's rules for turning probe results into
//! `starting|healthy|unhealthy` ([`HealthRecord::apply`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How many results a record keeps (docker's).
pub const MAX_LOG: usize = 5;

/// How much of a probe's output a result keeps (docker's 4 KiB).
pub const MAX_OUTPUT: usize = 4096;

/// The probe's exit code when it was killed for running over its timeout (docker's -1).
pub const TIMED_OUT: i32 = -1;

/// A health check, resolved (defaults applied): the command the shim runs in the container,
/// and its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProbe {
    /// The probe's argv (a `CMD-SHELL` test is already `/bin/sh -c …`).
    pub cmd: Vec<String>,
    /// Between the end of a probe and the start of the next.
    pub interval: Duration,
    /// A probe running longer is killed and counts as failed.
    pub timeout: Duration,
    /// After each start of the container: failures don't count, a success makes it healthy.
    pub start_period: Duration,
    /// The interval during the start period.
    pub start_interval: Duration,
    /// Consecutive failures that make it unhealthy.
    pub retries: u32,
}

impl HealthProbe {
    /// The wait before the next probe: the start interval while the container is starting
    /// within its start period (`since_start` after its start), else the interval.
    pub fn next_wait(&self, status: HealthStatus, since_start: Duration) -> Duration {
        if status == HealthStatus::Starting
            && !self.start_period.is_zero()
            && since_start < self.start_period
        {
            self.start_interval
        } else {
            self.interval
        }
    }
}

/// docker's health statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Not yet healthy since the container started, and not failing enough to be unhealthy.
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// docker's name (`starting`, `healthy`, `unhealthy`).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result (docker's `HealthcheckResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResult {
    /// RFC 3339 with nanoseconds.
    pub start: String,
    pub end: String,
    /// 0 healthy; anything else failed ([`TIMED_OUT`] when killed on timeout).
    pub exit_code: i32,
    /// The probe's stdout and stderr, at most [`MAX_OUTPUT`] bytes.
    pub output: String,
}

/// What the shim records: the status, the consecutive failures, the last results (oldest
/// first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    pub status: HealthStatus,
    pub failing_streak: u32,
    #[serde(default)]
    pub log: Vec<HealthResult>,
}

impl HealthRecord {
    /// The file name of the record in the container's directory.
    pub const FILE: &'static str = "health.json";

    /// The record's path in a container's directory.
    pub fn path(container_dir: &Path) -> PathBuf {
        container_dir.join(Self::FILE)
    }

    /// A new start of the container: starting again, no failures (the log is kept).
    pub fn restart(&mut self) {
        self.status = HealthStatus::Starting;
        self.failing_streak = 0;
    }

    /// Take a probe's result with docker's rules: a success makes it healthy; a failure while
    /// starting within the start period (`in_start_period`) doesn't count; otherwise it
    /// adds to the streak, which makes it unhealthy at `retries`. Returns the new status when
    /// it changed.
    pub fn apply(
        &mut self,
        result: HealthResult,
        in_start_period: bool,
        retries: u32,
    ) -> Option<HealthStatus> {
        let before = self.status;
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak = self.failing_streak.saturating_add(1);
            if self.failing_streak >= retries.max(1) {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(result);
        if self.log.len() > MAX_LOG {
            let extra = self.log.len() - MAX_LOG;
            self.log.drain(..extra);
        }
        (self.status != before).then_some(self.status)
    }
}

/// Read a container's record; `Ok(None)` when it has none (no health check, or none run yet).
pub fn load(container_dir: &Path) -> Result<Option<HealthRecord>, String> {
    crate::state::load_json(&HealthRecord::path(container_dir))
}

/// Replace a container's record (temp file, fsync, rename, fsync of the directory).
pub fn save(container_dir: &Path, rec: &HealthRecord) -> Result<(), String> {
    crate::state::save_json(&HealthRecord::path(container_dir), rec)
}

/// The first [`MAX_OUTPUT`] bytes of a probe's output as text (a cut UTF-8 sequence at the
/// end is dropped, invalid bytes replaced).
pub fn output_text(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_OUTPUT)];
    match std::str::from_utf8(cut) {
        Ok(s) => s.to_string(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&cut[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(cut).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> HealthResult {
        HealthResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn statuses_follow_docker_rules() {
        let mut r = HealthRecord::default();
        // Failures in the start period don't count.
        assert_eq!(r.apply(result(1), true, 2), None);
        assert_eq!((r.status, r.failing_streak), (HealthStatus::Starting, 0));
        // A success in it makes it healthy.
        assert_eq!(r.apply(result(0), true, 2), Some(HealthStatus::Healthy));
        // Once healthy, failures count even in the start period.
        assert_eq!(r.apply(result(1), true, 2), None);
        assert_eq!(r.failing_streak, 1);
        assert_eq!(
            r.apply(result(TIMED_OUT), false, 2),
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(r.apply(result(3), false, 2), None);
        assert_eq!(r.failing_streak, 3);
        assert_eq!(r.apply(result(0), false, 2), Some(HealthStatus::Healthy));
        assert_eq!(r.failing_streak, 0);
        assert_eq!(r.log.len(), MAX_LOG);
        assert_eq!(r.log.last().unwrap().exit_code, 0);
        // Out of the start period, a starting container's failures count.
        let mut s = HealthRecord::default();
        s.apply(result(1), false, 1);
        assert_eq!(s.status, HealthStatus::Unhealthy);
        s.restart();
        assert_eq!(
            (s.status, s.failing_streak, s.log.len()),
            (HealthStatus::Starting, 0, 1)
        );
    }

    #[test]
    fn output_is_cut_at_4k_on_a_char_boundary() {
        assert_eq!(output_text(b"ok\n"), "ok\n");
        let mut long = vec![b'a'; MAX_OUTPUT - 1];
        long.extend("é and more".as_bytes());
        let t = output_text(&long);
        assert_eq!(t.len(), MAX_OUTPUT - 1);
        assert!(t.bytes().all(|b| b == b'a'));
    }

    #[test]
    fn waits_the_start_interval_while_starting() {
        let p = HealthProbe {
            cmd: vec!["true".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            start_period: Duration::from_secs(10),
            start_interval: Duration::from_secs(1),
            retries: 3,
        };
        let s = Duration::from_secs(2);
        assert_eq!(
            p.next_wait(HealthStatus::Starting, s),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.next_wait(HealthStatus::Healthy, s),
            Duration::from_secs(30)
        );
        let late = Duration::from_secs(11);
        assert_eq!(
            p.next_wait(HealthStatus::Starting, late),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let mut r = HealthRecord::default();
        r.apply(result(0), false, 3);
        save(dir.path(), &r).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(r));
    }
}
